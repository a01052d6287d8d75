"""Data: nuScenes info conversion and BEVFusion-style transforms."""
from . import transforms  # noqa: F401
