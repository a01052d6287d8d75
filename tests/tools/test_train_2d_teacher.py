"""tools/train_2d_teacher.py: the semantic maps it learns from, its IoU arithmetic, and that its checkpoint loads as
the image backbone's Pretrained init_cfg and as the PPKT teacher."""
import os.path as osp

import numpy as np
import pytest
import torch

from tests.helpers.paths import REPO


def test_iou_from_confusion_matches_a_hand_count():
    from clap_plugin.apis.train_2d_teacher import confusion, iou_from_confusion
    target = torch.tensor([0, 0, 1, 1, 1, 2, -1])
    pred = torch.tensor([0, 1, 1, 1, 0, 2, 2])
    conf = confusion(pred, target, 4)
    ious, miou = iou_from_confusion(conf)
    # class 0: tp 1, fp 1, fn 1 -> 1/3; class 1: tp 2, fp 1, fn 1 -> 1/2; class 2: 1/1; class 3 absent
    assert ious[:3] == pytest.approx([1 / 3, 1 / 2, 1.0]) and ious[3] is None
    assert miou == pytest.approx((1 / 3 + 1 / 2 + 1) / 3)


def test_semantic_maps_follow_the_object_ids(synthetic_nus):
    import glob

    from clap_plugin.synthetic.scene_writer import SEMANTIC_CLASSES
    files = [f for f in sorted(glob.glob(osp.join(synthetic_nus, 'synthetic_gt', '*.npz')))
             if 'semantic' in np.load(f).files][:6]
    assert files
    for f in files:
        z = np.load(f)
        sem, ids = z['semantic'], z['object_id']
        assert sem.dtype == np.uint8 and sem.shape == ids.shape and sem.max() < len(SEMANTIC_CLASSES)
        assert (sem[ids == -1] == SEMANTIC_CLASSES.index('sky')).all()
        assert (sem[ids == 0] == SEMANTIC_CLASSES.index('ground')).all()
        for i in np.unique(ids[ids > 0]):  # one class per object
            assert len(np.unique(sem[ids == i])) == 1


def test_teacher_checkpoint_loads_as_backbone_init_and_as_ppkt_teacher(synthetic_nus, tmp_path, capsys):
    from mmdet3d.registry import MODELS
    from mmengine.config import Config

    from clap_plugin.apis import train_2d_teacher
    out = str(tmp_path / 'teacher.pth')
    meta = train_2d_teacher.main(['--data-root', synthetic_nus, '--out', out, '--val-scenes', '1', '--iters', '2',
                                  '--batch-size', '1', '--log-interval', '1'])
    text = capsys.readouterr().out
    assert 'held-out mIoU' in text and 0.0 <= meta['held_out_miou'] <= 1.0
    assert meta['val_scenes'] == ['scene-0103'] and len(meta['classes']) == 9
    saved = torch.load(out, map_location='cpu', weights_only=False)
    assert saved['meta']['held_out_miou'] == meta['held_out_miou']
    backbone = {k[len('img_backbone.'):]: v for k, v in saved['state_dict'].items() if k.startswith('img_backbone.')}
    assert backbone and any(k.startswith('seg_head.') for k in saved['state_dict'])
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/models/bevfusion_cpu-tiny.py'))
    # as the image backbone's initialisation ...
    cfg.model.img_backbone.init_cfg.checkpoint = out
    bb = MODELS.build(cfg.model.img_backbone)
    bb.init_weights()
    assert all(torch.equal(bb.state_dict()[k], v) for k, v in backbone.items())
    # ... and as PPKT's frozen teacher
    ppkt = Config.fromfile(osp.join(REPO, 'projects/PPKT/configs/ppkt_pretrain_nus_cpu-tiny.py'))
    ppkt.model.teacher_checkpoint = out
    model = MODELS.build(ppkt.model)
    model.init_weights()
    assert model.teacher_mode == 'checkpoint'
    assert all(torch.equal(model.teacher.state_dict()[k], v) for k, v in backbone.items())
    assert not any(torch.equal(model.img_backbone.state_dict()[k], v) for k, v in backbone.items()
                   if k.endswith('qkv.weight'))


def test_missing_semantic_maps_are_refused(tmp_path):
    from clap_plugin.apis import train_2d_teacher
    with pytest.raises(SystemExit, match='has no v1.0-mini/ tables'):
        train_2d_teacher.main(['--data-root', str(tmp_path), '--out', str(tmp_path / 'o.pth')])
