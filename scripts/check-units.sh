#!/usr/bin/env bash
# Checks the systemd units Roost ships (systemd/*): every unit passes `systemd-analyze verify`
# without a single warning, and every .service has an offline security exposure of at most 2.0.
#
#   scripts/check-units.sh [UNIT_FILE...]      default: every file in systemd/
#
# verify runs against a throw-away root (--root=) holding a copy of this machine's systemd units,
# the commands the units name, and a stand-in /usr/bin/roost: verify only checks that an Exec
# command exists and is executable, so the real binary is not needed and nothing is installed
# on this machine. With CI=true a missing systemd-analyze is installed with apt-get; otherwise
# the script says what to install and stops.
set -euo pipefail

# Exposure limit, in the tenths --threshold= takes (20 = 2.0; systemd 252 rejects "2.0").
readonly MAX_EXPOSURE_TENTHS=20

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
    echo "check-units: $*" >&2
    exit 1
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
    if [[ ${CI:-} == true ]]; then
        echo "check-units: systemd-analyze missing; installing the systemd package (CI=true)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
    else
        die "systemd-analyze not found; install it with: apt-get install -y systemd"
    fi
fi
systemd_version=$(systemd-analyze --version | awk 'NR == 1 { print $2 }')
# --offline= and --threshold= for security, and --root= for verify, arrived in systemd 250.
if ((systemd_version < 250)); then
    die "systemd-analyze $systemd_version is too old; version 250 or later is needed"
fi

units=("$@")
if ((${#units[@]} == 0)); then
    shopt -s nullglob
    units=("$repo"/systemd/*)
    shopt -u nullglob
fi
((${#units[@]} > 0)) || die "no unit files found in $repo/systemd"

failures=()

# --- security: one exposure figure per service ------------------------------------------------
echo "security (offline), limit $((MAX_EXPOSURE_TENTHS / 10)).$((MAX_EXPOSURE_TENTHS % 10)):"
for unit in "${units[@]}"; do
    [[ -f $unit ]] || die "$unit is not a file"
    [[ $unit == *.service ]] || continue
    name=$(basename "$unit")
    status=0
    report=$(systemd-analyze security --offline=true --threshold="$MAX_EXPOSURE_TENTHS" \
        --no-pager "$unit" 2>&1) || status=$?
    exposure=$(grep -o 'Overall exposure level for [^:]*: [0-9.]*' <<<"$report" |
        awk '{ print $NF }' || true)
    if [[ -z $exposure ]]; then
        echo "$report" >&2
        failures+=("$name: systemd-analyze security gave no exposure figure")
        continue
    fi
    if ((status != 0)); then
        printf '  %-28s %s  TOO HIGH; the settings that cost most:\n' "$name" "$exposure"
        # Unmet settings, heaviest first (the last column is the weight).
        grep '✗' <<<"$report" | awk '{ print $NF "\t      " $0 }' | sort -rn -k1,1 |
            cut -f2- | head -n 15 || true
        failures+=("$name: exposure $exposure is above 2.0")
    else
        printf '  %-28s %s  ok\n' "$name" "$exposure"
    fi
done

# --- verify: all units together, in a temporary root ------------------------------------------
root=$(mktemp -d "${TMPDIR:-/tmp}/roost-units.XXXXXX")
trap 'rm -rf "$root"' EXIT

mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib/systemd" "$root/etc/systemd/system"
# Mirror merged-/usr symlinks (/bin -> usr/bin) so /bin/kill resolves inside the root as on the host.
for top in bin sbin lib; do
    if [[ -L /$top ]]; then
        ln -s "$(readlink "/$top")" "$root/$top"
    else
        mkdir -p "$root/$top"
    fi
done
# The distribution's units, so After=/Wants=/WantedBy= targets resolve (sysinit.target, ...).
for dir in /usr/lib/systemd/system /lib/systemd/system; do
    if [[ -d $dir && ! -L ${dir%%/systemd/system} ]]; then
        mkdir -p "$root$dir"
        cp -a "$dir/." "$root$dir/"
    fi
done

# Every command an Exec*= line names: our own binary as a stand-in, anything else copied from
# this machine (a command missing here is left missing, so verify reports it).
while IFS= read -r cmd; do
    [[ -e $root$cmd ]] && continue
    mkdir -p "$root$(dirname "$cmd")"
    if [[ $cmd == /usr/bin/roost ]]; then
        printf '#!/bin/sh\n# stand-in for systemd-analyze verify\nexit 0\n' >"$root$cmd"
        chmod 0755 "$root$cmd"
    elif [[ -e $cmd ]]; then
        cp -L "$cmd" "$root$cmd"
    fi
done < <(
    # Exec lines: drop the =, the special prefixes (-@:+!) and keep the first word.
    sed -nE 's/^[[:space:]]*Exec[A-Za-z]*=[[:space:]]*[-@:+!]*([^[:space:]]+).*/\1/p' "${units[@]}" |
        while IFS= read -r word; do
            if [[ $word == /* ]]; then
                echo "$word"
            elif resolved=$(command -v "$word"); then
                echo "$resolved"
            fi
        done | sort -u
)

in_root=()
for unit in "${units[@]}"; do
    cp "$unit" "$root/etc/systemd/system/"
    in_root+=("/etc/systemd/system/$(basename "$unit")")
done

echo "verify:"
status=0
# --man=no: Documentation= pages of a package that is not installed cannot be found here.
verify_out=$(systemd-analyze verify --root="$root" --man=no "${in_root[@]}" 2>&1) || status=$?
# verify exits 0 on unknown keys and unparsable values; any line it prints is a finding.
if ((status != 0)) || [[ -n $verify_out ]]; then
    sed "s|$root||g; s|^|  |" <<<"$verify_out"
    failures+=("systemd-analyze verify reported problems (exit $status)")
else
    for unit in "${in_root[@]}"; do
        printf '  %-28s ok\n' "$(basename "$unit")"
    done
fi

if ((${#failures[@]} > 0)); then
    echo "check-units: FAILED" >&2
    printf '  - %s\n' "${failures[@]}" >&2
    exit 1
fi
echo "check-units: all ${#units[@]} unit(s) ok"
