"""Engine: mmengine hooks and training loops."""
from . import hooks, loops  # noqa: F401
