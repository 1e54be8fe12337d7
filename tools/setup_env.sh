#!/usr/bin/env bash
# Create (or update) the project's virtual environment: torch, mmcv with its compiled ops,
# mmdet, mmpretrain, pycocotools and this package in editable mode.
#
#   bash tools/setup_env.sh            # venv at ./.venv
#   FM_VENV=/path/to/venv bash tools/setup_env.sh
#
# Idempotent: a second run checks what is installed and returns in seconds.
# mmcv has no wheel for current torch, so the first run builds it from source (about 11 min
# on 2 cores) and caches the wheel in
# ${FM_CACHE_DIR:-~/.cache/fusion_mamba}/wheels/torch-<torch version>-<cpu|cuda>ops/, keyed
# by the torch version it was built against and by whether its ops include CUDA kernels
# (built when torch sees a GPU, or with FORCE_CUDA=1); later installs reuse that wheel.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FM_VENV:-$ROOT/.venv}"
CACHE_DIR="${FM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fusion_mamba}"
MMCV_VERSION="2.1.0"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.fusion_mamba_env"

log() { printf '[setup_env %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# The stamp records the requirement files the venv was built from; unchanged files and an
# importable stack mean there is nothing to do.
requirements_digest() {
    cat "$ROOT"/requirements/*.txt "$ROOT/setup.py" "$ROOT/tools/setup_env.sh" | sha256sum | cut -d' ' -f1
}

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment at $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

digest="$(requirements_digest)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$digest" ] \
        && "$PY" -c "import mmcv.ops, mmdet, mmpretrain, pycocotools, fusion_mamba" 2>/dev/null; then
    log "environment at $VENV is up to date"
    exit 0
fi

log "installing build tools and torch (requirements/torch.txt)"
"${PIP[@]}" install -q -r "$ROOT/requirements/torch.txt"

TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__)')"
# mmcv compiles its CUDA ops only where torch sees a GPU (or FORCE_CUDA=1): a CPU-ops wheel
# must never be reused on a GPU machine with the same torch, so the flavour is in the key.
OPS_FLAVOUR="$("$PY" -c 'import os, torch; print("cuda" if torch.cuda.is_available() or os.environ.get("FORCE_CUDA") == "1" else "cpu")')"
WHEEL_DIR="$CACHE_DIR/wheels/torch-$TORCH_VERSION-${OPS_FLAVOUR}ops"

mmcv_ok() {
    "$PY" - <<EOF 2>/dev/null
import mmcv, mmcv.ops
assert mmcv.__version__ == "$MMCV_VERSION", mmcv.__version__
EOF
}

build_mmcv_wheel() {
    local work
    work="$(mktemp -d)"
    log "building mmcv $MMCV_VERSION with compiled $OPS_FLAVOUR ops against torch $TORCH_VERSION"
    log "  (one-off: about 11 min on 2 cores for CPU ops; the wheel is cached in $WHEEL_DIR)"
    # mmcv 2.1.0's setup.py imports pkg_resources, which setuptools >= 70 no longer ships
    # (torch itself wants >= 77, restored below; pip warns about the conflict meanwhile).
    "${PIP[@]}" install -q "setuptools<70" wheel ninja
    # Downloading the sdist runs its setup.py, which needs torch and pkg_resources: no isolation.
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
        -d "$work" "mmcv==$MMCV_VERSION"
    tar -xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
    local src="$work/mmcv-$MMCV_VERSION"
    # torch >= 2.14 headers require C++20; mmcv 2.1.0 hard-codes -std=c++17.
    if "$PY" -c 'import sys, torch; v = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]); sys.exit(0 if v >= (2, 14) else 1)'; then
        log "  torch $TORCH_VERSION needs C++20: patching mmcv's -std=c++17"
        sed -i "s/'-std=c++17'/'-std=c++20'/g" "$src/setup.py"
    fi
    local jobs="${MAX_JOBS:-$(nproc)}"
    # Progress: the compiler's per-file lines go to a log; print a count every minute.
    local build_log="$work/build.log"
    ( cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS="$jobs" "${PIP[@]}" wheel -v --no-deps \
        --no-build-isolation --no-cache-dir -w "$work/dist" . ) >"$build_log" 2>&1 &
    local pid=$!
    local start=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
        sleep 60
        local done_files
        # ninja prints "[k/n] c++ ..." per compiled file (indented by pip -v).
        done_files="$(grep -oE '^\s*\[[0-9]+/[0-9]+\]' "$build_log" | tail -n 1 | tr -d ' []' || true)"
        log "  mmcv build running for $(( (SECONDS - start) / 60 )) min, compiled ${done_files:-0/?} files"
    done
    if ! wait "$pid"; then
        tail -n 40 "$build_log"
        log "mmcv build failed; full log: $build_log"
        exit 1
    fi
    mkdir -p "$WHEEL_DIR"
    local built
    built="$(ls "$work"/dist/mmcv-*.whl)"
    # Atomic publish: a concurrent or interrupted install never sees half a wheel.
    cp "$built" "$WHEEL_DIR/.tmp.$(basename "$built")"
    mv "$WHEEL_DIR/.tmp.$(basename "$built")" "$WHEEL_DIR/$(basename "$built")"
    log "mmcv built in $(( (SECONDS - start) / 60 )) min; cached $(basename "$built")"
    rm -rf "$work"
}

if mmcv_ok; then
    log "mmcv $MMCV_VERSION with ops already installed"
else
    if ! ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
        build_mmcv_wheel
    else
        log "using cached mmcv wheel from $WHEEL_DIR"
    fi
    "${PIP[@]}" install -q --no-deps --force-reinstall "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl
    "${PIP[@]}" install -q "mmcv==$MMCV_VERSION" --no-build-isolation  # its pure-Python deps
    mmcv_ok || { log "mmcv installed but mmcv.ops does not import"; exit 1; }
fi

log "installing mmengine, mmdet, mmpretrain, pycocotools, test and ONNX tools, fusion_mamba"
# torch wants setuptools >= 77; mmengine still imports pkg_resources, gone in setuptools 81.
"${PIP[@]}" install -q "setuptools>=77.0.3,<81"
"${PIP[@]}" install -q -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" \
    -r "$ROOT/requirements/deploy.txt"
"${PIP[@]}" install -q --no-build-isolation --no-deps -e "$ROOT"
"$PY" -c "import mmcv.ops, mmdet, mmpretrain, pycocotools, fusion_mamba"
echo "$digest" >"$STAMP"
log "environment ready: $VENV (torch $TORCH_VERSION, mmcv $MMCV_VERSION)"
