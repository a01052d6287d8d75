#!/usr/bin/env bash
# The torchrun launch shared by dist_train.sh and dist_test.sh: bash tools/dist_launch.sh GPUS SCRIPT NFILES ARGS...
# checks that the first NFILES of ARGS are files, then runs tools/SCRIPT ARGS in GPUS processes per machine. Several machines: NNODES, NODE_RANK, MASTER_ADDR, PORT (the
# same on every machine but NODE_RANK). Without CUDA the processes run on CPU with the gloo backend.
set -euo pipefail
GPUS=$1
SCRIPT=$2
NFILES=$3
shift 3
for f in "${@:1:$NFILES}"; do
    if [ ! -f "$f" ]; then
        echo "error: file '$f' does not exist" >&2
        exit 2
    fi
done
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
# one thread per process unless told otherwise (several processes share the cores)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
# the repository's environment (make install) unless PYTHON says otherwise
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$HERE/../.venv/bin/python" ]; then PYTHON="$HERE/../.venv/bin/python"; else PYTHON=python; fi
fi

export PYTHONPATH="$HERE/..${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$HERE/$SCRIPT" "$@"
