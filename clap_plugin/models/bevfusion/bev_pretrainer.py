"""The base of the label-free pre-trainers (CLAP and the baselines in projects/): the BEVFusion encoders plus a
pretext loss, no detection head."""
from abc import abstractmethod
from typing import Dict, List, Optional

from mmdet3d.structures import Det3DDataSample
from torch import Tensor

from .bev_encoder import BEVFusionEncoder


class BEVFusionPretrainer(BEVFusionEncoder):
    """Pre-trains the encoders of :class:`BEVFusionEncoder` (submodule names of mmdet3d's BEVFusion, so that the
    exported encoder weights load into the fine-tune detector :class:`CLAPBEVFusion`). A subclass adds its
    pretext modules and :meth:`loss`.

    Args:
        bbox_head: must be None: the pre-training configs start from the detector's model dict and clear its
            head; a pre-trainer learns without labels.
        **kwargs: the encoder arguments of :class:`BEVFusionEncoder`.
    """

    def __init__(self, bbox_head: Optional[dict] = None, **kwargs) -> None:
        if bbox_head is not None:
            raise ValueError(f'{type(self).__name__} is label-free: bbox_head must be None')
        super().__init__(**kwargs)

    @abstractmethod
    def loss(self, batch_inputs_dict: dict, batch_data_samples: List[Det3DDataSample]) -> Dict[str, Tensor]:
        """The pretext losses (and logged figures) of a batch."""

    def forward(self, inputs: dict, data_samples: Optional[List[Det3DDataSample]] = None,
                mode: str = 'loss') -> Dict[str, Tensor]:
        """``mode='loss'``: :meth:`loss`; ``mode='tensor'``: the BEVs of :meth:`extract_bev`. A pre-trainer has
        no predictions."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            metas = [s.metainfo for s in data_samples] if data_samples is not None else [
                {} for _ in range(len(inputs.get('points') or inputs['imgs']))]
            return self.extract_bev(inputs, metas)
        raise RuntimeError(f'invalid mode {mode!r}: a pre-trainer supports "loss" and "tensor"')
