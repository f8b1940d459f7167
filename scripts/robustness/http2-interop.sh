#!/usr/bin/env bash
# A body refused before it was read (413 for a declared length over the cap) must reach common
# clients as a 413, over HTTP/2 as over HTTP/1.1: curl (Debian's) and Python's httpx with h2
# (PyPI, pinned below, in a venv under the target dir) each POST a JSON body of the body cap
# plus 1 MiB (what edge::drain reads and discards before answering) to a real Roost and must
# report 413 with the JSON error `payload_too_large`, on the HTTP version they asked for.
# Exits 1 on any other answer (curl exit 92 / status 000, httpx's ReadTimeout: the stream reset
# they used to report instead).
#
#   scripts/robustness/http2-interop.sh           build (debug) roost, start it, check, stop
#   ROOST_BIN=path scripts/robustness/http2-interop.sh     check that binary instead
set -euo pipefail

readonly HTTPX_VERSION=0.28.1
readonly H2_VERSION=4.4.1
# limits.max_body_bytes (1 MiB by default) plus edge::drain's DRAIN_SLACK_BYTES.
readonly BODY_BYTES=$((2 * 1024 * 1024))

LOG_TAG=http2-interop
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

venv=$target/http2-interop-venv-$HTTPX_VERSION-$H2_VERSION
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import h2, httpx' 2>/dev/null; then
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
        ((EUID == 0)) || die "python3 with venv is needed (apt-get install python3-venv)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "httpx[http2]==$HTTPX_VERSION" "h2==$H2_VERSION"
fi
command -v curl >/dev/null || die "curl is needed"

roost_bin debug
lib_workdir http2-interop
roost_config
"$roost" init --config "$work/roost.toml" >/dev/null
roost_start

python3 -c "import sys; n = int(sys.argv[1]); sys.stdout.write('{\"name\":\"' + 'x' * (n - 11) + '\"}')" \
    "$BODY_BYTES" >"$work/body.json"
url=$roost_url/api/v1/rooms
failed=0
check() { # CLIENT EXPECTED_VERSION STATUS_AND_VERSION BODY
    if [[ $3 == "413 $2" && $4 == *'"code":"payload_too_large"'* ]]; then
        echo "  $1: $3 payload_too_large"
    else
        echo "  $1: FAILED: got '$3' ${4:0:200}" >&2
        failed=1
    fi
}

echo "== a $BODY_BYTES-byte JSON body refused for its declared length, by client"
for flag in --http2 --http1.1; do
    set +e
    out=$(curl -sS "$flag" --max-time 30 --cacert "$roost_ca" -H 'content-type: application/json' \
        --data-binary "@$work/body.json" -w '\n%{http_code} %{http_version}' "$url" 2>&1)
    code=$?
    set -e
    [[ $flag == --http2 ]] && want=2 || want=1.1
    check "curl $flag (exit $code)" "$want" "${out##*$'\n'}" "${out%$'\n'*}"
done

while IFS=$'\t' read -r name status body; do
    [[ $name == httpx-h2 ]] && want=2 || want=1.1
    check "$name" "$want" "$status" "$body"
done < <("$venv/bin/python" - "$roost_ca" "$url" "$work/body.json" <<'PY'
import sys

import httpx

ca, url, path = sys.argv[1:4]
body = open(path, "rb").read()
for name, http2 in (("httpx-h2", True), ("httpx-http1.1", False)):
    with httpx.Client(http1=not http2, http2=http2, verify=ca, timeout=30) as client:
        try:
            r = client.post(url, content=body, headers={"content-type": "application/json"})
            version = r.http_version.removeprefix("HTTP/")
            print(f"{name}\t{r.status_code} {version}\t{r.text}")
        except httpx.HTTPError as e:
            print(f"{name}\t{type(e).__name__}\t{e}")
PY
)

((failed == 0)) || die "a client did not see the 413"
echo "== every client saw the 413"
