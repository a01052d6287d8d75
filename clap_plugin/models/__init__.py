"""Models: rendering head, curvature sampler, prototype losses, BEVFusion encoders."""
from . import bevfusion, pretrain, prototypes, ray_selection, rendering  # noqa: F401
