#!/usr/bin/env bash
# Scans Cargo.lock against the offline RustSec advisory snapshot in ../shared/advisory-db.
# No network is needed for the scan itself; cargo-audit is installed from crates.io if missing.
#
# Every ignored advisory needs a line in IGNORED below with the reason it does not apply.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly AUDIT_VERSION=0.22.2
db=${ROOST_ADVISORY_DB:-../shared/advisory-db}
[[ -d $db/crates ]] || { echo "audit: advisory database not found at $db" >&2; exit 1; }

if ! cargo audit --version 2>/dev/null | grep -q "$AUDIT_VERSION"; then
    echo "audit: installing cargo-audit $AUDIT_VERSION (takes a few minutes once)"
    cargo install cargo-audit --locked --version "$AUDIT_VERSION" --quiet
fi

# ID  reason (one line each; none today)
IGNORED=()
args=()
for entry in "${IGNORED[@]}"; do args+=(--ignore "${entry%% *}"); done

# --deny warnings: unmaintained and unsound crates fail the scan too, not only vulnerabilities.
cargo audit --db "$db" --no-fetch --stale --deny warnings "${args[@]}"
