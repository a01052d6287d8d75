#!/usr/bin/env bash
# Distributed training with torchrun: bash tools/dist_train.sh CONFIG GPUS [train.py args...]
# Several machines: NNODES, NODE_RANK, MASTER_ADDR, PORT (the same on every machine but NODE_RANK).
# Without CUDA the GPUS processes run on CPU with the gloo backend (tools/train.py switches it).
set -euo pipefail
[ "$#" -ge 2 ] || { echo "usage: $0 CONFIG GPUS [tools/train.py arguments]" >&2; exit 2; }
CONFIG=$1 GPUS=$2
shift 2
exec bash "$(dirname "$0")/dist_launch.sh" "$GPUS" train.py 1 "$CONFIG" --launcher pytorch "$@"
