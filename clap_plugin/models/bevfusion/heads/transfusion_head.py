"""TransFusion-style detection head of BEVFusion (heatmap queries + transformer decoder).

Input: one fused BEV map ``(B, in_channels, X, Y)`` in BEVFusion's layout (first spatial axis = x).
Parameter names and shapes equal mmdet3d ``projects/BEVFusion`` ``TransFusionHead`` so checkpoints load
either way (see ``tests/models/bevfusion/transfusion_head_state_dict_manifest.json``).
"""
import copy
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.models.task_modules import AssignResult
from mmdet3d.models.dense_heads.centerpoint_head import SeparateHead
from mmdet3d.registry import MODELS, TASK_UTILS
from mmdet3d.structures import LiDARInstance3DBoxes
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from .circle_nms import circle_nms_keep
from .heatmap_targets import gaussian_heatmap_targets
from .query_init import bev_cell_centers, keep_local_maxima, top_proposals

# classes that skip the heatmap local-maximum suppression (small objects), per dataset
_NMS_EXEMPT_CLASSES = {'nuScenes': (8, 9), 'Waymo': (1, 2)}
# circle-NMS groups for nms_type='circle': (class indices, radius); radius <= 0 means no NMS
_CIRCLE_NMS_TASKS = {
    'nuScenes': (((0, 1, 2, 3, 4, 5, 6, 7), -1.0), ((8, ), 0.175), ((9, ), 0.175)),
    'Waymo': (((0, ), 0.7), ((1, ), 0.7), ((2, ), 0.7)),
}
_TRAIN_CFG_KEYS = ('point_cloud_range', 'grid_size', 'voxel_size', 'out_size_factor',
                   'gaussian_overlap', 'min_radius', 'assigner')


def _clipped_sigmoid(x: Tensor, eps: float = 1e-4) -> Tensor:
    return x.sigmoid().clamp(min=eps, max=1 - eps)


