"""The frozen probe's input normalisation: the probe's training and predictions do not depend on the scale of the
cached features (an arm whose encoders give 800x larger maps gets the same probe), and without the normalisation
they do."""
import numpy as np
import pytest
import torch
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import nn

from clap_plugin.benchmarks.label_efficiency.frozen_probe import (
    CachedSample,
    ProbeHead,
    ProbeInputNorm,
    feature_scale,
    init_weights_quietly,
    load_encoders,
    train_head,
)
from tests.models.bevfusion.test_head_transfusion import small_head_cfg

pytestmark = pytest.mark.usefixtures('mmdet3d_default_scope', 'single_thread')



def _sample(boxes, labels):
    s = Det3DDataSample(metainfo=dict(box_type_3d=LiDARInstance3DBoxes))
    s.gt_instances_3d = InstanceData(bboxes_3d=LiDARInstance3DBoxes(torch.tensor(boxes), box_dim=9),
                                     labels_3d=torch.tensor(labels))
    return s


def _cached(scale, n=4, seed=0):
    """n (1, 16, 16, 16) maps at a random-init encoder's scale (std ~1e-3, channels of unequal scale, a dead
    channel) times ``scale``, with boxes whose cells carry a signal in a few channels."""
    g = torch.Generator().manual_seed(seed)
    boxes = [[5.0, -3.0, -1.5, 4.2, 1.9, 1.6, 0.4, 1.0, 0.5], [-8.0, 10.0, -1.2, 0.7, 0.7, 1.8, -1.0, 0.0, 0.0],
             [12.0, 12.0, -1.0, 0.4, 0.4, 1.0, 2.0, 0.0, 0.0], [-2.0, -12.0, -1.4, 10.0, 2.9, 3.5, 3.0, -2.0, 0.1]]
    labels = [0, 8, 9, 3]
    channel_scale = torch.logspace(-4, -2.5, 16, dtype=torch.float64)[None, :, None, None]
    out = []
    for i in range(n):
        f = torch.randn(1, 16, 16, 16, generator=g, dtype=torch.float64).abs() * channel_scale
        f[:, 5] = 0.0  # a dead (ReLU) channel
        keep = [(i + k) % 4 for k in range(2)]
        for k in keep:  # the box centre's cell lights up channels 0-3
            ix, iy = int((boxes[k][0] + 19.2) / 2.4), int((boxes[k][1] + 19.2) / 2.4)
            f[0, :4, ix, iy] += 3e-3
        out.append(CachedSample((f * scale).float(), _sample([boxes[k] for k in keep], [labels[k] for k in keep])))
    return out


def _probe(scale, normalize, iters=10):
    losses = []
    head = train_head(small_head_cfg(), _cached(scale), iters, lr=1e-3, seed=0, warmup=3, normalize=normalize,
                      loss_log=losses)
    head.eval()
    val = _cached(scale, n=2, seed=1)
    with torch.no_grad():
        preds = [head.predict([s.feature], [s.data_sample.metainfo])[0] for s in val]
    return np.array(losses), preds


def test_probe_is_invariant_to_the_feature_scale_and_is_not_without_the_norm():
    loss_1, pred_1 = _probe(1.0, normalize=True)
    loss_800, pred_800 = _probe(800.0, normalize=True)
    assert loss_1.shape == (10, ) and np.isfinite(loss_1).all()
    np.testing.assert_allclose(loss_800, loss_1, rtol=1e-4)
    for a, b in zip(pred_1, pred_800):
        assert torch.allclose(a.scores_3d, b.scores_3d, rtol=1e-3, atol=1e-5)
        assert torch.equal(a.labels_3d, b.labels_3d)
        # float32 round-off, amplified by atan2 of near-zero yaw components, reaches 2e-3 on some CPUs (AVX-512)
        assert torch.allclose(a.bboxes_3d.tensor, b.bboxes_3d.tensor, rtol=1e-3, atol=5e-3)
    # the same probe on the raw maps: the scale changes the training (the test can tell the two apart)
    raw_1, _ = _probe(1.0, normalize=False)
    raw_800, _ = _probe(800.0, normalize=False)
    assert np.max(np.abs(raw_800 - raw_1) / np.abs(raw_1)) > 0.05


def test_probe_input_norm_is_batchnorm_without_affine_at_ordinary_scales():
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(2, 8, 5, 6, generator=g) * torch.linspace(0.5, 2.0, 8)[None, :, None, None] + 0.3
               for _ in range(3)]
    ours, ref = ProbeInputNorm(8), nn.BatchNorm2d(8, affine=False, momentum=None, eps=1e-12)
    for x in batches:
        assert torch.allclose(ours(x), ref(x), atol=1e-4)
    assert torch.allclose(ours.running_mean, ref.running_mean, atol=1e-6)
    assert torch.allclose(ours.running_var, ref.running_var, atol=1e-5)
    ours.eval(), ref.eval()
    assert torch.allclose(ours(batches[0]), ref(batches[0]), atol=1e-4)


