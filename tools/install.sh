#!/usr/bin/env bash
# Idempotent installer: creates .venv (with system site packages, so an existing torch is kept) and installs
# the pinned stack of requirements/constraints.txt plus this package in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
STAMP="$VENV/.clap_install_stamp"
hash_inputs() { cat requirements/*.txt setup.py tools/install.sh | sha256sum | cut -d' ' -f1; }

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
PIP=("$PY" -m pip install --disable-pip-version-check -c requirements/constraints.txt)
"${PIP[@]}" "setuptools<70" wheel ninja packaging
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "[install] no torch importable: installing torch==2.13.0"
  "$PY" -m pip install --disable-pip-version-check torch==2.13.0
else
  echo "[install] keeping torch $("$PY" -c 'import torch; print(torch.__version__)')"
fi
# Everything mmcv's build and runtime need, before compiling it without build isolation.
"${PIP[@]}" numpy addict yapf rich termcolor pyyaml opencv-python Pillow mmengine
if ! "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
  echo "[install] building mmcv 2.1.0 with ops (first time about 10 minutes; pip caches the wheel)"
  MMCV_WITH_OPS=1 "${PIP[@]}" --no-build-isolation mmcv==2.1.0
fi
"${PIP[@]}" -r requirements/runtime.txt
"${PIP[@]}" --no-deps mmdet3d==1.4.0
if ! "$PY" -c "import spconv.pytorch" 2>/dev/null; then
  if "$PY" -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    "${PIP[@]}" "spconv-cu120" || "${PIP[@]}" spconv==2.3.8
  else
    "${PIP[@]}" spconv==2.3.8
  fi
fi
"${PIP[@]}" --no-deps -e .
"$PY" -c "import torch, mmcv.ops, mmdet, mmdet3d, spconv.pytorch, nuscenes, clap_plugin; print('[install] ok: torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmdet3d', mmdet3d.__version__)"
hash_inputs > "$STAMP"
