"""Train the image backbone on a 2D task of its own data: the 2D teacher of PPKT/CMCR and the image-backbone
initialisation of every pre-training arm.

    python tools/create_synthetic_nuscenes.py --root /tmp/teacher_data/nuscenes --scenes 10 --samples-per-scene 4 \\
        --sweeps 0 --image-size 704 396 --save-gt-maps --seed 1011
    python tools/train_2d_teacher.py --data-root /tmp/teacher_data/nuscenes --out work_dirs/teacher_2d.pth

Task: semantic segmentation of the synthetic generator's per-pixel class maps (``synthetic_gt/<token>.npz``,
key ``semantic``; classes ``clap_plugin.synthetic.scene_writer.SEMANTIC_CLASSES``), written only with
``--save-gt-maps``. Use a set generated with a seed of its own, so its scenes are disjoint from the 3D
pre-training and fine-tuning sets. Scenes, not images, are split: the last ``--val-scenes`` scenes (by name)
are held out, and the tool reports their mean IoU at the end.

Model: the config's ``model.img_backbone`` (default: the CPU-tiny CLAPSwinTransformer of
configs/_base_/models/bevfusion_cpu-tiny.py), a small head (1x1 conv of each output level to ``--head-channels``,
summed at the finest level's stride, BN, ReLU, 1x1 conv to the classes, bilinear upsampling), AdamW, cross
entropy. Inputs are the BGR images normalised with the config's data-preprocessor mean/std, as the BEVFusion
pipeline feeds them; training crops of the pre-training image size (``--crop``, default that of the model's
``view_transform.image_size``) at a random scale and flip; validation on the whole images.

Output (temporary name, then rename): an mmengine-style checkpoint whose ``state_dict`` holds the backbone as
``img_backbone.*`` (and the head as ``seg_head.*``), with ``meta`` giving the classes, the held-out IoUs, the
data and the settings. It loads as ``model.img_backbone.init_cfg.checkpoint=PATH`` and as the PPKT/CMCR
``model.teacher_checkpoint=PATH``.
"""
import argparse
import json
import os
import os.path as osp
import time
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))  # the checkout (the package is installed editable)
DEFAULT_CONFIG = osp.join(REPO, 'configs', '_base_', 'models', 'bevfusion_cpu-tiny.py')


class SegHead(nn.Module):
    """Sum of 1x1-projected backbone levels at the finest stride, BN, ReLU, 1x1 classifier."""

    def __init__(self, in_channels: Sequence[int], channels: int, num_classes: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.norm = nn.BatchNorm2d(channels)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: Sequence[torch.Tensor], out_size: Tuple[int, int]) -> torch.Tensor:
        size = feats[0].shape[-2:]
        x = sum(F.interpolate(lat(f), size=size, mode='bilinear', align_corners=False) if f.shape[-2:] != size
                else lat(f) for lat, f in zip(self.lateral, feats))
        x = self.classifier(F.relu(self.norm(x)))
        return F.interpolate(x, size=out_size, mode='bilinear', align_corners=False)


class Segmenter(nn.Module):

    def __init__(self, backbone: nn.Module, head: SegHead) -> None:
        super().__init__()
        self.img_backbone = backbone
        self.seg_head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.img_backbone(x)
        feats = list(feats) if isinstance(feats, (list, tuple)) else [feats]
        return self.seg_head(feats, x.shape[-2:])


def load_split(data_root: str, version: str, val_scenes: int) -> Tuple[List[dict], List[dict], List[str]]:
    """(train items, held-out items, class names); an item is {image: path, label: path, scene: name}."""
    from clap_plugin.synthetic.scene_writer import SEMANTIC_CLASSES
    tables = osp.join(data_root, version)
    if not osp.isdir(tables):
        raise SystemExit(f'error: --data-root {data_root!r} has no {version}/ tables (see --version)')

    def read(name):
        with open(osp.join(tables, f'{name}.json')) as f:
            return json.load(f)

    scene_name = {s['token']: s['name'] for s in read('scene')}
    sample_scene = {s['token']: scene_name[s['scene_token']] for s in read('sample')}
    items = defaultdict(list)
    for sd in read('sample_data'):
        if sd['fileformat'] != 'jpg' or not sd['is_key_frame']:
            continue
        label = osp.join(data_root, 'synthetic_gt', sd['token'] + '.npz')
        if not osp.isfile(label):
            raise SystemExit(f'error: {label} is missing: generate the data with tools/create_synthetic_nuscenes.py '
                             '--save-gt-maps')
        scene = sample_scene[sd['sample_token']]
        items[scene].append(dict(image=osp.join(data_root, sd['filename']), label=label, scene=scene))
    names = sorted(items)
    if not 1 <= val_scenes < len(names):
        raise SystemExit(f'error: --val-scenes {val_scenes} must be in [1, {len(names) - 1}] for the {len(names)} '
                         f'scenes of {data_root}')
    train = [it for n in names[:-val_scenes] for it in items[n]]
    val = [it for n in names[-val_scenes:] for it in items[n]]
    return train, val, list(SEMANTIC_CLASSES)


