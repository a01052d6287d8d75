"""Paths of the repository, independent of where a test module sits under tests/."""
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
