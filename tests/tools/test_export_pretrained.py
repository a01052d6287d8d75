"""tools/export_pretrained.py keeps exactly the encoder entries, and the result loads with load_from."""
import os
import os.path as osp

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(REPO, 'configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py')
ENCODERS = ('img_backbone', 'img_neck', 'view_transform', 'pts_voxel_encoder', 'pts_middle_encoder',
            'fusion_layer', 'pts_backbone', 'pts_neck')


def _tiny_model():
    from mmdet3d.registry import MODELS

    from clap_plugin.apis import load_config
    cfg = load_config(TINY)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def pretrain_ckpt(tmp_path_factory):
    """A checkpoint shaped like a CLAP pre-training one: encoders, extra heads, optimizer, message hub."""
    from mmengine.logging import HistoryBuffer
    torch.manual_seed(0)
    model = _tiny_model()
    state = model.state_dict()  # keeps the per-module version metadata, as mmengine's checkpoints do
    for k in [k for k in state if k.startswith('bbox_head')]:
        del state[k]
    # perturb so the exported values are distinguishable from a fresh init
    for k in state:
        state[k] = state[k].clone()
        if state[k].is_floating_point():
            state[k].add_(0.5)
    state['render_head.sdf_mlp.0.weight'] = torch.randn(16, 40)
    state['render_head.deviation'] = torch.tensor([0.3])
    state['prototypes.weight'] = torch.randn(512, 128)
    state['proj_lidar.0.weight'] = torch.randn(128, 128)
    state['proj_camera.0.weight'] = torch.randn(128, 32)
    buf = HistoryBuffer()
    buf.update(1.5)
    ckpt = dict(meta=dict(epoch=1, iter=10, seed=0), state_dict=state,
                optimizer=dict(state={0: dict(step=torch.tensor(10.0), exp_avg=torch.zeros(3))},
                               param_groups=[dict(lr=5e-5, params=[0])]),
                message_hub=dict(log_scalars={'train/loss': buf}, runtime_info={}, resumed_keys={}))
    path = str(tmp_path_factory.mktemp('pretrain') / 'clap_pretrain.pth')
    torch.save(ckpt, path)
    return path, state


def test_export_keeps_exactly_the_encoder_keys(pretrain_ckpt, tmp_path, capsys):
    from clap_plugin.apis import export_pretrained
    src, state = pretrain_ckpt
    out = str(tmp_path / 'sub' / 'encoder.pth')
    kept = export_pretrained.main([src, out])
    expected = [k for k in state if k.split('.', 1)[0] in ENCODERS]
    assert list(kept) == expected
    saved = torch.load(out, map_location='cpu', weights_only=True)
    assert set(saved) == {'meta', 'state_dict'}
    assert list(saved['state_dict']) == expected
    for k in expected:
        assert torch.equal(saved['state_dict'][k], state[k])
    assert not any(k.startswith(('render_head', 'prototypes', 'proj_')) for k in saved['state_dict'])
    assert saved['meta']['iter'] == 10
    # spconv 2 modules keep their version (else mmdet3d's loader would permute the sparse kernels)
    meta = saved['state_dict']._metadata
    assert meta['pts_middle_encoder.conv_input.0'].get('version') == 2
    assert not any(k.startswith(('render_head', 'bbox_head')) for k in meta)
    # no temporary file left beside the output
    assert os.listdir(tmp_path / 'sub') == ['encoder.pth']
    # per-submodule report
    text = capsys.readouterr().out
    for prefix in ENCODERS:
        tensors = [v for k, v in state.items() if k.split('.', 1)[0] == prefix]
        line = next(ln for ln in text.splitlines() if ln.split() and ln.split()[0] == prefix)
        assert line.split()[1:] == [str(len(tensors)), f'{sum(t.numel() for t in tensors):,d}']
    assert 'dropped 5 tensors' in text


def test_exported_checkpoint_loads_into_a_fresh_model(pretrain_ckpt, tmp_path, capsys):
    from mmengine.runner import load_checkpoint

    from clap_plugin.apis import export_pretrained
    src, state = pretrain_ckpt
    out = str(tmp_path / 'encoder.pth')
    export_pretrained.main([src, out])
    capsys.readouterr()
    torch.manual_seed(1)
    model = _tiny_model()
    head_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith('bbox_head')}
    load_checkpoint(model, out, map_location='cpu', strict=False)  # what load_from does
    msg = capsys.readouterr().out
    missing_line = next((ln for ln in msg.splitlines() if 'missing keys' in ln), '')
    missing = [k.strip() for k in missing_line.split(':', 1)[-1].split(',') if k.strip()]
    assert missing, msg  # the head is not in the export ...
    assert all(k.startswith('bbox_head.') for k in missing), missing  # ... and no encoder key is missing
    assert 'unexpected key' not in msg
    loaded = model.state_dict()
    for k, v in state.items():
        if k.split('.', 1)[0] in ENCODERS:
            assert torch.equal(loaded[k], v), k
    for k, v in head_before.items():
        assert torch.equal(loaded[k], v), k


