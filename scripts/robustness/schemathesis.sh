#!/usr/bin/env bash
# Property-based API testing of a real Roost with schemathesis (PyPI, pinned below), driven by
# the OpenAPI document Roost serves at /api/v1/openapi.json. Fails on any finding: a 5xx, a
# status code, content type, header or body that the document does not describe.
#
#   scripts/robustness/schemathesis.sh            build (debug), start roost, test, stop
#   ROOST_BIN=path scripts/robustness/schemathesis.sh      test that binary instead
#   ST_MAX_EXAMPLES=N ST_MAX_TIME=S ST_SEED=N      bounds and seed (defaults below)
#   KEEP=1                                         keep the temp dir (log, reports)
#
# Roost runs on 127.0.0.1 with ephemeral ports and a temp data dir, supervising the stand-in
# LiveKit (examples/fake_livekit.rs, so call tokens are minted for real), with 127.0.0.1 exempt
# from rate limits (the limiter is not what is under test) and cheap argon2 settings (every
# sign-in attempt hashes). Accounts are made with `roost user add` and sign in; the first admin
# seeds room 1 with message 1 and attachment 1, so the documented examples (id 1) reach rows.
# Three runs, each bounded by --max-examples and --max-time, each with its own account, because
# three operations can end the session that every later request of a run carries:
#   1. everything else, as admin st-admin (ST_MAX_TIME);
#   2. POST auth/logout and auth/password, as member st-member: they sign the caller out;
#   3. PATCH users/{id}, as admin st-users, last: it can promote another account and then
#      disable the caller (schemathesis's stateful phase did exactly that).
# Nothing else can lock a run out: revoking API keys or invites does not touch a session, and a
# room the admin leaves stays readable to it. Runs 2 and 3 may end in 401s, which are
# documented answers and still checked.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

ST_VERSION=4.32.5
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-25}
MAX_TIME=${ST_MAX_TIME:-120}
SIDE_TIME=${ST_SIDE_TIME:-30}
SEED=${ST_SEED:-20261123}
VENV=${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/roost-schemathesis/venv-$ST_VERSION}
t0=$(date +%s%N)
lap() { printf '  [%6.1fs] %s\n' "$(( ($(date +%s%N) - t0) / 1000000 ))e-3" "$1"; }

# --- schemathesis in its own venv (not the checkout) ---
if [[ ! -x $VENV/bin/st ]] || [[ $("$VENV/bin/st" --version 2>/dev/null) != *"$ST_VERSION"* ]]; then
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        if [[ ${CI:-} == true && $EUID == 0 ]]; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        else
            echo "schemathesis: python3 with venv is needed (apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
lap "$("$VENV/bin/st" --version) ready"

target=${CARGO_TARGET_DIR:-$repo/target}
cargo build --quiet --locked --example fake_livekit
fake_livekit=$target/debug/examples/fake_livekit
bin=${ROOST_BIN:-}
if [[ -z $bin ]]; then
    cargo build --quiet --locked --bin roost
    bin=$target/debug/roost
fi
lap "roost and fake_livekit built: $bin"

