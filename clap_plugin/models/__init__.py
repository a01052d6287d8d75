"""Models: rendering head, curvature sampler, prototype losses, BEVFusion encoders."""
from . import bevfusion, pretrain, prototypes, rendering, sampling  # noqa: F401
