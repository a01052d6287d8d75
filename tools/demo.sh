#!/usr/bin/env bash
# The README's first command (`make demo`): synthetic nuScenes -> info files -> CLAP pre-training (CPU-tiny)
# -> encoder export -> fine-tuning from the export -> nuScenes evaluation, then the same fine-tuning from
# scratch and a frozen-encoder probe of both, side by side, with the time of each step.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-work_dirs/demo}
PY=${PY:-.venv/bin/python}
DATA="$OUT/data/nuscenes"
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-4}
FINETUNE_ITERS=${FINETUNE_ITERS:-60}
PROBE_ITERS=${PROBE_ITERS:-100}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one thread is fastest for these small CPU models
mkdir -p "$OUT"
start=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - start )) s] $*"; }

if [ ! -f "$DATA/v1.0-mini/scene.json" ]; then
  step "generating the synthetic nuScenes set in $DATA"
  "$PY" tools/create_synthetic_nuscenes.py --root "$DATA" --version v1.0-mini --scenes 2 --samples-per-scene 6 \
    --seed 0 --sweeps 2
else
  step "synthetic set already present in $DATA"
fi
step "writing mmdet3d info files"
"$PY" tools/create_data.py nuscenes --root-path "$DATA" --out-dir "$DATA" --extra-tag nuscenes --version v1.0-mini \
  --max-sweeps 10 > "$OUT/create_data.log" 2>&1

step "CLAP pre-training (configs/clap_pretrain_nus_cpu-tiny.py, $PRETRAIN_EPOCHS epochs)"
"$PY" tools/train.py configs/clap_pretrain_nus_cpu-tiny.py --work-dir "$OUT/pretrain" \
  --cfg-options data_root="$DATA/" train_cfg.max_epochs="$PRETRAIN_EPOCHS" > "$OUT/pretrain.log" 2>&1 \
  || { tail -n 40 "$OUT/pretrain.log"; exit 1; }
grep -E "Epoch\(train\)" "$OUT/pretrain.log" | sed -n '1p;$p' | sed 's/^.*Epoch/   Epoch/' | cut -c1-240

step "exporting the pre-trained encoders"
# BN statistics re-estimated on unmasked inputs (pre-training fitted them to 90%-masked ones)
"$PY" tools/export_pretrained.py "$OUT/pretrain/epoch_${PRETRAIN_EPOCHS}.pth" "$OUT/clap_encoders.pth" \
  --bn-stats recompute --config configs/clap_pretrain_nus_cpu-tiny.py --data-root "$DATA/" > "$OUT/export.log" 2>&1 \
  || { tail -n 40 "$OUT/export.log"; exit 1; }
grep -E "^(submodule|img_|pts_|view_|fusion_|total|dropped|BN|wrote)" "$OUT/export.log" | sed 's/^/   /' || true

step "fine-tuning the CPU-tiny BEVFusion detector from the export ($FINETUNE_ITERS iterations)"
"$PY" tools/train.py configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py --work-dir "$OUT/finetune" \
  --cfg-options data_root="$DATA/" load_from="$OUT/clap_encoders.pth" train_cfg.max_iters="$FINETUNE_ITERS" \
  train_cfg.val_interval="$FINETUNE_ITERS" param_scheduler.1.end="$FINETUNE_ITERS" \
  > "$OUT/finetune.log" 2>&1 || { tail -n 40 "$OUT/finetune.log"; exit 1; }
# CheckpointLoadReportHook: every tensor of the export compared with the model after load_from
report=$(grep -h "mmengine - INFO - checkpoint .*tensors loaded unchanged" "$OUT/finetune.log" | tail -n1 \
  | sed 's/^.*INFO - //' || true)
echo "   load_from: ${report:-no load report found in $OUT/finetune.log}"
grep -hE "WARNING -   (shape mismatch|permuted on load|changed on load)" "$OUT/finetune.log" | sed 's/^.*WARNING -  /   /' \
  | cut -c1-240 || true
