"""Sinkhorn-Knopp equal-partition codes over the global batch (SwAV-style; CLAP, arXiv 2412.03059).

Q = exp(S / eps) normalised so that, over the *global* batch of B samples, every prototype receives B / K
of the mass and every sample 1 (after the last iteration rows sum to exactly 1). Under DDP the sums over
samples (and the batch size) are all-reduced, so every rank gets exactly the rows that one process holding
the whole batch would compute.
"""
import torch
from mmengine.dist import all_reduce
from torch import Tensor


def _reduced(t: Tensor, op: str = 'sum') -> Tensor:
    """``t`` all-reduced in place over the ranks (unchanged in a single process); returns ``t``."""
    all_reduce(t, op=op)
    return t


@torch.no_grad()
def sinkhorn_knopp(scores: Tensor, epsilon: float = 0.05, iterations: int = 3) -> Tensor:
    """Equal-partition soft codes of this rank's samples.

    Args:
        scores: (B_local, K) similarity scores (detached inside).
        epsilon: entropic regularisation, Q ~ exp(S / epsilon).
        iterations: Sinkhorn iterations (each: normalise prototype sums, then sample sums).

    Returns:
        (B_local, K) codes; rows sum to 1, columns over the global batch sum to about B_global / K.
    """
    if scores.dim() != 2:
        raise ValueError(f'scores must be (B, K), got shape {tuple(scores.shape)}')
    if epsilon <= 0:
        raise ValueError(f'epsilon must be > 0, got {epsilon}')
    if iterations < 1:
        raise ValueError(f'iterations must be >= 1, got {iterations}')
    s = scores.detach().double() / epsilon
    # subtract the global max for stability (cancels in the normalisations)
    local_max = s.max() if s.numel() else s.new_tensor(-float('inf'))
    gmax = _reduced(local_max.clone(), 'max')
    q = torch.exp(s - gmax)
    k = q.shape[1]
    b = _reduced(q.new_tensor(float(q.shape[0])))
    q = q / _reduced(q.sum()).clamp(min=1e-300)
    for _ in range(iterations):
        col = _reduced(q.sum(dim=0))  # (K,) mass of each prototype over the global batch
        q = q / col.clamp(min=1e-300) / k
        q = q / q.sum(dim=1, keepdim=True).clamp(min=1e-300) / b
    return (q * b).to(scores.dtype)
