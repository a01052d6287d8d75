"""A thin data preprocessor for pre-training: ``Det3DDataPreprocessor`` that also keeps the raw images.

The rendering targets are the pixel colours, not the normalised network input, so the batch carries both:
``inputs['imgs']`` (normalised, as for the encoders) and ``inputs['raw_imgs']`` (B, N, 3, H, W) in [0, 1],
with the same channel order and padding size (the padding is 0, i.e. black, in the raw images).
"""
import math
from typing import Sequence

import torch.nn.functional as F
from mmdet3d.models.data_preprocessors import Det3DDataPreprocessor
from mmdet3d.models.data_preprocessors.utils import multiview_img_stack_batch
from mmdet3d.registry import MODELS
from mmengine.model import stack_batch
from torch import Tensor


@MODELS.register_module()
class CLAPPretrainDataPreprocessor(Det3DDataPreprocessor):
    """``Det3DDataPreprocessor`` (same arguments) that adds ``raw_imgs`` in [0, 1] to the batch inputs.

    Batch augments are not supported (they would change ``imgs`` but not ``raw_imgs``).
    """

    def __init__(self, *args, **kwargs) -> None:
        if kwargs.get('batch_augments'):
            raise ValueError('CLAPPretrainDataPreprocessor does not support batch_augments (the raw images '
                             'would no longer match the network input)')
        super().__init__(*args, **kwargs)

    def simple_process(self, data: dict, training: bool = False) -> dict:
        raw = self.raw_images(data['inputs']['img']) if 'img' in data['inputs'] else None
        out = super().simple_process(data, training)
        if raw is not None:
            out['inputs']['raw_imgs'] = raw
        return out

    def _raw(self, img: Tensor) -> Tensor:
        """(..., 3, H, W) uint8 / float image(s) in 0..255 -> float in [0, 1], channels converted like ``imgs``."""
        if self._channel_conversion:
            img = img[..., [2, 1, 0], :, :]
        return (img.float() / 255.0).clamp(0.0, 1.0)

    def raw_images(self, imgs) -> Tensor:
        """The collated images of a batch (a list of (3, H, W) or (N, 3, H, W) tensors, or a (B, 3, H, W)
        tensor) -> stacked raw images, padded to ``pad_size_divisor`` with zeros."""
        imgs = self.cast_data(imgs)
        if isinstance(imgs, Tensor):
            raw = self._raw(imgs)
            h, w = raw.shape[-2:]
            d = self.pad_size_divisor
            return F.pad(raw, (0, math.ceil(w / d) * d - w, 0, math.ceil(h / d) * d - h), 'constant', 0.0)
        if not isinstance(imgs, Sequence) or not imgs or not all(isinstance(i, Tensor) for i in imgs):
            raise TypeError(f'expected a list of image tensors or a batched tensor, got {type(imgs)}')
        raw = [self._raw(i) for i in imgs]
        if raw[0].dim() == 3:
            return stack_batch(raw, self.pad_size_divisor, 0.0)
        return multiview_img_stack_batch(raw, self.pad_size_divisor, 0.0)