@MODELS.register_module()
class CLAPTransFusionHead(BaseModule):
    """TransFusion head: heatmap proposals refined by transformer decoder layers.

    Args:
        num_proposals: number of object queries P.
        auxiliary: supervise every decoder layer (else only the last).
        in_channels: channels of the input BEV map.
        hidden_channel: query / key width.
        num_classes: number of classes C (sigmoid classification).
        num_decoder_layers: decoder depth L.
        decoder_layer: decoder layer config (default type ``CLAPTransformerDecoderLayer``).
        num_heads: kept for config compatibility (heads are set in ``decoder_layer``).
        nms_kernel_size: heatmap local-maximum window.
        bn_momentum: momentum of every BatchNorm in the head.
        common_heads: regression heads ``name=(out_channels, num_convs)``.
        num_heatmap_convs: convs of the per-query classification head.
        conv_cfg, norm_cfg, bias: layers of the prediction heads.
        loss_cls, loss_bbox, loss_heatmap: loss configs (classification must use sigmoid).
        train_cfg: target / assignment settings (grid, voxel, Gaussian, code weights, assigner).
        test_cfg: ``dataset`` ('nuScenes' / 'Waymo' / other) and ``nms_type`` (None or 'circle').
        bbox_coder: box coder config (default type ``CLAPTransFusionBBoxCoder``).
        heatmap_prior_prob: initial probability p of every cell of the dense heatmap and of every query's
            classification: ``init_weights`` sets the bias of the last heatmap conv and of each prediction
            head's last ``heatmap`` (classification) conv to -log((1 - p) / p) (the focal-loss prior of
            RetinaNet / CenterNet; p = 0.1 gives -2.197). None (upstream's default) keeps the convs' default
            init, where p is about 0.5 per cell and the dense heatmap loss starts hundreds of times above its
            floor. The state dict is the same either way.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 num_proposals: int = 128,
                 auxiliary: bool = True,
                 in_channels: int = 128 * 3,
                 hidden_channel: int = 128,
                 num_classes: int = 4,
                 num_decoder_layers: int = 3,
                 decoder_layer: dict = dict(),
                 num_heads: int = 8,
                 nms_kernel_size: int = 1,
                 bn_momentum: float = 0.1,
                 common_heads: dict = dict(),
                 num_heatmap_convs: int = 2,
                 conv_cfg: dict = dict(type='Conv1d'),
                 norm_cfg: dict = dict(type='BN1d'),
                 bias: Union[str, bool] = 'auto',
                 loss_cls: dict = dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0,
                                       alpha=0.25, reduction='mean', loss_weight=1.0),
                 loss_bbox: dict = dict(type='mmdet.L1Loss', reduction='mean', loss_weight=0.25),
                 loss_heatmap: dict = dict(type='mmdet.GaussianFocalLoss', reduction='mean',
                                           loss_weight=1.0),
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 bbox_coder: Optional[dict] = None,
                 heatmap_prior_prob: Optional[float] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self._check_args(loss_cls, train_cfg, bbox_coder, heatmap_prior_prob, bias)
        self.heatmap_prior_prob = None if heatmap_prior_prob is None else float(heatmap_prior_prob)
        self.num_classes = num_classes
        self.num_proposals = num_proposals
        self.auxiliary = auxiliary
        self.in_channels = in_channels
        self.num_heads = num_heads
        self.num_decoder_layers = num_decoder_layers
        self.bn_momentum = bn_momentum
        self.nms_kernel_size = nms_kernel_size
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg if test_cfg is not None else dict()

        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_heatmap = MODELS.build(loss_heatmap)
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.bbox_assigner = (TASK_UTILS.build(train_cfg['assigner'])
                              if train_cfg is not None else None)

        conv_bias = True if bias == 'auto' else bool(bias)
        self.shared_conv = nn.Conv2d(in_channels, hidden_channel, 3, padding=1, bias=conv_bias)
        self.heatmap_head = nn.Sequential(
            ConvModule(hidden_channel, hidden_channel, kernel_size=3, padding=1, bias=bias,
                       conv_cfg=dict(type='Conv2d'), norm_cfg=dict(type='BN2d')),
            nn.Conv2d(hidden_channel, num_classes, 3, padding=1, bias=conv_bias))
        self.class_encoding = nn.Conv1d(num_classes, hidden_channel, 1)

        layer_cfg = dict(type='CLAPTransformerDecoderLayer')
        layer_cfg.update(decoder_layer)
        self.decoder = nn.ModuleList(
            [MODELS.build(copy.deepcopy(layer_cfg)) for _ in range(num_decoder_layers)])

        self.prediction_heads = nn.ModuleList()
        for _ in range(num_decoder_layers):
            heads = copy.deepcopy(dict(common_heads))
            heads['heatmap'] = (num_classes, num_heatmap_convs)
            self.prediction_heads.append(
                SeparateHead(hidden_channel, heads, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                             bias=bias))

        self._init_decoder()
        for m in self.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.momentum = bn_momentum

    @staticmethod
    def _check_args(loss_cls: dict, train_cfg: Optional[dict], bbox_coder: Optional[dict],
                    heatmap_prior_prob: Optional[float], bias: Union[str, bool]) -> None:
        """Refuse a configuration the head cannot train with, naming the argument."""
        if not loss_cls.get('use_sigmoid', False):
            raise ValueError('CLAPTransFusionHead needs a sigmoid classification loss: '
                             'set loss_cls.use_sigmoid=True')
        if train_cfg is not None:
            missing = [k for k in _TRAIN_CFG_KEYS if k not in train_cfg]
            if missing:
                raise KeyError(f'CLAPTransFusionHead train_cfg lacks {missing}')
        if bbox_coder is None:
            raise ValueError('CLAPTransFusionHead needs a bbox_coder config')
        if heatmap_prior_prob is None:
            return
        if (isinstance(heatmap_prior_prob, bool) or not isinstance(heatmap_prior_prob, (int, float))
                or not 0.0 < float(heatmap_prior_prob) < 1.0):
            raise ValueError(f'CLAPTransFusionHead heatmap_prior_prob must be None or in (0, 1), '
                             f'got {heatmap_prior_prob!r}')
        if not (bias == 'auto' or bool(bias)):
            raise ValueError(f'CLAPTransFusionHead heatmap_prior_prob needs a heatmap conv bias, but '
                             f'bias={bias!r}')

    # ------------------------------------------------------------------ init
    def _init_decoder(self) -> None:
        for p in self.decoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def heatmap_prior_bias(self) -> Optional[float]:
        """The dense heatmap conv's initial bias -log((1 - p) / p) for ``heatmap_prior_prob`` p (None: off)."""
        p = self.heatmap_prior_prob
        return None if p is None else -math.log((1.0 - p) / p)

    def init_weights(self) -> None:
        """Children's inits, Xavier for the decoder, then the dense heatmap conv's bias prior when
        ``heatmap_prior_prob`` is set (applied last: a checkpoint loaded afterwards replaces it).

        As in upstream, the prediction heads sit in a torch ``nn.ModuleList``, which mmengine's init does not
        descend into: ``SeparateHead.init_weights`` (its -2.19 classification bias) does not run, and without
        the prior the per-query classification keeps the conv's default init. With the prior, its last
        ``heatmap`` conv gets the same bias as the dense heatmap."""
        super().init_weights()
        self._init_decoder()
        prior = self.heatmap_prior_bias()
        if prior is not None:
            nn.init.constant_(self.heatmap_head[-1].bias, prior)
            for pred_head in self.prediction_heads:
                nn.init.constant_(pred_head.heatmap[-1].bias, prior)

    # --------------------------------------------------------------- forward
    def _nms_exempt_classes(self) -> Sequence[int]:
        return _NMS_EXEMPT_CLASSES.get(self.test_cfg.get('dataset', None), ())

    def forward_single(self, x: Tensor) -> Dict[str, Tensor]:
        """Predict from one BEV map.

        Args:
            x: (B, in_channels, X, Y) BEV features.

        Returns:
            dict with ``center`` (B, 2, L'P) in cells, ``height`` (B, 1, L'P), ``dim`` (B, 3, L'P) log
            sizes, ``rot`` (B, 2, L'P) sin/cos, ``vel`` (B, 2, L'P), ``heatmap`` (B, C, L'P) logits,
            where L' = L if auxiliary else 1; ``query_heatmap_score`` (B, C, P), ``dense_heatmap``
            (B, C, X, Y) logits and ``query_labels`` (B, P) proposal classes.
        """
        batch_size = x.shape[0]
        feat = self.shared_conv(x)
        x_size, y_size = feat.shape[-2:]
        feat_flat = feat.flatten(2)  # (B, hidden, XY)
        bev_pos = bev_cell_centers(x_size, y_size, device=feat.device,
                                   dtype=feat.dtype).expand(batch_size, -1, -1)

        with torch.autocast(device_type=feat.device.type, enabled=False):
            dense_heatmap = self.heatmap_head(feat.float())
        heatmap = keep_local_maxima(dense_heatmap.detach().sigmoid(), self.nms_kernel_size,
                                    self._nms_exempt_classes()).flatten(2)  # (B, C, XY)
        query_labels, query_index = top_proposals(heatmap, self.num_proposals)

        query_feat = feat_flat.gather(
            -1, query_index[:, None, :].expand(-1, feat_flat.shape[1], -1))
        one_hot = F.one_hot(query_labels, self.num_classes).permute(0, 2, 1).to(query_feat)
        query_feat = query_feat + self.class_encoding(one_hot)
        query_pos = bev_pos.gather(1, query_index[..., None].expand(-1, -1, 2))

        layer_outputs = []
        for decoder, pred_head in zip(self.decoder, self.prediction_heads):
            query_feat = decoder(query_feat, feat_flat, query_pos, bev_pos)
            out = pred_head(query_feat)
            out['center'] = out['center'] + query_pos.permute(0, 2, 1)
            layer_outputs.append(out)
            query_pos = out['center'].detach().permute(0, 2, 1)

        if self.auxiliary:
            result = {k: torch.cat([o[k] for o in layer_outputs], dim=-1)
                      for k in layer_outputs[0]}
        else:
            result = dict(layer_outputs[-1])
        result['query_heatmap_score'] = heatmap.gather(
            -1, query_index[:, None, :].expand(-1, self.num_classes, -1))
        result['dense_heatmap'] = dense_heatmap
        result['query_labels'] = query_labels
        return result

    def forward(self, feats: Union[Tensor, List[Tensor]],
                batch_input_metas: Optional[List[dict]] = None) -> List[Dict[str, Tensor]]:
        """Run on a list with one BEV map (B, C, X, Y); returns a list with one prediction dict."""
        if isinstance(feats, Tensor):
            feats = [feats]
        if len(feats) != 1:
            raise ValueError(f'CLAPTransFusionHead takes one feature level, got {len(feats)}')
        return [self.forward_single(feats[0])]

    # ----------------------------------------------------------------- train
    @staticmethod
    def _split_samples(batch_data_samples) -> Tuple[List[dict], List[InstanceData]]:
        metas, gts = [], []
        for sample in batch_data_samples:
            if isinstance(sample, Mapping):
                metas.append(dict(sample))
                gts.append(None)
            else:
                metas.append(sample.metainfo)
                gts.append(getattr(sample, 'gt_instances_3d', None))
        return metas, gts

    def loss(self, batch_feats: List[Tensor], batch_data_samples: list) -> Dict[str, Tensor]:
        """Losses from BEV features and ``Det3DDataSample`` s with ``gt_instances_3d``."""
        metas, gts = self._split_samples(batch_data_samples)
        if any(g is None for g in gts):
            raise KeyError('every data sample needs gt_instances_3d for the loss')
        preds = self(batch_feats, metas)
        return self.loss_by_feat(preds, gts)

    def _decode_all(self, preds: Mapping[str, Tensor], sl: slice) -> List[dict]:
        return self.bbox_coder.decode(
            preds['heatmap'][sl].detach(), preds['rot'][sl].detach(),
            preds['dim'][sl].detach(), preds['center'][sl].detach(),
            preds['height'][sl].detach(),
            preds['vel'][sl].detach() if 'vel' in preds else None)

    def get_targets_single(self, gt_instances_3d: InstanceData, preds: Mapping[str, Tensor],
                           batch_idx: int) -> Tuple[Tensor, ...]:
        """Targets of one sample over the L' * P supervised proposals.

        Returns:
            labels (L'P,), label_weights (L'P,), bbox_targets (L'P, code), bbox_weights (L'P, code),
            ious (L'P,), num_pos per layer (L',), heatmap (C, X, Y).
        """
        cfg = self.train_cfg
        sl = slice(batch_idx, batch_idx + 1)
        score = preds['heatmap'][sl].detach()  # (1, C, L'P)
        boxes = self._decode_all(preds, sl)[0]['bboxes']  # (L'P, 7|9)
        gt_boxes = gt_instances_3d.bboxes_3d
        gt_tensor = gt_boxes.tensor.to(boxes.device)
        gt_labels = gt_instances_3d.labels_3d.to(boxes.device).long()
        num_layers = score.shape[-1] // self.num_proposals

        gt_inds, overlaps = [], []
        for layer in range(num_layers):
            lsl = slice(layer * self.num_proposals, (layer + 1) * self.num_proposals)
            res: AssignResult = self.bbox_assigner.assign(
                boxes[lsl], gt_tensor, gt_labels, score[..., lsl], cfg)
            gt_inds.append(res.gt_inds)
            overlaps.append(res.max_overlaps)
        gt_inds = torch.cat(gt_inds)
        ious = torch.cat(overlaps).clamp(0.0, 1.0)
        pos = gt_inds > 0

        n = boxes.shape[0]
        code_size = self.bbox_coder.code_size
        labels = gt_labels.new_full((n, ), self.num_classes)
        label_weights = boxes.new_ones(n)
        bbox_targets = boxes.new_zeros((n, code_size))
        bbox_weights = boxes.new_zeros((n, code_size))
        if pos.any():
            matched = gt_inds[pos] - 1
            bbox_targets[pos] = self.bbox_coder.encode(gt_tensor[matched]).to(bbox_targets)
            bbox_weights[pos] = 1.0
            labels[pos] = gt_labels[matched]
            if cfg.get('pos_weight', -1) > 0:
                label_weights[pos] = float(cfg['pos_weight'])
        num_pos = pos.view(num_layers, -1).sum(-1)
        heatmap = gaussian_heatmap_targets(gt_tensor, gt_labels, self.num_classes, cfg)
        return labels, label_weights, bbox_targets, bbox_weights, ious, num_pos, heatmap

    def loss_by_feat(self, preds_dicts: List[Dict[str, Tensor]],
                     batch_gt_instances_3d: List[InstanceData]) -> Dict[str, Tensor]:
        """Heatmap focal loss plus, per supervised decoder layer, focal cls and L1 box losses."""
        if self.train_cfg is None or self.bbox_assigner is None:
            raise RuntimeError('CLAPTransFusionHead.loss needs train_cfg with an assigner')
        preds = preds_dicts[0]
        dense = preds['dense_heatmap']
        expected = tuple(int(s) // self.train_cfg['out_size_factor']
                         for s in self.train_cfg['grid_size'][:2])
        if tuple(dense.shape[-2:]) != expected:
            raise ValueError(f'BEV map size {tuple(dense.shape[-2:])} differs from train_cfg '
                             f'grid_size // out_size_factor = {expected} (layout (X, Y))')
        targets = [self.get_targets_single(gt, preds, i)
                   for i, gt in enumerate(batch_gt_instances_3d)]
        labels, label_weights, bbox_targets, bbox_weights, ious, num_pos, heatmap = (
            torch.stack(t) for t in zip(*targets))

        losses = dict()
        losses['loss_heatmap'] = self.loss_heatmap(
            _clipped_sigmoid(dense).float(), heatmap.float(),
            avg_factor=max(heatmap.eq(1).float().sum().item(), 1.0))

        num_layers = preds['heatmap'].shape[-1] // self.num_proposals
        code_weights = self.train_cfg.get('code_weights', None)
        code_weights = (bbox_weights.new_tensor(code_weights) if code_weights is not None
                        else bbox_weights.new_ones(self.bbox_coder.code_size))
        reg_keys = ['center', 'height', 'dim', 'rot'] + (['vel'] if 'vel' in preds else [])
        for layer in range(num_layers):
            prefix = 'layer_-1' if layer == num_layers - 1 else f'layer_{layer}'
            lsl = slice(layer * self.num_proposals, (layer + 1) * self.num_proposals)
            avg = max(float(num_pos[:, layer].sum()), 1.0)
            cls_score = preds['heatmap'][..., lsl].permute(0, 2, 1).reshape(-1, self.num_classes)
            losses[f'{prefix}_loss_cls'] = self.loss_cls(
                cls_score.float(), labels[:, lsl].reshape(-1),
                label_weights[:, lsl].reshape(-1), avg_factor=avg)
            box_pred = torch.cat([preds[k][..., lsl] for k in reg_keys], dim=1).permute(0, 2, 1)
            losses[f'{prefix}_loss_bbox'] = self.loss_bbox(
                box_pred, bbox_targets[:, lsl], bbox_weights[:, lsl] * code_weights,
                avg_factor=avg)

        # logged, not optimised: mean over samples of the mean IoU of their matched proposals
        pos = (bbox_weights[..., 0] > 0).float()
        per_sample = (ious * pos).sum(-1) / pos.sum(-1).clamp(min=1.0)
        losses['matched_ious'] = per_sample.mean().detach()
        return losses

    # ------------------------------------------------------------- inference
    def predict(self, batch_feats: List[Tensor], batch_data_samples: list) -> List[InstanceData]:
        """Boxes per sample: ``InstanceData(bboxes_3d, scores_3d, labels_3d)``.

        ``batch_data_samples`` are ``Det3DDataSample`` s (or their metainfo dicts).
        """
        metas, _ = self._split_samples(batch_data_samples)
        preds = self(batch_feats, metas)
        return self.predict_by_feat(preds, metas)

    def predict_by_feat(self, preds_dicts: List[Dict[str, Tensor]],
                        batch_input_metas: List[dict]) -> List[InstanceData]:
        """Decode the last decoder layer's proposals, optionally with circle NMS per class group."""
        preds = preds_dicts[0]
        sl = (Ellipsis, slice(-self.num_proposals, None))
        one_hot = F.one_hot(preds['query_labels'], self.num_classes).permute(0, 2, 1)
        score = preds['heatmap'][sl].sigmoid() * preds['query_heatmap_score'] * one_hot
        decoded = self.bbox_coder.decode(
            score, preds['rot'][sl], preds['dim'][sl], preds['center'][sl],
            preds['height'][sl], preds['vel'][sl] if 'vel' in preds else None, filter=True)

        nms_type = self.test_cfg.get('nms_type', None)
        results = []
        for i, det in enumerate(decoded):
            boxes, scores, labels = det['bboxes'], det['scores'], det['labels']
            if nms_type is not None:
                keep = self._circle_nms_keep(boxes, scores, labels, nms_type)
                boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            meta = batch_input_metas[i] if i < len(batch_input_metas) else {}
            box_type = meta.get('box_type_3d', LiDARInstance3DBoxes)
            inst = InstanceData()
            inst.bboxes_3d = box_type(boxes, box_dim=boxes.shape[-1])
            inst.scores_3d = scores
            inst.labels_3d = labels.long()
            results.append(inst)
        return results

    def _circle_nms_keep(self, boxes: Tensor, scores: Tensor, labels: Tensor,
                         nms_type: str) -> Tensor:
        if nms_type != 'circle':
            raise ValueError(f"test_cfg.nms_type must be None or 'circle', got {nms_type!r}")
        dataset = self.test_cfg.get('dataset', None)
        tasks = _CIRCLE_NMS_TASKS.get(dataset, ((tuple(range(self.num_classes)), -1.0), ))
        keep = torch.zeros_like(scores, dtype=torch.bool)
        for classes, radius in tasks:
            in_task = torch.zeros_like(keep)
            for c in classes:
                in_task |= labels == c
            idx = torch.nonzero(in_task).flatten()
            if radius <= 0 or idx.numel() == 0:
                keep[idx] = True
                continue
            # as in CenterPoint / TransFusion the radius thresholds the squared distance
            keep[idx[circle_nms_keep(boxes[idx, :2], scores[idx], radius)]] = True
        return keep
