"""Build every component of these tests in the mmdet3d scope (other tests may leave another default scope)."""
import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def mmdet3d_default_scope():
    with DefaultScope.overwrite_default_scope('mmdet3d'):
        yield