def test_bad_inputs_are_rejected(tmp_path):
    from clap_plugin.apis import export_pretrained
    out = str(tmp_path / 'o.pth')
    with pytest.raises(SystemExit, match='does not exist'):
        export_pretrained.main([str(tmp_path / 'missing.pth'), out])
    text = tmp_path / 'notes.txt'
    text.write_text('not a checkpoint')
    with pytest.raises(SystemExit, match='not a loadable PyTorch checkpoint'):
        export_pretrained.main([str(text), out])
    no_enc = tmp_path / 'head_only.pth'
    torch.save(dict(state_dict={'bbox_head.w': torch.zeros(2)}), str(no_enc))
    with pytest.raises(SystemExit, match='none of the encoder submodules'):
        export_pretrained.main([str(no_enc), out])
    tensor_file = tmp_path / 'tensor.pth'
    torch.save(torch.zeros(3), str(tensor_file))
    with pytest.raises(SystemExit, match='not a checkpoint dict'):
        export_pretrained.main([str(tensor_file), out])
    assert not osp.exists(out)


def _with_cfg(src: str, dst: str, config: str) -> str:
    """A copy of checkpoint ``src`` whose meta carries ``config``'s text, as mmengine's runner stores it."""
    from mmengine.config import Config
    ckpt = torch.load(src, map_location='cpu', weights_only=False)
    ckpt['meta']['cfg'] = Config.fromfile(osp.join(REPO, config)).pretty_text
    torch.save(ckpt, dst)
    return dst


def test_export_keeps_only_the_modules_the_method_trained(pretrain_ckpt, tmp_path, capsys):
    from clap_plugin.apis import export_pretrained
    src, state = pretrain_ckpt
    present = {k.split('.', 1)[0] for k in state} & set(ENCODERS)  # HardSimpleVFE has no tensors
    # PPKT declares that it trains the LiDAR encoder only: the image branch, fuser and BEV backbone are left out
    ppkt = _with_cfg(src, str(tmp_path / 'ppkt.pth'), 'projects/PPKT/configs/ppkt_pretrain_nus_cpu-tiny.py')
    kept = export_pretrained.main([ppkt, str(tmp_path / 'ppkt_enc.pth')])
    assert {k.split('.', 1)[0] for k in kept} == {'pts_middle_encoder'}
    assert list(kept) == [k for k in state if k.startswith('pts_middle_encoder.')]
    text = capsys.readouterr().out
    assert "trained modules (PPKTPretrainer.trained_encoder_modules): ['pts_middle_encoder']" in text
    assert ("left out (present, not trained by this method; the fine-tune keeps its own init): ['img_backbone', "
            "'img_neck', 'view_transform', 'fusion_layer', 'pts_backbone', 'pts_neck']") in text
    saved = torch.load(str(tmp_path / 'ppkt_enc.pth'), map_location='cpu', weights_only=True)
    assert saved['meta']['left_out'][:2] == ['img_backbone', 'img_neck']
    assert all(k in saved['state_dict']._metadata for k in ('pts_middle_encoder.conv_input.0', ''))
    # SimIPU: both encoders, not the view transform / fuser / BEV backbone
    simipu = _with_cfg(src, str(tmp_path / 'simipu.pth'), 'projects/SimIPU/configs/simipu_pretrain_nus_cpu-tiny.py')
    kept = export_pretrained.main([simipu, str(tmp_path / 'simipu_enc.pth')])
    assert {k.split('.', 1)[0] for k in kept} == {'img_backbone', 'img_neck', 'pts_middle_encoder'}
    # CLAP's pre-trainer renders from the fused BEV: it trains (and exports) every encoder
    clap = _with_cfg(src, str(tmp_path / 'clap.pth'), 'configs/clap_pretrain_nus_cpu-tiny.py')
    kept = export_pretrained.main([clap, str(tmp_path / 'clap_enc.pth')])
    assert {k.split('.', 1)[0] for k in kept} == present
    assert 'CLAPPretrainer declares no trained_encoder_modules' in capsys.readouterr().out
    # overrides
    kept = export_pretrained.main([ppkt, str(tmp_path / 'all.pth'), '--all-modules'])
    assert {k.split('.', 1)[0] for k in kept} == present
    kept = export_pretrained.main([src, str(tmp_path / 'img.pth'), '--trained-modules', 'img_backbone,img_neck'])
    assert {k.split('.', 1)[0] for k in kept} == {'img_backbone', 'img_neck'}
    with pytest.raises(SystemExit, match="--trained-modules 'img_backbone,head'"):
        export_pretrained.main([src, str(tmp_path / 'x.pth'), '--trained-modules', 'img_backbone,head'])
    with pytest.raises(SystemExit, match='not both'):
        export_pretrained.main([src, str(tmp_path / 'x.pth'), '--trained-modules', 'img_neck', '--all-modules'])
    # a checkpoint without a stored config: all encoders, and the tool says the trained set is unknown
    capsys.readouterr()
    export_pretrained.main([src, str(tmp_path / 'bare.pth')])
    assert 'trained modules unknown' in capsys.readouterr().out
    assert not osp.exists(str(tmp_path / 'x.pth'))
