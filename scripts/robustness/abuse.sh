#!/usr/bin/env bash
# Runs abuse.py in a venv that has the `h2` package (PyPI) for the HTTP/2 attacks.
#   scripts/robustness/abuse.sh [abuse.py options]      (ROBUST_VENV: where the venv lives)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${ROBUST_VENV:-${TMPDIR:-/tmp}/roost-robust-venv}
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import h2' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'h2>=4,<5'
fi
exec "$venv/bin/python" "$here/abuse.py" "$@"
