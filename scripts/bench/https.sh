#!/usr/bin/env bash
# HTTPS keep-alive throughput of Roost's `GET /health` next to nginx doing the same job on the
# same machine: same certificate, same JSON body, same HSTS header, HTTP/1.1 over TLS.
# Each server runs alone, pinned to core 0 (nginx: one worker); wrk is pinned to core 1.
# A benchmark, not a test: it prints figures beside their goals and exits 0 unless it could not
# measure.
#
#   scripts/bench/https.sh [--nginx-only | --instructions]
#
# --nginx-only   measure nginx alone, with a throw-away certificate from openssl (for checking
#                the script on a machine where Roost does not build or run yet)
# --instructions instead of req/s: both servers run under valgrind's callgrind, and what is
#                counted is the user-space instructions each executes per request (BENCH_DURATION
#                of load after a warm-up; one round). Exact and the same on a busy or virtual
#                machine without CPU counters, where req/s drifts; the kernel's share (TCP, the
#                system calls) is not in it. Needs valgrind.
# Environment:   BENCH_DURATION (default 15s), BENCH_CONNECTIONS (default 64),
#                BENCH_ROUNDS (default 3: roost then nginx, that many times; the verdict is on
#                the median of the rounds' ratios, since a shared machine drifts between runs),
#                ROOST_BIN (a roost binary to measure instead of building target/release/roost)
#
# Needs two CPU cores, curl, taskset, openssl, and nginx + wrk + GNU time (installed with
# `apt-get install -y nginx-light wrk time` when missing; that needs root).
set -euo pipefail

readonly DURATION=${BENCH_DURATION:-15s}
readonly CONNECTIONS=${BENCH_CONNECTIONS:-64}
readonly ROUNDS=${BENCH_ROUNDS:-3}
readonly GOAL_RATIO=1.0
readonly GOAL_IDLE_RSS_MB=15

nginx_only=false
instructions=false
case "${1:-}" in
    "") ;;
    --nginx-only) nginx_only=true ;;
    --instructions) instructions=true ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: $0 [--nginx-only | --instructions]" >&2
        exit 64
        ;;
esac

LOG_TAG=bench
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive number, not '$ROUNDS'"

# --- tools and cores ----------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[[ -x /usr/bin/time ]] || missing+=(time)
if $instructions; then
    command -v callgrind_control >/dev/null 2>&1 || missing+=(valgrind)
