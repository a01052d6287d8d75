"""Greedy circle NMS on BEV centres (CenterPoint / TransFusion post-processing) in plain PyTorch."""
import torch
from torch import Tensor


def circle_nms_keep(centers: Tensor, scores: Tensor, min_dist_sq: float,
                    max_keep: int = 83) -> Tensor:
    """Indices kept by greedy circle NMS, best score first.

    A box is dropped when a higher-scoring kept box lies within squared BEV distance
    ``<= min_dist_sq``; at most ``max_keep`` boxes are kept.

    Args:
        centers: (N, 2) BEV centres.
        scores: (N,) scores.
        min_dist_sq: suppression threshold on the squared distance (m^2).
        max_keep: cap on the number of kept boxes.

    Returns:
        (K,) long indices into the inputs.
    """
    order = scores.argsort(descending=True)
    c = centers[order].float()
    close = torch.cdist(c, c).pow(2) <= min_dist_sq  # (N, N)
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=scores.device)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) >= max_keep:
            break
        suppressed |= close[i]
    return order[torch.as_tensor(keep, dtype=torch.long, device=scores.device)]