work=$(mktemp -d "${TMPDIR:-/tmp}/roost-schemathesis.XXXXXX")
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if [[ -n ${KEEP:-} ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
lk_port=$(free_port)
cat >"$work/roost.toml" <<TOML
[server]
hostname = "localhost"
https_addr = "127.0.0.1:$port"
http_addr = ""
internal_addr = "127.0.0.1:0"
shutdown_grace_secs = 2
[storage]
data_dir = "$work/data"
min_free_disk_mb = 1
[auth]
# Every sign-in attempt hashes; the defaults (19 MiB, 2 passes) would spend the time budget.
argon2_memory_kib = 64
argon2_iterations = 1
[rate_limits]
# All requests come from one address; the limiter is not what is under test.
exempt_cidrs = ["127.0.0.1/32"]
[livekit]
enabled = true
binary = "$fake_livekit"
http_port = $lk_port
drain_grace_secs = 1
TOML

"$bin" init --config "$work/roost.toml" >/dev/null

RUNTIME_DIRECTORY= "$bin" --log-format json serve --config "$work/roost.toml" </dev/null >"$work/roost.log" 2>&1 &
pid=$!
base="https://localhost:$port"
ca="$work/data/tls/ca.crt"
for _ in $(seq 600); do
    [[ -f $ca ]] && curl -sf --cacert "$ca" "$base/health" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/roost.log"; echo "roost exited" >&2; exit 1; }
    sleep 0.1
done
curl -sf --cacert "$ca" "$base/health" >/dev/null || { cat "$work/roost.log"; echo "roost did not start" >&2; exit 1; }
lap "roost serving on $base"

password="schemathesis-check-password"
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
api() { # METHOD PATH TOKEN [curl args...]
    local method=$1 path=$2 token=$3
    shift 3
    curl -sS --fail-with-body --cacert "$ca" -X "$method" -H "Authorization: Bearer $token" "$@" "$base$path"
}
sign_in() {
    curl -sS --fail-with-body --cacert "$ca" -H 'content-type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"$password\"}" "$base/api/v1/auth/login" | json '["access_token"]'
}
for who in st-admin:admin st-member:member st-users:admin; do
    echo "$password" | "$bin" user add "${who%:*}" --role "${who#*:}" --config "$work/roost.toml" >/dev/null
done
admin=$(sign_in st-admin)
member=$(sign_in st-member)
users_admin=$(sign_in st-users)

room=$(api POST /api/v1/rooms "$admin" -H 'content-type: application/json' \
    -d '{"name":"schemathesis","topic":"seeded"}' | json '["id"]')
attachment=$(api POST "/api/v1/attachments?name=hello.txt" "$admin" --data-binary 'hello, roost' | json '["id"]')
message=$(api POST "/api/v1/rooms/$room/messages" "$admin" -H 'content-type: application/json' \
    -d "{\"body\":\"hello search\",\"attachment_ids\":[$attachment]}" | json '["id"]')
api POST /api/v1/invites "$admin" -H 'content-type: application/json' -d '{}' >/dev/null
api POST /api/v1/api-keys "$admin" -H 'content-type: application/json' \
    -d '{"name":"seed","scopes":["read"]}' >/dev/null
[[ $room == 1 && $message == 1 && $attachment == 1 ]] ||
    { echo "seeding gave room $room, message $message, attachment $attachment; the examples expect 1" >&2; exit 1; }
lap "signed in; seeded room $room, message $message, attachment $attachment, an invite, an API key"

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
run() { # NAME TOKEN MAX_TIME [st args...]
    local name=$1 token=$2 max_time=$3
    shift 3
    # From the temp dir: schemathesis keeps a cache (.schemathesis/) in its working directory.
    (cd "$work" && "$VENV/bin/st" run "$base/api/v1/openapi.json" \
        --url "$base" \
        --tls-verify "$ca" \
        --header "Authorization: Bearer $token" \
        --checks "$checks" \
        --max-examples "$MAX_EXAMPLES" \
        --max-time "$max_time" \
        --seed "$SEED" \
        --request-timeout 10 \
        --generation-database none \
        --no-color \
        --report junit --report-dir "$work/report-$name" \
        "$@")
}

status=0
# Operations that can end the session their run carries (see the top of this file).
session_ending=(logout changePassword updateUser)
lap "run 1: every operation but ${session_ending[*]}, as st-admin"
run main "$admin" "$MAX_TIME" "${session_ending[@]/#/--exclude-operation-id=}" || status=1
lap "run 2: logout and changePassword, as st-member"
run session "$member" "$SIDE_TIME" --include-operation-id=logout --include-operation-id=changePassword || status=1
lap "run 3: updateUser (PATCH users/{id}), as st-users"
run users "$users_admin" "$SIDE_TIME" --include-operation-id=updateUser || status=1

kill -0 "$pid" 2>/dev/null || { echo "roost died during the run" >&2; status=1; }
if grep -q '"level":"ERROR"' "$work/roost.log"; then
    echo "roost logged errors during the run:" >&2
    grep '"level":"ERROR"' "$work/roost.log" | head -20 >&2
    status=1
fi
lap "total"
exit $status
