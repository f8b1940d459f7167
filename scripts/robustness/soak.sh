#!/usr/bin/env bash
# Runs soak.py in a venv that has matplotlib (PyPI) for the plot; the CSV and PNG go to docs/.
#   scripts/robustness/soak.sh [--minutes 10] [soak.py options]    (ROBUST_VENV: the venv)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
docs=$here/../../docs
venv=${ROBUST_VENV:-${TMPDIR:-/tmp}/roost-robust-venv}
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'matplotlib>=3,<4' 'h2>=4,<5'
fi
exec "$venv/bin/python" "$here/soak.py" --csv "$docs/soak.csv" --plot "$docs/soak.png" "$@"
