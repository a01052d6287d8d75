"""InfoNCE with the i-th key the positive of the i-th query and all other keys negatives (the loss of PPKT,
SimIPU and CMCR's contrastive terms), and the retrieval accuracy it is read with."""
import torch
import torch.nn.functional as F
from torch import Tensor


def info_nce(query: Tensor, key: Tensor, temperature: float = 0.07, normalize: bool = True) -> Tensor:
    """Mean over i of ``-log softmax_j(<q_i, k_j> / tau)[i]``.

    Args:
        query: (N, D) e.g. point features; key: (N, D) e.g. the features of the paired pixels.
        temperature: tau.
        normalize: L2-normalise both sides first (cosine similarities).
    """
    if query.dim() != 2 or query.shape != key.shape:
        raise ValueError(f'query and key must both be (N, D), got {tuple(query.shape)} and {tuple(key.shape)}')
    if query.shape[0] < 2:
        raise ValueError(f'InfoNCE needs at least 2 pairs (one positive and a negative), got {query.shape[0]}')
    if temperature <= 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')
    if normalize:
        query = F.normalize(query, dim=1)
        key = F.normalize(key, dim=1)
    logits = query @ key.t() / temperature
    target = torch.arange(query.shape[0], device=query.device)
    return F.cross_entropy(logits, target)


def contrastive_accuracy(query: Tensor, key: Tensor) -> Tensor:
    """Share of queries whose most similar key (cosine) is their own positive."""
    with torch.no_grad():
        sim = F.normalize(query, dim=1) @ F.normalize(key, dim=1).t()
        return (sim.argmax(1) == torch.arange(query.shape[0], device=query.device)).float().mean()
