"""Data: nuScenes info conversion and BEVFusion-style transforms."""
from . import transforms  # noqa: F401
from .label_fraction import LabelFractionDataset, label_fraction_indices  # noqa: F401,E402
