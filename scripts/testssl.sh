#!/usr/bin/env bash
# Scans Roost's HTTPS listener with testssl.sh (Debian package) and fails on any finding rated
# MEDIUM or worse, unless it is listed in ACCEPTED below with the reason it does not apply.
#
#   scripts/testssl.sh            build (debug), start roost in a temp dir, scan, stop
#   ROOST_BIN=path scripts/testssl.sh   scan that binary instead
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

if ! command -v testssl >/dev/null; then
    if [[ ${CI:-} == true ]]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq testssl.sh >/dev/null
    else
        echo "testssl: not installed; apt-get install testssl.sh" >&2
        exit 1
    fi
fi

# id -> why it is not a problem for Roost. One line each.
declare -A ACCEPTED=(
    [cert_revocation]="the local CA's leaf has no CRL/OCSP URI: it is trusted only by devices that imported this Pi's own CA, browsers do not check revocation for such roots, and a compromised key is handled by replacing the CA (remove tls/ca.* and run roost init) and re-importing it; operator certificates (tls.cert_file) carry their CA's revocation info"
    [BREACH]="only the web client's embedded static files (index.html, /assets/, the manifest and icons) are sent compressed, as variants made at build time; they are the same for every visitor and reflect nothing from the request, so there is no secret for a compression oracle to find; API answers (tokens, user data) are never compressed"
)

roost_bin debug
lib_workdir testssl
# shellcheck disable=SC2119 # the defaults: a plain production-profile config
roost_config
# shellcheck disable=SC2119 # not pinned to a core
roost_start

echo "testssl: scanning $roost_url (takes about a minute and a half)"
testssl --quiet --color 0 --warnings off --severity MEDIUM --add-ca "$roost_ca" \
    --jsonfile "$work/findings.json" "$roost_url/" >"$work/testssl.txt" 2>&1 || true

python3 - "$work/findings.json" "$(declare -p ACCEPTED)" <<'PY'
import json, re, sys
findings = json.load(open(sys.argv[1]))
accepted = dict(re.findall(r'\[(\w+)\]="([^"]*)"', sys.argv[2]))
bad = []
for f in findings:
    if f.get("severity") not in ("MEDIUM", "HIGH", "CRITICAL"):
        continue
    if f["id"] in accepted:
        print(f"  accepted {f['id']} ({f['severity']}): {accepted[f['id']]}")
    else:
        bad.append(f)
for f in bad:
    print(f"  FINDING {f['id']} ({f['severity']}): {f['finding']}")
if any(f.get("severity") == "FATAL" or f["id"] == "scanProblem" for f in findings):
    print("  testssl could not complete the scan"); sys.exit(1)
print(f"testssl: {len(bad)} finding(s) rated MEDIUM or worse")
sys.exit(1 if bad else 0)
PY
