#!/usr/bin/env bash
# Distributed evaluation with torchrun: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# Several machines: NNODES, NODE_RANK, MASTER_ADDR, PORT. Without CUDA the processes use gloo on CPU.
set -euo pipefail
[ "$#" -ge 3 ] || { echo "usage: $0 CONFIG CHECKPOINT GPUS [tools/test.py arguments]" >&2; exit 2; }
CONFIG=$1 CHECKPOINT=$2 GPUS=$3
shift 3
exec bash "$(dirname "$0")/dist_launch.sh" "$GPUS" test.py 2 "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
