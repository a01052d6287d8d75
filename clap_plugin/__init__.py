"""clap_plugin: CLAP pre-training components registered into mmdet3d's registries.

Importing the package registers every module (``custom_imports=dict(imports=['clap_plugin'])``).
"""
from .utils.checkpoint import allow_mmengine_checkpoints

allow_mmengine_checkpoints()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  (registration side effects)

__version__ = '0.1.0'