case "$report" in
  *" 0 shape mismatches, 0 permuted, 0 changed, 0 unexpected;"*" (0 outside bbox_head)") ;;
  *) echo "   error: the export did not load exactly into the encoders (see $OUT/finetune.log)"; exit 1 ;;
esac

step "evaluating on the val split (NuScenesMetric)"
"$PY" tools/test.py configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py "$OUT/finetune/iter_${FINETUNE_ITERS}.pth" \
  --work-dir "$OUT/test" --cfg-options data_root="$DATA/" > "$OUT/test.log" 2>&1 \
  || { tail -n 40 "$OUT/test.log"; exit 1; }
metrics() { grep -oE "^.*(mAP|NDS): [0-9.]+$" "$1" | grep -oE "(mAP|NDS): [0-9.]+" | tr '\n' ' ' || true; }
clap_ft=$(metrics "$OUT/test.log")
echo "   $clap_ft"

step "the same fine-tuning from scratch (random encoders, same iterations and seed), for comparison"
"$PY" tools/train.py configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py --work-dir "$OUT/finetune_scratch" \
  --cfg-options data_root="$DATA/" train_cfg.max_iters="$FINETUNE_ITERS" train_cfg.val_interval="$FINETUNE_ITERS" \
  param_scheduler.1.end="$FINETUNE_ITERS" > "$OUT/finetune_scratch.log" 2>&1 \
  || { tail -n 40 "$OUT/finetune_scratch.log"; exit 1; }
"$PY" tools/test.py configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py \
  "$OUT/finetune_scratch/iter_${FINETUNE_ITERS}.pth" --work-dir "$OUT/test_scratch" --cfg-options data_root="$DATA/" \
  > "$OUT/test_scratch.log" 2>&1 || { tail -n 40 "$OUT/test_scratch.log"; exit 1; }
scratch_ft=$(metrics "$OUT/test_scratch.log")
echo "   $scratch_ft"

step "frozen-encoder probe: encoders frozen, only bbox_head trains ($PROBE_ITERS iterations, seeds 0 1 2)"
"$PY" tools/benchmarks/frozen_probe.py --data-root "$DATA/" --arm scratch= --arm CLAP="$OUT/clap_encoders.pth" \
  --iters "$PROBE_ITERS" --seeds 0 1 2 > "$OUT/probe.log" 2>&1 || { tail -n 40 "$OUT/probe.log"; exit 1; }

step "side by side on the val split: scratch vs CLAP pre-training"
echo "   full fine-tuning ($FINETUNE_ITERS iterations):  scratch  $scratch_ft"
echo "                                            CLAP     $clap_ft"
ft_verdict=$("$PY" -c "
import re, sys
from clap_plugin.benchmarks.label_efficiency.stats import noise_verdict
m = [float(re.search(r'mAP: ([0-9.]+)', s).group(1)) for s in sys.argv[1:]]
print(noise_verdict([m[0]], [m[1]]))" "$clap_ft" "$scratch_ft")
echo "   full fine-tuning, CLAP - scratch: $ft_verdict"
sed -n '/^frozen-encoder probe/,$p' "$OUT/probe.log" | sed 's/^/   /'
echo "   Within noise means the demo cannot tell the two apart: it is smoke-sized (a few val samples). The"
echo "   label-efficiency benchmark (docs/benchmarks.md) has the seeds and error bars that can."

step "demo done"
echo "   data:         $DATA (nuScenes tree + nuscenes_infos_{train,val}.pkl)"
echo "   pre-training: $OUT/pretrain (checkpoints, logs; pictures in $OUT/pretrain/vis)"
echo "   encoders:     $OUT/clap_encoders.pth"
echo "   fine-tuning:  $OUT/finetune ; evaluation: $OUT/test.log (scratch: $OUT/finetune_scratch, $OUT/test_scratch.log)"
echo "   probe:        $OUT/probe.log"