def load_arrays(items: Sequence[dict]) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    imgs, labels = [], []
    for it in items:
        img = cv2.imread(it['image'], cv2.IMREAD_COLOR)  # BGR, as mmcv loads it for the BEVFusion pipeline
        if img is None:
            raise SystemExit(f'error: cannot read image {it["image"]}')
        with np.load(it['label']) as z:
            if 'semantic' not in z:
                raise SystemExit(f'error: {it["label"]} has no "semantic" map: regenerate the data with this '
                                 'version of tools/create_synthetic_nuscenes.py --save-gt-maps')
            lab = z['semantic'].astype(np.int64)
        if lab.shape != img.shape[:2]:
            raise SystemExit(f'error: {it["label"]} is {lab.shape}, its image {img.shape[:2]}')
        imgs.append(img)
        labels.append(lab)
    return imgs, labels


def random_crop(img: np.ndarray, lab: np.ndarray, crop: Tuple[int, int], scale: Tuple[float, float],
                rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Rescale by U(scale), crop ``crop`` (H, W) at a random place (padding with label -1 if needed), flip."""
    s = rng.uniform(*scale)
    h, w = img.shape[:2]
    nh, nw = max(crop[0], int(round(h * s))), max(crop[1], int(round(w * s)))
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    lab = cv2.resize(lab.astype(np.int32), (nw, nh), interpolation=cv2.INTER_NEAREST).astype(np.int64)
    y0, x0 = int(rng.integers(0, nh - crop[0] + 1)), int(rng.integers(0, nw - crop[1] + 1))
    img, lab = img[y0:y0 + crop[0], x0:x0 + crop[1]], lab[y0:y0 + crop[0], x0:x0 + crop[1]]
    if rng.uniform() < 0.5:
        img, lab = img[:, ::-1], lab[:, ::-1]
    return np.ascontiguousarray(img), np.ascontiguousarray(lab)


def to_tensor(imgs: Sequence[np.ndarray], mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.stack(imgs)).float().permute(0, 3, 1, 2)
    return (x - torch.from_numpy(mean).view(1, 3, 1, 1)) / torch.from_numpy(std).view(1, 3, 1, 1)


def confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    valid = target >= 0
    idx = target[valid] * num_classes + pred[valid]
    return torch.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_from_confusion(conf: torch.Tensor) -> Tuple[List[Optional[float]], float]:
    """Per-class IoU (None for a class absent from both prediction and target) and their mean."""
    tp = conf.diag().double()
    union = conf.sum(0).double() + conf.sum(1).double() - tp
    ious = [float(t / u) if u > 0 else None for t, u in zip(tp, union)]
    present = [v for v in ious if v is not None]
    return ious, float(np.mean(present)) if present else 0.0


@torch.no_grad()
def evaluate(model: nn.Module, imgs, labels, mean, std, num_classes: int) -> Tuple[List[Optional[float]], float,
                                                                                   float]:
    """Held-out (per-class IoU, mIoU, pixel accuracy) on whole images."""
    model.eval()
    conf = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for img, lab in zip(imgs, labels):
        logits = model(to_tensor([img], mean, std))
        conf += confusion(logits.argmax(1)[0].reshape(-1), torch.from_numpy(lab).reshape(-1), num_classes)
    model.train()
    ious, miou = iou_from_confusion(conf)
    return ious, miou, float(conf.diag().sum()) / max(1, int(conf.sum()))


def build_model(config: str, num_classes: int, head_channels: int) -> Tuple[nn.Module, dict, np.ndarray,
                                                                            np.ndarray, Tuple[int, int]]:
    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules(init_default_scope=True)
    import clap_plugin  # noqa: F401
    if not osp.isfile(config):
        raise SystemExit(f'error: --config {config!r} does not exist')
    cfg = Config.fromfile(config)
    if 'img_backbone' not in cfg.get('model', {}):
        raise SystemExit(f'error: {config} has no model.img_backbone')
    bb_cfg = cfg.model.img_backbone.to_dict()
    backbone = MODELS.build(bb_cfg)
    backbone.init_weights()
    with torch.no_grad():
        feats = backbone(torch.zeros(1, 3, 64, 64))
    feats = list(feats) if isinstance(feats, (list, tuple)) else [feats]
    head = SegHead([f.shape[1] for f in feats], head_channels, num_classes)
    pre = cfg.model.get('data_preprocessor', {})
    mean = np.asarray(pre.get('mean', [123.675, 116.28, 103.53]), np.float32)
    std = np.asarray(pre.get('std', [58.395, 57.12, 57.375]), np.float32)
    vt = cfg.model.get('view_transform') or {}
    crop = tuple(vt.get('image_size', (128, 352)))
    return Segmenter(backbone, head), bb_cfg, mean, std, crop


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Train the image backbone on 2D semantic segmentation (2D teacher)')
    p.add_argument('--data-root', required=True, help='synthetic nuScenes root written with --save-gt-maps')
    p.add_argument('--out', required=True, help='output checkpoint (.pth)')
    p.add_argument('--version', default='v1.0-mini')
    p.add_argument('--config', default=DEFAULT_CONFIG, help='config whose model.img_backbone is trained')
    p.add_argument('--val-scenes', type=int, default=2, help='scenes held out for the reported mIoU')
    p.add_argument('--iters', type=int, default=1500)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--weight-decay', type=float, default=0.01)
    p.add_argument('--head-channels', type=int, default=64)
    p.add_argument('--crop', type=int, nargs=2, default=None, metavar=('H', 'W'),
                   help="training crop (default: the model's view_transform.image_size)")
    p.add_argument('--scale', type=float, nargs=2, default=(0.85, 1.25), metavar=('MIN', 'MAX'),
                   help='random rescale of the training images before cropping')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--log-interval', type=int, default=25)
    args = p.parse_args(argv)
    if args.iters < 1 or args.batch_size < 1:
        p.error('--iters and --batch-size must be >= 1')
    return args


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    from clap_plugin.utils.state_dicts import save_checkpoint
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    train_items, val_items, classes = load_split(args.data_root, args.version, args.val_scenes)
    train_imgs, train_labels = load_arrays(train_items)
    val_imgs, val_labels = load_arrays(val_items)
    model, bb_cfg, mean, std, crop = build_model(args.config, len(classes), args.head_channels)
    crop = tuple(args.crop) if args.crop else crop
    print(f'2D teacher: {bb_cfg["type"]} of {args.config}; {len(train_items)} train images of '
          f'{len({i["scene"] for i in train_items})} scenes, {len(val_items)} held-out images of scenes '
          f'{sorted({i["scene"] for i in val_items})}; {len(classes)} classes; crops {crop}', flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    warmup = max(1, args.iters // 20)

    def lr_factor(i: int) -> float:  # linear warm-up, then cosine to 0
        if i < warmup:
            return (i + 1) / warmup
        return 0.5 * (1 + np.cos(np.pi * (i - warmup) / max(1, args.iters - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    model.train()
    for it in range(1, args.iters + 1):
        idx = rng.integers(0, len(train_imgs), size=args.batch_size)
        pairs = [random_crop(train_imgs[i], train_labels[i], crop, tuple(args.scale), rng) for i in idx]
        x = to_tensor([a for a, _ in pairs], mean, std)
        y = torch.from_numpy(np.stack([b for _, b in pairs]))
        loss = F.cross_entropy(model(x), y, ignore_index=-1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % args.log_interval == 0 or it == args.iters:
            print(f'iter {it}/{args.iters} loss {loss.item():.4f} ({time.time() - t0:.0f} s)', flush=True)
    train_s = time.time() - t0
    ious, miou, acc = evaluate(model, val_imgs, val_labels, mean, std, len(classes))
    print(f'held-out mIoU {miou:.4f}, pixel accuracy {acc:.4f} ({len(val_items)} images)')
    for name, v in zip(classes, ious):
        print(f'  {name:<14} {"absent" if v is None else f"{v:.4f}"}')
    meta = dict(task='semantic segmentation of synthetic per-pixel class maps', classes=classes,
                held_out_miou=miou, held_out_pixel_acc=acc, held_out_iou=ious, data_root=osp.abspath(args.data_root),
                val_scenes=sorted({i['scene'] for i in val_items}), train_images=len(train_items),
                img_backbone=bb_cfg, iters=args.iters, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                crop=list(crop), train_seconds=train_s)
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    save_checkpoint(args.out, model.state_dict(), meta)
    print(f'wrote {args.out} in {time.time() - t0:.0f} s; load it with '
          f'model.img_backbone.init_cfg.checkpoint={args.out} or model.teacher_checkpoint={args.out}')
    return meta

