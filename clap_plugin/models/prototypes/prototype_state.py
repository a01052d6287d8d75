"""The contract between the prototype losses and the :class:`PrototypeEMHook` (CLAP, arXiv 2412.03059)."""
from dataclasses import dataclass, field
from typing import Dict

from torch import Tensor, nn


@dataclass
class PrototypeState:
    """What the prototype loss module and the EM hook share, step by step.

    Attributes:
        prototypes: (N_K, d_K) the learnable prototypes (the loss module's parameter).
        frozen: set by the hook before a step: the losses then see detached prototypes (no gradient).
        embeddings: written by the losses: the step's detached unit embeddings per modality, (M, d_K) each.
        assignments: written by the losses: the step's argmax prototype per modality, (M,) each.
    """
    prototypes: nn.Parameter
    frozen: bool = False
    embeddings: Dict[str, Tensor] = field(default_factory=dict)
    assignments: Dict[str, Tensor] = field(default_factory=dict)
