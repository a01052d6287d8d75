"""Write the encoder-only part of a (pre-training or fine-tuning) checkpoint for ``load_from``.

    python tools/export_pretrained.py CKPT OUT [--bn-stats keep|recompute|drop]
    python tools/export_pretrained.py CKPT OUT --bn-stats recompute --config CONFIG --data-root DIR/
    python tools/export_pretrained.py CKPT OUT [--trained-modules pts_voxel_encoder,pts_middle_encoder | --all-modules]

Only the modules the method trained: a pre-trainer declares the encoder submodules it trains
(``trained_encoder_modules``, read through the config mmengine stores in the checkpoint's ``meta['cfg']``;
CLAP and detectors train all of them). The others are left out, so that at fine-tuning they keep the shared
initialisation (``init_cfg``, e.g. ImageNet weights of the image backbone) instead of being overwritten by
weights the method never trained. The tool prints which modules were trained and exported and which were left
out. ``--trained-modules`` overrides the declaration; ``--all-modules`` exports every encoder submodule (the
old behaviour). A checkpoint without a stored config (a bare state dict) exports every encoder present, and
the tool says so.

BN running statistics: pre-training fits them to 90%-masked inputs. ``--bn-stats recompute`` (default when
``--config`` is given) re-estimates them on unmasked inputs of the config's training set (``--bn-batches``
samples, forward only, no gradient); ``drop`` leaves them out so the detector starts from its initial ones;
``keep`` copies them as they are.

Keeps the state-dict entries of the BEVFusion encoders (``img_backbone``, ``img_neck``, ``view_transform``,
``pts_voxel_encoder``, ``pts_middle_encoder``, ``fusion_layer``, ``pts_backbone``, ``pts_neck``), with their
names unchanged and their per-module version metadata (which mmdet3d's spconv 2 loader reads to decide
whether to permute sparse-conv kernels), so the file loads into clap_plugin's fine-tune configs and into
mmdet3d's BEVFusion. Drops
everything else: rendering head, prototypes, projection heads, detection head, optimizer and scheduler state,
message hub. ``meta`` keeps only a note of the source. The output is written to a temporary name beside OUT
and renamed, so a crash never leaves a truncated OUT. Prints, per submodule, how many tensors and parameters
(elements) it carries.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository: clap_plugin, projects/
from clap_plugin.apis.export_pretrained import main  # noqa: E402

if __name__ == '__main__':
    main(sys.argv[1:])
