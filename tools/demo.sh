#!/usr/bin/env bash
# The README's first command (`make demo`): synthetic nuScenes data -> mmdet3d info files, with timings.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-work_dirs/demo}
PY=${PY:-.venv/bin/python}
DATA="$OUT/data/nuscenes"
mkdir -p "$OUT"
start=$(date +%s)
if [ ! -f "$DATA/v1.0-mini/scene.json" ]; then
  echo "== generating the synthetic nuScenes set in $DATA"
  "$PY" tools/create_synthetic_nuscenes.py --root "$DATA" --version v1.0-mini --scenes 2 --samples-per-scene 6 \
    --seed 0 --sweeps 2
else
  echo "== synthetic set already present in $DATA"
fi
echo "== writing mmdet3d info files"
"$PY" tools/create_data.py nuscenes --root-path "$DATA" --out-dir "$DATA" --extra-tag nuscenes --version v1.0-mini \
  --max-sweeps 10
echo "== demo done in $(( $(date +%s) - start )) s"
echo "   data:  $DATA (nuScenes tree: v1.0-mini/, samples/, sweeps/, maps/)"
echo "   infos: $DATA/nuscenes_infos_train.pkl, $DATA/nuscenes_infos_val.pkl"
