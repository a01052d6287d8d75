"""Models: rendering head, curvature sampler, prototype losses, BEVFusion encoders."""
from . import bevfusion, prototypes, rendering, sampling  # noqa: F401
