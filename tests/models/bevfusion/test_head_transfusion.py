"""CLAPTransFusionHead: state-dict compatibility with BEVFusion, forward, loss, backward, predict."""
import copy
import json
import math
import os.path as osp

import pytest
import torch
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from mmengine.structures import InstanceData

import clap_plugin  # noqa: F401  (registers the modules)
import clap_plugin.models.bevfusion.heads  # noqa: F401

pytestmark = pytest.mark.usefixtures('single_thread')  # tiny tensors

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
MANIFEST = osp.join(osp.dirname(__file__), 'transfusion_head_state_dict_manifest.json')
UPSTREAM_REFERENCE = osp.join(osp.dirname(__file__), 'transfusion_head_upstream_reference.json')

# the bbox_head of mmdet3d's projects/BEVFusion lidar-cam voxel0075 config, with this package's types
FULL_HEAD = dict(
    type='CLAPTransFusionHead',
    num_proposals=200,
    auxiliary=True,
    in_channels=512,
    hidden_channel=128,
    num_classes=10,
    nms_kernel_size=3,
    bn_momentum=0.1,
    num_decoder_layers=1,
    decoder_layer=dict(
        type='CLAPTransformerDecoderLayer',
        self_attn_cfg=dict(embed_dims=128, num_heads=8, dropout=0.1),
        cross_attn_cfg=dict(embed_dims=128, num_heads=8, dropout=0.1),
        ffn_cfg=dict(embed_dims=128, feedforward_channels=256, num_fcs=2, ffn_drop=0.1,
                     act_cfg=dict(type='ReLU', inplace=True)),
        norm_cfg=dict(type='LN'),
        pos_encoding_cfg=dict(input_channel=2, num_pos_feats=128)),
    train_cfg=dict(
        dataset='nuScenes',
        point_cloud_range=[-54.0, -54.0, -5.0, 54.0, 54.0, 3.0],
        grid_size=[1440, 1440, 41],
        voxel_size=[0.075, 0.075, 0.2],
        out_size_factor=8,
        gaussian_overlap=0.1,
        min_radius=2,
        pos_weight=-1,
        code_weights=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2],
        assigner=dict(
            type='CLAPHungarianAssigner3D',
            iou_calculator=dict(type='CLAPBboxOverlaps3D'),
            cls_cost=dict(type='mmdet.FocalLossCost', gamma=2.0, alpha=0.25, weight=0.15),
            reg_cost=dict(type='CLAPBBoxBEVL1Cost', weight=0.25),
            iou_cost=dict(type='CLAPIoU3DCost', weight=0.25))),
    test_cfg=dict(dataset='nuScenes', grid_size=[1440, 1440, 41], out_size_factor=8,
                  voxel_size=[0.075, 0.075], pc_range=[-54.0, -54.0], nms_type=None),
    common_heads=dict(center=[2, 2], height=[1, 2], dim=[3, 2], rot=[2, 2], vel=[2, 2]),
    bbox_coder=dict(
        type='CLAPTransFusionBBoxCoder',
        pc_range=[-54.0, -54.0],
        post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
        score_threshold=0.0,
        out_size_factor=8,
        voxel_size=[0.075, 0.075],
        code_size=10),
    loss_cls=dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                  reduction='mean', loss_weight=1.0),
    loss_heatmap=dict(type='mmdet.GaussianFocalLoss', reduction='mean', loss_weight=1.0),
    loss_bbox=dict(type='mmdet.L1Loss', reduction='mean', loss_weight=0.25))



def small_head_cfg(num_decoder_layers=2, auxiliary=True, nms_type=None):
    """The same head at 16 x 16 BEV cells over +-19.2 m with narrow layers."""
    cfg = copy.deepcopy(FULL_HEAD)
    pcr = [-19.2, -19.2, -5.0, 19.2, 19.2, 3.0]
    cfg.update(num_proposals=24, in_channels=16, hidden_channel=32,
               num_decoder_layers=num_decoder_layers, auxiliary=auxiliary)
    cfg['decoder_layer'].update(
        self_attn_cfg=dict(embed_dims=32, num_heads=4, dropout=0.0),
        cross_attn_cfg=dict(embed_dims=32, num_heads=4, dropout=0.0),
        ffn_cfg=dict(embed_dims=32, feedforward_channels=64, num_fcs=2, ffn_drop=0.0,
                     act_cfg=dict(type='ReLU', inplace=True)),
        pos_encoding_cfg=dict(input_channel=2, num_pos_feats=32))
    cfg['train_cfg'].update(point_cloud_range=pcr, grid_size=[128, 128, 41],
                            voxel_size=[0.3, 0.3, 0.2])
    cfg['test_cfg'].update(grid_size=[128, 128, 41], voxel_size=[0.3, 0.3],
                           pc_range=pcr[:2], nms_type=nms_type)
    cfg['bbox_coder'].update(pc_range=pcr[:2], voxel_size=[0.3, 0.3],
                             post_center_range=[-25.0, -25.0, -10.0, 25.0, 25.0, 10.0])
    return cfg