fi
if ((${#missing[@]} > 0)); then
    ((EUID == 0)) || die "missing ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}"
    log "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
for tool in curl taskset openssl awk; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
if ! taskset -c 0 true 2>/dev/null || ! taskset -c 1 true 2>/dev/null; then
    die "cores 0 and 1 must both be usable (server on 0, wrk on 1)"
fi

# --- workspace and cleanup ----------------------------------------------------------------------
# Everything started here is stopped on exit (TERM, then KILL after a deadline): scripts/lib.sh.
lib_workdir bench

# Resident set size of the given processes together, in KiB.
rss_kib() {
    local total=0 pid kib
    for pid in "$@"; do
        kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}

kib_to_mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }'; }

# Runs wrk against $1 while sampling the RSS of the remaining pids; sets the globals
# result_rps, result_p99, result_errors, result_rss_max_kib, result_cpu: the processes'
# user and system CPU time per request in microseconds ("user/sys"), and result_client: wrk's
# own CPU time per request and how busy it kept its core (near 100%, the client is what limits
# the rate as much as the server).
measure() {
    local url=$1 out=$work/wrk.out samples=$work/rss.samples sampler wrk_pid
    shift
    : >"$samples"
    (
        while :; do
            rss_kib "$@" >>"$samples"
            sleep 0.2
        done
    ) &
    sampler=$!
    lib_track "$sampler"
    local ticks_before ticks_after
    ticks_before=$(cpu_ticks "$@")
    # In the background and waited for, so an INT/TERM trap runs at once and cleanup stops wrk.
    /usr/bin/time -f '%U %S %e' -o "$work/wrk.time" \
        taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$url" >"$out" 2>&1 &
    wrk_pid=$!
    lib_track "$wrk_pid"
    wait "$wrk_pid" || die "wrk failed: $(cat "$out")"
    ticks_after=$(cpu_ticks "$@")
    stop_pid "$sampler"
    result_rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    result_p99=$(awk '$1 == "99%" { print $2 }' "$out")
    result_errors=$(grep -E 'Non-2xx|Socket errors' "$out" | tr -s ' ' | paste -sd ';' - || true)
    result_rss_max_kib=$(sort -n "$samples" | tail -n 1)
    [[ -n $result_rps && -n $result_p99 ]] || die "could not read wrk's output: $(cat "$out")"
    local requests
    requests=$(awk '/requests in/ { print $1 }' "$out")
    result_cpu=$(awk -v b="$ticks_before" -v a="$ticks_after" -v n="$requests" \
        -v hz="$(getconf CLK_TCK)" 'BEGIN {
            split(b, x, " "); split(a, y, " ")
            printf "%.2f/%.2f", (y[1] - x[1]) * 1e6 / hz / n, (y[2] - x[2]) * 1e6 / hz / n }')
    result_client=$(awk -v n="$requests" '{
        printf "%.2f %3.0f%%", ($1 + $2) * 1e6 / n, ($1 + $2) * 100 / $3 }' "$work/wrk.time")
}

# User and system CPU ticks of the given processes together ("user sys"), threads included.
cpu_ticks() {
    local pid user=0 sys=0 u s
    for pid in "$@"; do
        # Fields 14 and 15 of /proc/PID/stat; the command name (field 2) has no spaces here.
        read -r u s < <(awk '{ print $14, $15 }' "/proc/$pid/stat" 2>/dev/null || echo "0 0")
        user=$((user + u)) sys=$((sys + s))
    done
    echo "$user $sys"
}

# --- certificate, body, header ------------------------------------------------------------------
version=$(awk -F'"' '/^version *=/ { print $2; exit }' "$repo/Cargo.toml")
body="{\"status\":\"ok\",\"version\":\"$version\"}"
hsts="max-age=63072000"

if $nginx_only; then
    log "--nginx-only: throw-away P-256 CA and server certificate from openssl"
    tls=$work/tls
    mkdir -p "$tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj "/CN=bench CA" -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
        -CAcreateserial -days 1 -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n') \
        -out "$tls/server.crt" 2>/dev/null
else
    roost_bin release
    # shellcheck disable=SC2119 # no extra configuration
    roost_config
    "$roost" init --config "$work/roost.toml" >"$work/init.log" 2>&1 ||
        die "roost init failed: $(cat "$work/init.log")"
    tls=$work/data/tls
    for f in ca.crt server.crt server.key; do
        [[ -f $tls/$f ]] || die "roost init made no $tls/$f"
    done

    if $instructions; then
        # shellcheck disable=SC2034 # read by roost_start (scripts/lib.sh)
        roost_wrap=(valgrind --tool=callgrind --callgrind-out-file="$work/roost.cg")
        LIB_READY_SECS=${LIB_READY_SECS:-180}
    fi
    roost_start 0
    roost_health=$roost_url/health

    # nginx is given exactly what Roost answers.
    body=$(curl -fsS --cacert "$tls/ca.crt" "$roost_health")
    hsts=$(curl -fsS -o /dev/null -D - --cacert "$tls/ca.crt" "$roost_health" |
        awk -F': ' 'tolower($1) == "strict-transport-security" { sub(/\r$/, "", $2); print $2 }')
    [[ -n $hsts ]] || die "roost's /health response has no Strict-Transport-Security header"
    # Roost's other response headers, for the second nginx server ("nginx, same headers"):
    # everything but the ones nginx makes itself.
    extra_headers=$(curl -fsS -o /dev/null -D - --cacert "$tls/ca.crt" "$roost_health" |
        awk -F': ' 'NR > 1 && NF > 1 {
            name = tolower($1); sub(/\r$/, "", $2)
            if (name ~ /^(date|content-length|content-type|strict-transport-security)$/) next
            if ($2 ~ /"/) { print "ERROR " $1; exit }
            printf "            add_header %s \"%s\" always;\n", $1, $2 }')
    [[ $extra_headers != *ERROR* ]] || die "a header of roost's has a double quote: $extra_headers"

    roost_idle_kib=$(rss_kib "$roost_pid")
fi

# --- nginx ---------------------------------------------------------------------------------------
# Two servers in one nginx process. The first sends what the issue's comparison names: the body
# and HSTS, as the seeds' nginx would. The second also sends every other header Roost sends (the
# security headers), so both servers hand wrk responses of about the same size: wrk keeps its
# core nearly saturated, so part of what the first ratio measures is the client reading Roost's
# longer responses rather than the servers' own speed (scripts/bench/README.md).
nginx_port=$(free_port)
nginx_same_port=$(free_port)
[[ $nginx_same_port != "$nginx_port" ]] || nginx_same_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
$($instructions && echo "master_process off; # one process, so callgrind counts all of it" || true)
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    server_tokens off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    # Roost keeps a connection for any number of requests and 120 s idle; nginx's default of
    # 1000 requests per connection would make it re-handshake during the run.
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$nginx_port ssl http2;
        server_name localhost;
        ssl_certificate $tls/server.crt;
        ssl_certificate_key $tls/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /health {
            default_type application/json;
            add_header Strict-Transport-Security "$hsts" always;
            return 200 '$body';
        }
    }
    server {
        listen 127.0.0.1:$nginx_same_port ssl http2;
        server_name localhost;
        ssl_certificate $tls/server.crt;
        ssl_certificate_key $tls/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /health {
            default_type application/json;
            add_header Strict-Transport-Security "$hsts" always;
${extra_headers:-}
            return 200 '$body';
        }
    }
}
EOF
nginx_wrap=()
$instructions && nginx_wrap=(valgrind --tool=callgrind --callgrind-out-file="$work/nginx.cg")
taskset -c 0 ${nginx_wrap[@]+"${nginx_wrap[@]}"} "$nginx_bin" -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" \
    >"$work/nginx/stdout.log" 2>&1 &
nginx_pid=$!
lib_track "$nginx_pid"
nginx_url=https://localhost:$nginx_port/health
wait_https "$nginx_url" "$tls/ca.crt" "$nginx_pid" nginx "$work/nginx/error.log"
nginx_same_url=https://localhost:$nginx_same_port/health
for url in "$nginx_url" "$nginx_same_url"; do
    [[ $(curl -fsS --cacert "$tls/ca.crt" "$url") == "$body" ]] ||
        die "nginx does not answer the same body as roost on $url"
done
mapfile -t nginx_procs < <(echo "$nginx_pid"; pgrep -P "$nginx_pid")
nginx_idle_kib=$(rss_kib "${nginx_procs[@]}")

# --- instructions per request (--instructions) --------------------------------------------------
# Sets result_ir: the instructions the server executed per request answered by wrk, counted
# from a zeroed counter after a warm-up (so the TLS handshakes of the run's own connections are
# in it, the server's start-up is not).
count_instructions() {
    local url=$1 pid=$2 out=$work/wrk.out requests dump
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d2s "$url" >/dev/null 2>&1 || die "wrk failed on $url"
    callgrind_control -z "$pid" >/dev/null || die "callgrind_control could not zero pid $pid"
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "$url" >"$out" 2>&1 ||
        die "wrk failed: $(cat "$out")"
    callgrind_control -d "$pid" >/dev/null || die "callgrind_control could not dump pid $pid"
    requests=$(awk '/requests in/ { print $1 }' "$out")
    # The dump just written is the newest file of that server's.
    dump=$(ls -t "$work/$3.cg".* | head -n 1)
    result_ir=$(awk -v n="$requests" '/^summary:/ { printf "%d", $2 / n }' "$dump")
    [[ -n $result_ir && -n $requests ]] || die "no instruction count in $dump"
    result_requests=$requests
}

if $instructions; then
    rows=()
    if ! $nginx_only; then
        log "roost under callgrind: $DURATION with $CONNECTIONS connections"
        count_instructions "$roost_health" "$roost_pid" roost
        roost_ir=$result_ir
        rows+=("$(printf '%-16s %12s %14s' roost "$result_requests" "$result_ir")")
    fi
    log "nginx under callgrind: $DURATION with $CONNECTIONS connections"
    count_instructions "$nginx_url" "$nginx_pid" nginx
    rows+=("$(printf '%-16s %12s %14s' "nginx (1 process)" "$result_requests" "$result_ir")")
    echo
    echo "GET /health over TLS keep-alive under valgrind --tool=callgrind: user-space instructions"
    echo "per request (wrk -t1 -c$CONNECTIONS -d$DURATION after a 2 s warm-up; the kernel's share is not counted)"
    echo
    printf '%-16s %12s %14s
' server requests instr/req
    printf '%s
' "${rows[@]}"
    if ! $nginx_only; then
        echo
        awk -v r="$roost_ir" -v n="$result_ir" \
            'BEGIN { printf "roost/nginx instructions per request: %.2fx (lower is better)\n", r / n }'
    fi
    exit 0
fi

# --- rounds --------------------------------------------------------------------------------------
# Both servers stay up (the idle one costs nothing on core 0) and take turns, so a drift of the
# machine's speed during the run shows up in every round's pair rather than between the two.
rows=() ratios=() ratios_same=() warnings=()
roost_loaded_kib=0 nginx_loaded_kib=0
for round in $(seq 1 "$ROUNDS"); do
    if ! $nginx_only; then
        log "round $round/$ROUNDS: roost, $DURATION with $CONNECTIONS connections"
        measure "$roost_health" "$roost_pid"
        rows+=("$(printf '%-6s %-16s %12s %10s %18s %14s' "$round" roost "$result_rps" "$result_p99" "$result_cpu" "$result_client")")
        roost_round_rps=$result_rps
        ((result_rss_max_kib > roost_loaded_kib)) && roost_loaded_kib=$result_rss_max_kib
        [[ -z $result_errors ]] || warnings+=("roost, round $round: $result_errors")
    fi
    log "round $round/$ROUNDS: nginx, $DURATION with $CONNECTIONS connections"
    measure "$nginx_url" "${nginx_procs[@]}"
    rows+=("$(printf '%-6s %-16s %12s %10s %18s %14s' "$round" "nginx (1 worker)" "$result_rps" "$result_p99" "$result_cpu" "$result_client")")
    ((result_rss_max_kib > nginx_loaded_kib)) && nginx_loaded_kib=$result_rss_max_kib
    [[ -z $result_errors ]] || warnings+=("nginx, round $round: $result_errors")
    if ! $nginx_only; then
        ratios+=("$(awk -v r="$roost_round_rps" -v n="$result_rps" 'BEGIN { printf "%.2f", r / n }')")
        log "round $round/$ROUNDS: nginx with roost's headers, $DURATION with $CONNECTIONS connections"
        measure "$nginx_same_url" "${nginx_procs[@]}"
        rows+=("$(printf '%-6s %-16s %12s %10s %18s %14s' "$round" "nginx, same hdrs" "$result_rps" "$result_p99" "$result_cpu" "$result_client")")
        [[ -z $result_errors ]] || warnings+=("nginx (same headers), round $round: $result_errors")
        ratios_same+=("$(awk -v r="$roost_round_rps" -v n="$result_rps" 'BEGIN { printf "%.2f", r / n }')")
    fi
done
$nginx_only || stop_pid "$roost_pid"
stop_pid "$nginx_pid"

# --- report --------------------------------------------------------------------------------------
echo
echo "GET /health over TLS keep-alive: wrk -t1 -c$CONNECTIONS -d$DURATION on core 1, server on core 0"
echo "body $body; Strict-Transport-Security: $hsts"
echo
printf '%-6s %-16s %12s %10s %18s %14s\n' round server req/s p99 "CPU us/req usr/sys" "wrk us/req busy"
printf '%s\n' "${rows[@]}"
echo
printf '%-16s %14s %16s\n' server "idle RSS MB" "loaded RSS MB"
if ! $nginx_only; then
    printf '%-16s %14s %16s\n' roost "$(kib_to_mb "$roost_idle_kib")" "$(kib_to_mb "$roost_loaded_kib")"
fi
printf '%-16s %14s %16s\n' "nginx (1 worker)" "$(kib_to_mb "$nginx_idle_kib")" \
    "$(kib_to_mb "$nginx_loaded_kib")"
echo
if $nginx_only; then
    echo "roost: not measured (--nginx-only)"
else
    median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
        printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
    ratio=$(median "${ratios[@]}")
    ratio_same=$(median "${ratios_same[@]}")
    verdict() { awk -v v="$1" -v g="$2" -v op="$3" 'BEGIN {
        ok = (op == ">=") ? v >= g : v <= g; print (ok ? "met" : "NOT met") }'; }
    idle_mb=$(kib_to_mb "$roost_idle_kib")
    echo "roost/nginx req/s by round: ${ratios[*]}"
    echo "roost/nginx with roost's headers, by round: ${ratios_same[*]}"
    printf 'roost/nginx req/s   %6sx   goal >= %sx     %s   (median of %s rounds)\n' "$ratio" \
        "$GOAL_RATIO" "$(verdict "$ratio" "$GOAL_RATIO" ">=")" "$ROUNDS"
    printf '  same headers      %6sx   (nginx sending the headers roost sends; not the goal)\n' \
        "$ratio_same"
    printf 'roost idle RSS      %6s MB  goal <= %s MB   %s\n' "$idle_mb" "$GOAL_IDLE_RSS_MB" \
        "$(verdict "$idle_mb" "$GOAL_IDLE_RSS_MB" "<=")"
fi
for w in "${warnings[@]}"; do
    echo "WARNING $w (its figures are not comparable)"
done
