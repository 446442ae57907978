#!/usr/bin/env bash
# Anomaly quality on NAB data: `fabricwatch-operator analytics replay` (the production detector
# path) next to a rolling 3-sigma and two isolation-forest baselines, scored with window
# recall/precision/F1, false flags per 1,000 points and NAB's normalized standard score.
#
# Usage: operator/analytics/eval/nab.sh [NAB_DIR] [FOLDER...]
#   NAB_DIR defaults to ../shared/fixtures/nab (beside the repository; CI has it). It needs
#   data/<folder>/*.csv and labels/combined_windows.json, as in numenta/NAB, so the full
#   corpus works too. Skips (exit 0) when the directory is absent.
# Installs scikit-learn and numpy from PyPI into $NAB_VENV (default target/nab-venv) once;
# later runs are offline.
set -euo pipefail
cd "$(dirname "$0")/../../.."
nab=${1:-../shared/fixtures/nab}
shift || true
if [[ ! -f "$nab/labels/combined_windows.json" ]]; then
  echo "nab.sh: no NAB data at $nab (labels/combined_windows.json); skipped" >&2
  exit 0
fi
venv=${NAB_VENV:-target/nab-venv}
if ! "$venv/bin/python" -c 'import sklearn, numpy' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q scikit-learn numpy
fi
cargo build -q -p fabricwatch-operator --bin fabricwatch-operator
bin="${CARGO_TARGET_DIR:-target}/debug/fabricwatch-operator"
folders=()
if (($#)); then folders=(--folders "$@"); fi
"$venv/bin/python" operator/analytics/eval/nab.py --nab "$nab" --replay "$bin analytics replay" "${folders[@]}"