def closed_form_weights_(module):
    """Fill every parameter with a fixed function of its name and size (same values in any model
    whose state-dict names and shapes match, whatever the registration order)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            idx = torch.arange(p.numel(), dtype=torch.float64)
            phase = sum(ord(c) for c in name) % 97
            p.copy_((0.05 * torch.sin(0.37 * idx + phase)).view_as(p).to(p.dtype))


def closed_form_input():
    """(2, 16, 16, 16) BEV features from a fixed formula."""
    idx = torch.arange(2 * 16 * 16 * 16, dtype=torch.float64)
    return (torch.sin(0.013 * idx) + 0.5 * torch.cos(0.71 * idx)).view(2, 16, 16, 16).float()


def _samples():
    boxes = [
        torch.tensor([[5.0, -3.0, -1.5, 4.2, 1.9, 1.6, 0.4, 1.0, 0.5],
                      [-8.0, 10.0, -1.2, 0.7, 0.7, 1.8, -1.0, 0.0, 0.0],
                      [12.0, 12.0, -1.0, 0.4, 0.4, 1.0, 2.0, 0.0, 0.0]]),
        torch.tensor([[-2.0, -12.0, -1.4, 10.0, 2.9, 3.5, 3.0, -2.0, 0.1]]),
    ]
    labels = [torch.tensor([0, 8, 9]), torch.tensor([3])]
    samples = []
    for b, lab in zip(boxes, labels):
        s = Det3DDataSample(metainfo=dict(box_type_3d=LiDARInstance3DBoxes))
        s.gt_instances_3d = InstanceData(bboxes_3d=LiDARInstance3DBoxes(b, box_dim=9),
                                         labels_3d=lab)
        samples.append(s)
    return samples


def test_state_dict_matches_upstream_manifest():
    head = MODELS.build(copy.deepcopy(FULL_HEAD))
    with open(MANIFEST) as f:
        manifest = json.load(f)
    ours = {k: list(v.shape) for k, v in head.state_dict().items()}
    assert sorted(ours) == sorted(manifest)
    mismatched = {k: (ours[k], manifest[k]) for k in manifest if ours[k] != manifest[k]}
    assert not mismatched
    assert len(manifest) > 50


def test_forward_shapes():
    torch.manual_seed(0)
    head = MODELS.build(small_head_cfg())
    feats = torch.randn(2, 16, 16, 16)
    out = head([feats])[0]
    p2 = 24 * 2  # two supervised decoder layers
    assert out['center'].shape == (2, 2, p2)
    assert out['height'].shape == (2, 1, p2)
    assert out['dim'].shape == (2, 3, p2)
    assert out['rot'].shape == (2, 2, p2)
    assert out['vel'].shape == (2, 2, p2)
    assert out['heatmap'].shape == (2, 10, p2)
    assert out['dense_heatmap'].shape == (2, 10, 16, 16)
    assert out['query_heatmap_score'].shape == (2, 10, 24)
    assert out['query_labels'].shape == (2, 24)
    # the proposals are heatmap local maxima: their query score equals the dense heatmap there
    score = out['query_heatmap_score'].gather(1, out['query_labels'][:, None])[:, 0]
    assert (score > 0).all()
    assert (score[:, :-1] >= score[:, 1:]).all()  # best first


@pytest.mark.parametrize('device', DEVICES)
def test_loss_and_backward(device):
    torch.manual_seed(0)
    head = MODELS.build(small_head_cfg()).to(device)
    head.init_weights()
    feats = torch.randn(2, 16, 16, 16, device=device, requires_grad=True)
    losses = head.loss([feats], [s.to(device) for s in _samples()])
    expected = {'loss_heatmap', 'layer_0_loss_cls', 'layer_0_loss_bbox', 'layer_-1_loss_cls',
                'layer_-1_loss_bbox', 'matched_ious'}
    assert set(losses) == expected
    for k, v in losses.items():
        assert torch.isfinite(v).all(), k
    assert 0 <= losses['matched_ious'].item() <= 1
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert feats.grad is not None and feats.grad.abs().sum() > 0
    for name in ('shared_conv.weight', 'heatmap_head.1.weight', 'class_encoding.weight',
                 'decoder.0.cross_attn.attn.in_proj_weight', 'decoder.1.ffn.layers.1.weight',
                 'prediction_heads.0.center.1.weight', 'prediction_heads.1.heatmap.1.weight'):
        grad = dict(head.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_loss_rejects_mismatched_grid():
    head = MODELS.build(small_head_cfg())
    with pytest.raises(ValueError, match='grid_size'):
        head.loss([torch.randn(2, 16, 20, 16)], _samples())


def test_overfit_one_sample_recovers_boxes():
    """A few dozen steps on one sample: the top predictions land on the gt boxes."""
    torch.manual_seed(0)
    head = MODELS.build(small_head_cfg(num_decoder_layers=1))
    head.init_weights()
    feats = torch.randn(1, 16, 16, 16)
    sample = _samples()[:1]
    gt = sample[0].gt_instances_3d
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3)
    for _ in range(120):
        losses = head.loss([feats], sample)
        opt.zero_grad()
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        res = head.predict([feats], sample)[0]
    top = res.scores_3d.argsort(descending=True)[:10]
    centers = res.bboxes_3d.gravity_center[top]
    for g, label in zip(gt.bboxes_3d.gravity_center, gt.labels_3d):
        dist = (centers[:, :2] - g[:2]).norm(dim=1)
        hit = (dist < 1.0) & (res.labels_3d[top] == label)
        assert hit.any(), (g, label, centers, res.labels_3d[top])


@pytest.mark.parametrize('device', DEVICES)
def test_predict_outputs_in_range(device):
    torch.manual_seed(1)
    head = MODELS.build(small_head_cfg(nms_type='circle')).to(device)
    head.eval()
    with torch.no_grad():
        results = head.predict([torch.randn(2, 16, 16, 16, device=device)], _samples())
    assert len(results) == 2
    for res in results:
        assert isinstance(res.bboxes_3d, LiDARInstance3DBoxes)
        assert res.bboxes_3d.tensor.shape[1] == 9
        n = len(res.scores_3d)
        assert 0 < n <= 24 and res.labels_3d.shape == (n, )
        assert ((res.scores_3d >= 0) & (res.scores_3d <= 1)).all()
        assert ((res.labels_3d >= 0) & (res.labels_3d < 10)).all()
        c = res.bboxes_3d.gravity_center
        assert (c[:, :2].abs() <= 25.0).all() and (c[:, 2].abs() <= 10.0).all()
        assert (res.bboxes_3d.dims > 0).all()


def test_config_errors_name_the_key():
    cfg = small_head_cfg()
    cfg['loss_cls'] = dict(type='mmdet.FocalLoss', use_sigmoid=False)
    with pytest.raises(ValueError, match='use_sigmoid'):
        MODELS.build(cfg)
    cfg = small_head_cfg()
    del cfg['train_cfg']['grid_size']
    with pytest.raises(KeyError, match='grid_size'):
        MODELS.build(cfg)


def test_matches_upstream_reference_outputs():
    """Same weights and input as mmdet3d projects/BEVFusion's TransFusionHead (small config, one decoder
    layer): predictions and losses equal the reference values recorded from the upstream head (in eval
    mode, with this package's CPU IoU calculator in its assigner since upstream's is CUDA-only)."""
    with open(UPSTREAM_REFERENCE) as f:
        ref = json.load(f)
    head = MODELS.build(small_head_cfg(num_decoder_layers=1))
    closed_form_weights_(head)
    head.eval()
    x = closed_form_input()
    with torch.no_grad():
        out = head([x])[0]
        losses = head.loss([x], _samples())
    assert out['query_labels'].tolist() == ref['query_labels']
    for k in ('center', 'height', 'dim', 'rot', 'vel', 'heatmap', 'query_heatmap_score'):
        assert torch.allclose(out[k], torch.tensor(ref[k]), rtol=1e-4, atol=1e-5), k
    assert abs(out['dense_heatmap'].double().sum().item() - ref['dense_heatmap_sum']) < 1e-2
    assert set(losses) == set(ref['losses'])
    for k, v in ref['losses'].items():
        assert abs(losses[k].item() - v) <= 1e-4 * max(1.0, abs(v)), (k, losses[k].item(), v)


def test_loss_with_a_sample_without_boxes():
    torch.manual_seed(0)
    head = MODELS.build(small_head_cfg())
    samples = _samples()
    empty = samples[1].gt_instances_3d
    samples[1].gt_instances_3d = InstanceData(
        bboxes_3d=LiDARInstance3DBoxes(empty.bboxes_3d.tensor[:0], box_dim=9),
        labels_3d=empty.labels_3d[:0])
    feats = torch.randn(2, 16, 16, 16, requires_grad=True)
    losses = head.loss([feats], samples)
    for k, v in losses.items():
        assert torch.isfinite(v).all(), k
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert feats.grad[1].abs().sum() > 0  # the empty sample still gets the background losses


# ------------------------------------------------------------------------------------- dense heatmap prior
def _prior_head(prior, seed=0):
    torch.manual_seed(seed)
    head = MODELS.build(dict(small_head_cfg(), heatmap_prior_prob=prior))
    head.init_weights()
    return head


def test_heatmap_prior_sets_the_focal_bias_and_nothing_else():
    p = 0.1
    with_prior, without = _prior_head(p), _prior_head(None)
    bias = with_prior.heatmap_head[-1].bias
    assert torch.allclose(bias, torch.full_like(bias, -math.log((1 - p) / p)))
    assert abs(bias[0].item() - (-2.1972)) < 1e-4
    assert torch.allclose(bias.sigmoid(), torch.full_like(bias, p))
    # None is the conv's default init: a non-constant bias inside PyTorch's bound 1 / sqrt(fan_in)
    conv = without.heatmap_head[-1]
    fan_in = conv.weight[0].numel()
    assert conv.bias.std() > 0 and conv.bias.abs().max() <= 1 / math.sqrt(fan_in)
    # same seed: every other tensor is identical, and the state dict has the same names and shapes
    a, b = with_prior.state_dict(), without.state_dict()
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    differ = sorted(k for k in a if not torch.equal(a[k], b[k]))
    cls_biases = [f'prediction_heads.{i}.heatmap.{len(h.heatmap) - 1}.bias'
                  for i, h in enumerate(with_prior.prediction_heads)]
    assert differ == sorted(['heatmap_head.1.bias'] + cls_biases)
    # the per-query classification starts at p as well (SeparateHead's own init never runs, see init_weights)
    for name in cls_biases:
        assert torch.allclose(a[name].sigmoid(), torch.full_like(a[name], p))


def test_heatmap_prior_sets_the_initial_heatmap_probability_and_loss():
    feats = torch.randn(2, 16, 16, 16, generator=torch.Generator().manual_seed(3))
    probs, losses = {}, {}
    for prior in (0.1, None):
        head = _prior_head(prior)
        head.train()
        with torch.no_grad():
            probs[prior] = head([feats])[0]['dense_heatmap'].sigmoid().mean().item()
            losses[prior] = head.loss([feats], _samples())['loss_heatmap'].item()
    assert abs(probs[0.1] - 0.1) < 0.03
    assert abs(probs[None] - 0.5) < 0.1
    assert losses[None] >= 10 * losses[0.1], losses


def test_heatmap_prior_rejects_bad_values():
    for bad in (0.0, 1.0, -0.1, 1.5, True, '0.1'):
        with pytest.raises(ValueError, match='heatmap_prior_prob'):
            MODELS.build(dict(small_head_cfg(), heatmap_prior_prob=bad))
    with pytest.raises(ValueError, match='heatmap_prior_prob'):
        MODELS.build(dict(small_head_cfg(), heatmap_prior_prob=0.1, bias=False))


def test_fine_tune_configs_turn_the_prior_on_and_the_class_default_is_off():
    import inspect

    from mmengine.config import Config

    from clap_plugin.models.bevfusion.heads.transfusion_head import CLAPTransFusionHead
    default = inspect.signature(CLAPTransFusionHead).parameters['heatmap_prior_prob'].default
    assert default is None  # upstream-compatible class default
    root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    for name in ('bevfusion_lidar-cam_finetune_nus.py', 'bevfusion_lidar-cam_finetune_nus_cpu-tiny.py',
                 'bevfusion_lidar_finetune_nus.py', 'bevfusion_lidar_finetune_nus_cpu-tiny.py'):
        cfg = Config.fromfile(osp.join(root, 'configs', name))
        assert cfg.model.bbox_head.heatmap_prior_prob == 0.1, name