def test_probe_input_norm_is_scale_invariant_where_batchnorm_is_not():
    x = torch.randn(2, 8, 5, 6, generator=torch.Generator().manual_seed(1)) * 8e-4  # random-init encoder scale
    x[:, 3] = 0.0
    for train in (True, False):
        outs = []
        for c in (1.0, 800.0, 1e-3):
            norm = ProbeInputNorm(8)
            norm(x * c)  # one training batch gives the running statistics
            norm.train(train)
            outs.append(norm(x * c))
        assert torch.isfinite(outs[0]).all() and (outs[0][:, 3] == 0).all()
        assert torch.allclose(outs[1], outs[0], atol=1e-4) and torch.allclose(outs[2], outs[0], atol=1e-4)
    # BatchNorm's constant eps = 1e-5 exceeds these features' variance (~6e-7): not scale-invariant
    bn = nn.BatchNorm2d(8, affine=False)
    assert not torch.allclose(bn(x), bn(800 * x), atol=1e-2)
    with pytest.raises(RuntimeError, match='eval mode before any training batch'):
        ProbeInputNorm(8).eval()(x)
    with pytest.raises(ValueError, match=r'\(B, 8, X, Y\)'):
        ProbeInputNorm(8)(x[:, :4])


def test_probe_head_wraps_the_head_and_feature_scale_matches_a_direct_computation():
    head = ProbeHead(small_head_cfg())
    assert isinstance(head.norm, ProbeInputNorm) and head.norm.num_channels == 16
    assert isinstance(ProbeHead(small_head_cfg(), normalize=False).norm, nn.Identity)
    samples = _cached(800.0, n=3)
    scale = feature_scale(samples)
    x = torch.cat([s.feature for s in samples]).double()
    stds = [x[:, c].flatten().std().item() for c in range(16)]
    assert scale.channel_std == pytest.approx(sum(stds) / 16, rel=1e-6)
    assert scale.abs_mean == pytest.approx(x.abs().mean().item(), rel=1e-6)


def test_side_by_side_probe_says_whether_each_difference_is_within_noise(synthetic_nus, capsys):
    from clap_plugin.benchmarks.compare_encoders import main
    assert main(['--data-root', synthetic_nus, '--arm', 'scratch=', '--arm', 'again=', '--iters', '2',
                 '--seeds', '0', '1']) == 0
    out = capsys.readouterr().out
    # the same random encoders and seeds twice: a zero difference, within noise
    assert 'again - scratch: mAP difference +0.0000' in out and 'within noise' in out


class TwoModules(nn.Module):
    def __init__(self):
        super().__init__()
        self.img_backbone = nn.Linear(3, 2)
        self.pts_middle_encoder = nn.Linear(4, 2)


def test_load_encoders_loads_only_the_named_modules(tmp_path):
    src = TwoModules()
    path = str(tmp_path / 'export.pth')
    torch.save(dict(state_dict=src.state_dict(), meta={}), path)
    dst = TwoModules()
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    assert load_encoders(dst, path, modules=['pts_middle_encoder']) == 2
    for k, v in dst.state_dict().items():
        expect = src.state_dict()[k] if k.startswith('pts_middle_encoder.') else before[k]
        assert torch.equal(v, expect), k
    assert load_encoders(TwoModules(), path) == 4
    with pytest.raises(ValueError, match=r"no tensors of \['view_transform'\]"):
        load_encoders(TwoModules(), path, modules=['view_transform'])


def test_side_by_side_arm_specs_name_an_export_and_its_modules(tmp_path):
    from clap_plugin.benchmarks.compare_encoders import ArmSpec, parse_arms
    path = tmp_path / 'clap.pth'
    path.write_bytes(b'x')
    assert parse_arms(['scratch=', f'clap={path}', f'cam={path}@img_backbone,img_neck']) == [
        ArmSpec('scratch'), ArmSpec('clap', str(path)), ArmSpec('cam', str(path), ('img_backbone', 'img_neck'))]
    for bad in ('scratch', f'cam={path}@', 'cam=@img_neck'):
        with pytest.raises(SystemExit, match='error: --arm'):
            parse_arms([bad])
    with pytest.raises(SystemExit, match='no file'):
        parse_arms([f'x={tmp_path}/missing.pth@img_neck'])


def test_init_weights_quietly_initialises_without_the_per_parameter_dump():
    import logging

    class Net(BaseModule):
        def __init__(self):
            super().__init__(init_cfg=dict(type='Constant', val=3.0, layer='Linear'))
            self.lin = nn.Linear(2, 2)

    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = MMLogger.get_current_instance()
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    try:
        net = Net()
        init_weights_quietly(net)
        assert torch.all(net.lin.weight == 3.0)  # the init_cfg was applied
        assert not any('lin.weight' in r for r in records), records
        assert logger.level == level  # the logger's level is restored
        Net().init_weights()  # the plain call does dump: the test would see it
        assert any('lin.weight' in r for r in records)
    finally:
        logger.removeHandler(handler)
