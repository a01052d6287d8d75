"""mmdet's Swin Transformer with an ``init_cfg`` that is inert until a checkpoint is given.

mmdet3d's BEVFusion configs set ``img_backbone.init_cfg=dict(type='Pretrained', checkpoint=URL)`` and users
override it with ``--cfg-options model.img_backbone.init_cfg.checkpoint=PATH``. mmdet's ``SwinTransformer``
treats any non-None ``init_cfg`` as "load this checkpoint", so a config cannot carry the dict without a file,
and with ``init_cfg=None`` the override fails (``TypeError``: None is not a dict). ``CLAPSwinTransformer``
has the same parameters and state-dict names and:

* ``checkpoint=None`` (the configs' default): the random initialisation of ``init_cfg=None``;
* ``checkpoint=PATH``: a local file only (a URL is refused: nothing is downloaded), holding a Swin state dict
  bare, with mmdet's ``backbone.`` prefix, or with ``img_backbone.`` (a BEVFusion detector or a
  ``tools/export_pretrained.py`` export, e.g. CLAP's pre-trained camera backbone). Every tensor is checked
  after the load; missing keys and shape mismatches are logged by name.
"""
import logging
import os.path as osp
from collections import OrderedDict

from mmdet.models.backbones import SwinTransformer
from mmdet3d.registry import MODELS
from mmengine.logging import print_log

from ...utils.state_dicts import CheckpointError, compare_loaded, load_state_dict

_PREFIXES = ('img_backbone.', 'backbone.')


def _backbone_part(state):
    """The backbone's entries of a state dict, prefix removed (``img_backbone.`` first, then ``backbone.``)."""
    for prefix in _PREFIXES:
        picked = OrderedDict((k[len(prefix):], v) for k, v in state.items() if k.startswith(prefix))
        if picked:
            return picked, prefix
    return OrderedDict(state), ''


@MODELS.register_module()
class CLAPSwinTransformer(SwinTransformer):
    """``mmdet.SwinTransformer`` whose ``init_cfg`` checkpoint may be None (see the module docstring)."""

    def init_weights(self) -> None:
        cfg = self.init_cfg if isinstance(self.init_cfg, dict) else None
        checkpoint = cfg.get('checkpoint', None) if cfg is not None else None
        if self.init_cfg is not None and cfg is None:
            raise TypeError(f'img_backbone.init_cfg must be a dict or None, got {self.init_cfg!r}')
        if not checkpoint:
            saved, self.init_cfg = self.init_cfg, None
            try:
                super().init_weights()  # random initialisation
            finally:
                self.init_cfg = saved
            return
        checkpoint = str(checkpoint)
        if '://' in checkpoint:
            raise ValueError(f'img_backbone.init_cfg.checkpoint={checkpoint!r} is a URL; nothing is downloaded '
                             'at run time: download it once and give the local path')
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'img_backbone.init_cfg.checkpoint={checkpoint!r} does not exist')
        if self.convert_weights:  # original-repo Swin weights: mmdet's own conversion and loading
            super().init_weights()
            print_log(f'img_backbone: loaded {checkpoint} through mmdet\'s Swin weight conversion',
                      logger='current')
            return
        try:
            state, _ = load_state_dict(checkpoint)
        except CheckpointError as err:
            raise ValueError(f'img_backbone.init_cfg.checkpoint: {err}') from err
        state, prefix = _backbone_part(state)
        own = self.state_dict()
        usable = OrderedDict((k, v) for k, v in state.items() if k in own and own[k].shape == v.shape)
        if not usable:
            raise ValueError(f'img_backbone.init_cfg.checkpoint={checkpoint!r}: none of its tensors fits this Swin '
                             f'backbone (first keys: {list(state)[:3]}); expected a Swin state dict, optionally '
                             f'prefixed by {" or ".join(_PREFIXES)}')
        self.load_state_dict(usable, strict=False)
        report = compare_loaded(self.state_dict(), state, name=f'{checkpoint} ({prefix or "no prefix"})')
        print_log('img_backbone.init_cfg: ' + report.summary(ignore_missing_prefixes=()), logger='current')
        for line in report.details():
            print_log('  img_backbone: ' + line, logger='current',
                      level=logging.INFO if report.ok and not report.missing else logging.WARNING)
