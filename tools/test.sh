#!/usr/bin/env bash
# Evaluate a checkpoint on the config's test set:
#     bash tools/test.sh CONFIG CHECKPOINT [tools/test.py options]
# or, with --benchmark anywhere after CHECKPOINT, time it instead of evaluating:
#     bash tools/test.sh CONFIG CHECKPOINT --benchmark [benchmark_detector.py options]
# (tools/analysis_tools/benchmark_detector.py: latency, throughput, peak GPU memory). The other
# options go to the script that runs. PYTHON selects the interpreter (default: python).
set -euo pipefail
if [[ $# -lt 2 ]]; then
    echo "usage: bash $0 CONFIG CHECKPOINT [--benchmark] [options]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
shift 2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-python}

SCRIPT="$ROOT/tools/test.py"
ARGS=()
for arg in "$@"; do
    if [[ $arg == --benchmark ]]; then
        SCRIPT="$ROOT/tools/analysis_tools/benchmark_detector.py"
    else
        ARGS+=("$arg")
    fi
done

PYTHONPATH="$ROOT/projects:${PYTHONPATH:-}" \
"$PYTHON" "$SCRIPT" "$CONFIG" "$CHECKPOINT" ${ARGS[@]+"${ARGS[@]}"}
