#!/usr/bin/env bash
# Idempotent installer: creates .venv (with system site packages, so an existing torch is kept) and installs
# the pinned stack of requirements/constraints.txt plus this package in editable mode.
#
# CPU or CUDA is decided by tools/install_plan.py from the installed torch (torch.version.cuda) and whether a
# GPU is visible; CLAP_DEVICE=cpu|cuda forces it (e.g. a login node without a GPU installing for GPU jobs).
# CUDA: mmcv is taken from OpenMMLab's prebuilt wheels where they exist for the torch/CUDA pair, else compiled
# with FORCE_CUDA=1, MAX_JOBS and TORCH_CUDA_ARCH_LIST (kept when set); spconv is the spconv-cuXYZ build for
# torch's CUDA. Wheels built here go to $VENV/.clap_wheels/<device tag>/ and pip's cache is bypassed for CUDA,
# so a CPU-built mmcv is never reused for CUDA. The last step checks the result and fails loudly when CUDA was
# wanted but mmcv's ops or spconv have no CUDA kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
STAMP="$VENV/.clap_install_stamp"
hash_inputs() { { cat requirements/*.txt setup.py tools/install.sh tools/install_plan.py clap_plugin/utils/install_plan.py; echo "${CLAP_DEVICE:-}"; } \
  | sha256sum | cut -d' ' -f1; }

# run "$@" with its output in $1 (a log file); print a progress line every PROGRESS_S seconds
run_with_progress() {
  local log=$1 what=$2; shift 2
  local t0 pid last
  t0=$(date +%s)
  "$@" > "$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep "${PROGRESS_S:-60}" & wait $! || true
    kill -0 "$pid" 2>/dev/null || break
    # ninja prints [k/n] per compiled file under pip -v; otherwise count the compiler calls
    last=$(grep -oE '^\[[0-9]+/[0-9]+\]' "$log" | tail -n1 || true)
    [ -n "$last" ] || last="$(grep -cE '(gcc|g\+\+|c\+\+|nvcc) ' "$log" || true) compiler calls"
    echo "[install] $what: $(( ($(date +%s) - t0) / 60 )) min, $last so far (log: $log)"
  done
  wait "$pid"
}

if [ ! -x "$PY" ]; then
  echo "[install] creating $VENV"
  python3 -m venv --system-site-packages "$VENV"
fi
want=$(hash_inputs)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && \
   "$PY" -c "import torch, mmcv.ops, mmdet, mmdet3d, spconv.pytorch, nuscenes, clap_plugin" 2>/dev/null; then
  echo "[install] environment up to date ($VENV)"
  exit 0
fi
"$PY" -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v <= (3, 12) else 1)' || {
  echo "[install] error: Python $("$PY" -c 'import sys; print(sys.version.split()[0])') in $VENV; the pinned stack installs on Python 3.10 to 3.12" >&2
  exit 2; }
PIP=("$PY" -m pip install --disable-pip-version-check -c requirements/constraints.txt)
"${PIP[@]}" "setuptools<70" wheel ninja packaging
if ! "$PY" -c "import torch" 2>/dev/null; then
  if [ "${CLAP_DEVICE:-}" = cuda ]; then
    echo "[install] error: CLAP_DEVICE=cuda but no torch is importable; install a CUDA build of torch first (README, GPU install)" >&2
    exit 2
  fi
  echo "[install] no torch importable: installing torch==2.13.0"
  "$PY" -m pip install --disable-pip-version-check torch==2.13.0
else
  echo "[install] keeping torch $("$PY" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')"
fi

plan=$("$PY" tools/install_plan.py plan) || exit 2
eval "$plan"
echo "[install] device $CLAP_PLAN_DEVICE: spconv $CLAP_PLAN_SPCONV, mmcv $CLAP_PLAN_MMCV_TAG"
[ -z "$CLAP_PLAN_NOTES" ] || echo "[install] note: $CLAP_PLAN_NOTES"
CACHE=()
[ "$CLAP_PLAN_PIP_CACHE" = 1 ] || CACHE=(--no-cache-dir)

# Everything mmcv's build and runtime need, before compiling it without build isolation.
"${PIP[@]}" numpy addict yapf rich termcolor pyyaml opencv-python Pillow mmengine
mmcv_ok() {
  "$PY" - "$CLAP_PLAN_DEVICE" <<'EOF' 2>/dev/null
import sys
import mmcv
from mmcv.ops import get_compiling_cuda_version
assert mmcv.__version__ == '2.1.0'
sys.exit(0 if sys.argv[1] == 'cpu' or get_compiling_cuda_version() not in ('not available', '') else 1)
EOF
}
if ! mmcv_ok; then
  WHEELS="$VENV/.clap_wheels/mmcv-2.1.0-$CLAP_PLAN_MMCV_TAG"
  mkdir -p "$WHEELS"
  if [ -n "$CLAP_PLAN_MMCV_FIND_LINKS" ] && ! ls "$WHEELS"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    echo "[install] trying OpenMMLab's prebuilt mmcv 2.1.0 for $CLAP_PLAN_MMCV_TAG"
    "$PY" -m pip download --disable-pip-version-check --no-cache-dir --no-deps --only-binary=:all: \
      -f "$CLAP_PLAN_MMCV_FIND_LINKS" -d "$WHEELS" mmcv==2.1.0 \
      || echo "[install] no prebuilt wheel fits: compiling"
  fi
  if ! ls "$WHEELS"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    if [ "$CLAP_PLAN_DEVICE" = cuda ]; then
      echo "[install] compiling mmcv 2.1.0 with CUDA ops ($CLAP_PLAN_BUILD_ENV); tens of minutes"
    else
      echo "[install] compiling mmcv 2.1.0 with CPU ops (about 26 min on 2 cores; pip caches the wheel)"
    fi
    # shellcheck disable=SC2086
    run_with_progress "$VENV/.clap_mmcv_build.log" "compiling mmcv" env $CLAP_PLAN_BUILD_ENV \
      "$PY" -m pip wheel -v --disable-pip-version-check "${CACHE[@]}" --no-build-isolation --no-deps \
      -c requirements/constraints.txt -w "$WHEELS" mmcv==2.1.0 \
      || { tail -n 40 "$VENV/.clap_mmcv_build.log"; echo "[install] error: mmcv build failed (log above)" >&2; exit 1; }
  fi
  "${PIP[@]}" "${CACHE[@]}" --force-reinstall --no-deps --no-index -f "$WHEELS" mmcv==2.1.0
fi
"${PIP[@]}" -r requirements/runtime.txt
"${PIP[@]}" --no-deps mmdet3d==1.4.0
# spconv: the build for this device; the other device's build shares the import name, so it goes
stale=$("$PY" tools/install_plan.py stale-spconv "$CLAP_PLAN_SPCONV")
if [ -n "$stale" ]; then
  echo "[install] removing $stale (installing $CLAP_PLAN_SPCONV)"
  # shellcheck disable=SC2086
  "$PY" -m pip uninstall -y $stale
fi
# (spconv-cuXYZ carries the version of the CPU pin; constraints.txt still pins its numpy)
"${PIP[@]}" "${CACHE[@]}" "$CLAP_PLAN_SPCONV"
# setup.py develop, as before pyproject.toml (tool settings only) existed: the repository root goes on sys.path, so
# the `projects` namespace package and an upstream checkout's projects/ resolve as tests/projects/test_namespace.py expects
"${PIP[@]}" --no-deps --no-use-pep517 -e .
"$PY" tools/install_plan.py check --device "$CLAP_PLAN_DEVICE"
"$PY" -c "import torch, mmcv.ops, mmdet, mmdet3d, spconv.pytorch, nuscenes, clap_plugin; print('[install] ok: torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmdet3d', mmdet3d.__version__, 'device $CLAP_PLAN_DEVICE')"
hash_inputs > "$STAMP"
