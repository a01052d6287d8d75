"""Engine: mmengine hooks."""
from . import hooks  # noqa: F401
