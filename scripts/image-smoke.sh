#!/usr/bin/env bash
# Proves an SD-card image from image/build.sh boots and serves: boots a copy of it with
# qemu-system-aarch64 (-M virt, software emulation) using the image's own kernel and initrd
# (the ones config.txt names on the FAT partition), with the first-boot settings a user would
# write on the card, then waits until
#   - Roost answers GET /health over TLS, verified against the CA the Pi made at its first
#     boot (fetched from http://<pi>/ca.crt) for the hostname set in roost-settings.txt,
#   - `systemctl is-active roost` says active (over SSH, with the key from roost-settings.txt),
#   - the supervisor started the packaged /usr/lib/roost/livekit-server with the default
#     configuration: /ready reports livekit ok, and roost.service's control group holds exactly
#     one livekit-server, a child of roost,
#   - the roost.toml placed on the card is in effect (its HSTS max-age) and gone from the card,
#   - root's console password from the card is set (its hash matches) and gone from the card,
#   - the root file system grew to the (enlarged) disk, and the console showed the URL, the CA
#     fingerprint (the same as the fetched CA's) and the setup-code section,
# and finally powers the guest off.
#
#   scripts/image-smoke.sh [--deb FILE] [IMAGE]
#
# IMAGE defaults to the newest $CARGO_TARGET_DIR/image/roost-*-arm64.img. With --deb (an arm64
# roost package, e.g. the one in the image), the package's life cycle is tested too, under the
# guest's running systemd: reinstall while running (init skipped, service restarted, CA kept),
# remove (stopped, data and configuration kept), purge (both gone), install again (a new CA,
# the service active and answering).
#
# The guest's network is qemu's user mode with restrict=on: it reaches nothing outside the VM
# (no NTP, no package mirrors); only the forwarded loopback ports come in. The image itself is
# not changed (a sparse copy is booted). Installs what it runs when missing (as root): qemu,
# with ipxe-qemu for the virtio network card's option ROM (efi-virtio.rom; qemu refuses to
# start without it, and it is only a Recommends of qemu-system-arm), mtools, fdisk,
# openssh-client, curl and python3.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Software emulation of a first boot (grow, keys, init, daemon start) on a shared 2-core
# machine: minutes, not seconds.
readonly BOOT_DEADLINE_SECS=${ROOST_SMOKE_BOOT_DEADLINE_SECS:-1500}
readonly POWEROFF_DEADLINE_SECS=180
readonly HOSTNAME_ON_CARD=roost-smoke
# With a colon, a space and a shell metacharacter, as people's passwords have.
readonly ROOT_PASSWORD_ON_CARD='smoke: test&pass$1'
# The copy gets this much more disk than the image, so the first boot has something to grow into.
readonly GROW_MIB=512
# LiveKit's first start under software emulation, after Roost answers.
readonly LIVEKIT_DEADLINE_SECS=600
readonly PACKAGED_LIVEKIT=/usr/lib/roost/livekit-server

deb=
image=
while (($# > 0)); do
    case $1 in
    --deb)
        deb=$2
        shift
        ;;
    -*)
        echo "image-smoke: unknown option '$1'" >&2
        exit 64
        ;;
    *) image=$1 ;;
    esac
    shift
done
[[ -z $deb || -f $deb ]] || {
    echo "image-smoke: no package at '$deb'" >&2
    exit 64
}
if [[ -z $image ]]; then
    image=$(ls -t "${CARGO_TARGET_DIR:-$repo/target}"/image/roost-*-arm64.img 2>/dev/null | head -n 1 || true)
fi
[[ -n $image && -f $image ]] || {
    echo "image-smoke: no image; build one with: sudo image/build.sh" >&2
    exit 64
}

say() { printf 'image-smoke: %s (%ss)\n' "$*" "$SECONDS"; }

# Every package this script runs a program or file from: installs here skip Recommends, so
# each one is named (ipxe-qemu carries the virtio-net option ROM qemu loads at start).
needed=(qemu-system-arm ipxe-qemu mtools openssh-client curl fdisk python3)
missing=()
for pkg in "${needed[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
    ((EUID == 0)) || {
        echo "image-smoke: install ${missing[*]} first" >&2
        exit 1
    }
    if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -print -quit) ]]; then
        apt-get update -qq
    fi
    # A fresh machine's first minutes often have apt busy (unattended-upgrades): wait for it.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/roost-image-smoke.XXXXXX")
qemu_pid=
cleanup() {
    if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "image-smoke: FAILED: $*" >&2
    if [[ -s $work/console.log ]]; then
        echo "--- last lines of the guest console:" >&2
        tail -n 60 "$work/console.log" | tr -d '\r' >&2
    fi
    exit 1
}

# --- a copy of the card, with first-boot settings on its FAT partition ---------------------------
disk=$work/disk.img
cp --sparse=always "$image" "$disk"
original_bytes=$(stat -c %s "$disk")
truncate -s "+${GROW_MIB}M" "$disk"
# Partition 1 (FAT): its byte offset, for mtools' IMAGE@@OFFSET.
fat_start=$(sfdisk --dump "$disk" | sed -n 's/^[^ ]*1 : start= *\([0-9]*\),.*/\1/p')
[[ -n $fat_start ]] || fail "no first partition in $image"
fat="$disk@@$((fat_start * 512))"
export MTOOLS_SKIP_CHECK=1

ssh-keygen -q -t ed25519 -N '' -C roost-image-smoke -f "$work/id"
mtype -i "$fat" ::roost-settings.txt | tr -d '\r' |
    sed -e "s|^hostname=.*|hostname=$HOSTNAME_ON_CARD|" \
        -e "s|^root_authorized_key=.*|root_authorized_key=$(cat "$work/id.pub")|" \
        -e "s|^root_password=.*|root_password=${ROOT_PASSWORD_ON_CARD//&/\\&}|" >"$work/settings.txt"
grep -qx "root_password=$ROOT_PASSWORD_ON_CARD" "$work/settings.txt" ||
    fail "the image's roost-settings.txt has no root_password line"
mcopy -o -i "$fat" "$work/settings.txt" ::roost-settings.txt
# A roost.toml override on the card, with a value the daemon shows in every response.
readonly HSTS_ON_CARD=12345678
printf '[tls]\nhsts_max_age_secs = %s\n' "$HSTS_ON_CARD" >"$work/roost.toml"
mcopy -o -i "$fat" "$work/roost.toml" ::roost.toml

# The kernel and initrd the Pi firmware would load, as config.txt names them.
mtype -i "$fat" ::config.txt | tr -d '\r' >"$work/config.txt"
kernel=$(sed -n 's/^kernel=//p' "$work/config.txt" | tail -n 1)
initrd=$(sed -n 's/^initramfs[[:space:]]\{1,\}\([^[:space:]]*\).*/\1/p' "$work/config.txt" | tail -n 1)
[[ -n $kernel && -n $initrd ]] || fail "config.txt names no kernel/initramfs: $(cat "$work/config.txt")"
mcopy -i "$fat" "::$kernel" "$work/vmlinuz"
mcopy -i "$fat" "::$initrd" "$work/initrd.img"
say "booting $(basename "$image") with its $kernel and $initrd"

# --- boot -----------------------------------------------------------------------------------------
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
https_port=$(free_port)
http_port=$(free_port)
ssh_port=$(free_port)
qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -accel tcg,thread=multi \
    -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
    -append "root=LABEL=RASPIROOT rw rootwait console=ttyAMA0" \
    -drive "if=none,id=disk,file=$disk,format=raw" -device virtio-blk-pci,drive=disk \
    -netdev "user,id=net,restrict=on,hostfwd=tcp:127.0.0.1:$https_port-:443,hostfwd=tcp:127.0.0.1:$http_port-:80,hostfwd=tcp:127.0.0.1:$ssh_port-:22" \
    -device virtio-net-pci,netdev=net \
    -object rng-random,filename=/dev/urandom,id=rng -device virtio-rng-pci,rng=rng \
    -display none -monitor none -serial "file:$work/console.log" &
qemu_pid=$!

guest_ssh() {
    ssh -i "$work/id" -p "$ssh_port" -o BatchMode=yes -o ConnectTimeout=10 \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        root@127.0.0.1 "$@"
}

# /ca.crt over plain HTTP first (what a phone does), then /health over TLS verified with it,
# under the hostname from the card: proves `roost init` ran with the Pi's real name.
deadline=$((SECONDS + BOOT_DEADLINE_SECS))
health=
while :; do
    kill -0 "$qemu_pid" 2>/dev/null || fail "qemu exited"
    ((SECONDS < deadline)) || fail "Roost did not answer /health over TLS within ${BOOT_DEADLINE_SECS}s"
    if curl -sf --max-time 10 -o "$work/ca.crt" "http://127.0.0.1:$http_port/ca.crt" &&
        health=$(curl -sf --max-time 20 --cacert "$work/ca.crt" \
            --resolve "$HOSTNAME_ON_CARD.local:$https_port:127.0.0.1" \
            "https://$HOSTNAME_ON_CARD.local:$https_port/health"); then
        break
    fi
    sleep 5
done
[[ $health == *'"status":"ok"'* ]] || fail "unexpected /health body: $health"
say "GET https://$HOSTNAME_ON_CARD.local/health over TLS: $health"

hsts=$(curl -sf --max-time 20 --cacert "$work/ca.crt" -D - -o /dev/null \
    --resolve "$HOSTNAME_ON_CARD.local:$https_port:127.0.0.1" \
    "https://$HOSTNAME_ON_CARD.local:$https_port/health" | tr -d '\r' | grep -i '^strict-transport-security:') ||
    fail "no Strict-Transport-Security header"
[[ $hsts == *"max-age=$HSTS_ON_CARD"* ]] || fail "roost.toml from the card not in effect: $hsts"
guest_ssh test ! -e /boot/firmware/roost.toml || fail "roost.toml was left on the card"
say "roost.toml from the card applied ($hsts) and removed from the card"

state=$(guest_ssh systemctl is-active roost.service) || fail "systemctl is-active roost: $state"
say "systemctl is-active roost: $state"

# Calls with no edit: the configuration on the card says nothing about LiveKit, so Roost runs the
# binary the package put where it looks first. /ready's livekit check turns ok once Roost's
# health check reaches the server it started.
wait_livekit_up() {
    local deadline=$((SECONDS + LIVEKIT_DEADLINE_SECS)) ready state
    while :; do
        ready=$(curl -s --max-time 20 --cacert "$work/ca.crt" \
            --resolve "$HOSTNAME_ON_CARD.local:$https_port:127.0.0.1" \
            "https://$HOSTNAME_ON_CARD.local:$https_port/ready") || ready=
        state=$(python3 -c 'import json, sys; c = json.loads(sys.argv[1])["checks"]["livekit"]; print(c["status"], c.get("message", ""))' \
            "$ready" 2>/dev/null) || state="unreadable /ready: $ready"
        [[ $state == ok* ]] && break
        ((SECONDS < deadline)) || fail "$1: /ready did not report livekit ok within ${LIVEKIT_DEADLINE_SECS}s (last: $state)"
        sleep 5
    done
    # Every process in roost.service's control group but the daemon: "pid exe parent-pid".
    local main others
    main=$(guest_ssh systemctl show -p MainPID --value roost.service)
    others=$(guest_ssh 'main=$(systemctl show -p MainPID --value roost.service)
        for p in $(cat "/sys/fs/cgroup$(systemctl show -p ControlGroup --value roost.service)/cgroup.procs"); do
            [ "$p" = "$main" ] || echo "$p $(readlink "/proc/$p/exe") $(cut -d" " -f4 "/proc/$p/stat")"
        done')
    [[ $(grep -c . <<<"$others") == 1 && $others == *" $PACKAGED_LIVEKIT $main" ]] ||
        fail "$1: roost.service (main pid $main) should hold one $PACKAGED_LIVEKIT child, has: ${others:-nothing else}"
    say "$1: /ready livekit ok; roost.service holds one livekit-server child of roost ($others)"
}
wait_livekit_up "first boot"
# `roost doctor` names the binary it found (and its version) on its livekit line.
doctor_livekit=$(guest_ssh roost doctor 2>/dev/null | grep -E '^[A-Z]+ +livekit ' || true)
[[ $doctor_livekit == *"$PACKAGED_LIVEKIT: "* ]] ||
    fail "roost doctor does not report $PACKAGED_LIVEKIT: ${doctor_livekit:-no livekit line}"
say "roost doctor: $doctor_livekit"

guest_host=$(guest_ssh hostname)
[[ $guest_host == "$HOSTNAME_ON_CARD" ]] || fail "hostname is '$guest_host', not '$HOSTNAME_ON_CARD'"

# root's console password: set from the card (its hash in /etc/shadow matches), gone from it.
root_hash=$(guest_ssh getent shadow root | cut -d: -f2)
[[ $root_hash == '$'* ]] || fail "root has no password hash after the first boot: '$root_hash'"
python3 -c 'import crypt, sys; sys.exit(crypt.crypt(sys.argv[1], sys.argv[2]) != sys.argv[2])' \
    "$ROOT_PASSWORD_ON_CARD" "$root_hash" 2>/dev/null ||
    fail "root's password hash does not match root_password from the card"
card_line=$(guest_ssh grep '^root_password' /boot/firmware/roost-settings.txt)
[[ $card_line != *"$ROOT_PASSWORD_ON_CARD"* && $card_line == *removed* ]] ||
    fail "root_password was left on the card: $card_line"
say "root's console password set from the card and removed from it ($card_line)"

root_bytes=$(guest_ssh lsblk -b -n -o SIZE "\$(findmnt -n -o SOURCE /)")
((root_bytes + 256 * 1048576 > original_bytes)) ||
    fail "root partition not grown: $root_bytes bytes on a $((original_bytes + GROW_MIB * 1048576))-byte disk"
say "root partition grown to $((root_bytes / 1048576)) MiB"

say "first-boot log:"
guest_ssh journalctl -b -o cat --no-pager -u roost-firstboot.service -u roost-init.service | sed 's/^/    /'

# The console banner: printed once roost.service is up (the setup code file is written before).
fingerprint=$(sed '/^-----/d' "$work/ca.crt" | base64 -d | sha256sum | awk '{ print toupper($1) }' |
    sed 's/../&:/g; s/:$//')
deadline=$((SECONDS + 120))
until tr -d '\r' <"$work/console.log" | grep -q '^=*$' &&
    tr -d '\r' <"$work/console.log" | grep -q "https://$HOSTNAME_ON_CARD.local/"; do
    ((SECONDS < deadline)) || fail "the console shows no Roost banner"
    sleep 2
done
tr -d '\r' <"$work/console.log" | grep -qF "$fingerprint" ||
    fail "the console does not show the CA fingerprint $fingerprint"
say "console banner:"
# The first banner, without the kernel's "[time] roost-console[pid]: " prefix where it has one
# (a serial login prompt does not reprint /etc/issue.d; a screen's does, with agetty --reload).
tr -d '\r' <"$work/console.log" | sed -E 's/^\[ *[0-9.]+\] roost-console\[[0-9]+\]: //' |
    awk '/= Roost =/ { on = 1 } on { print "    " $0 } on && /^=+$/ { exit }'
# No admin exists yet: the code is on the console, and in files only root may read.
tr -d '\r' <"$work/console.log" | grep -q 'One-time setup code' || fail "the console shows no setup code"
modes=$(guest_ssh stat -c %a /run/roost-console.txt /etc/issue.d/roost.issue | tr '\n' ' ')
[[ $modes == "600 600 " ]] || fail "the console's files holding the setup code are not 0600: $modes"
say "setup code on the console; its files are 0600"

# Waits until the guest's roost.service is active and answers /health with the CA it has now.
wait_serving() {
    local deadline=$((SECONDS + 300))
    until [[ $(guest_ssh systemctl is-active roost.service || true) == active ]] &&
        curl -sf --max-time 10 -o "$work/ca.crt" "http://127.0.0.1:$http_port/ca.crt" &&
        curl -sf --max-time 20 --cacert "$work/ca.crt" -o /dev/null \
            --resolve "$HOSTNAME_ON_CARD.local:$https_port:127.0.0.1" \
            "https://$HOSTNAME_ON_CARD.local:$https_port/health"; do
        ((SECONDS < deadline)) || fail "$1: Roost not active and answering within 300s"
        sleep 3
    done
}

if [[ -n $deb ]]; then
    say "package life cycle with $(basename "$deb")"
    guest_ssh 'cat >/tmp/roost.deb' <"$deb"
    ca_before=$(guest_ssh sha256sum /var/lib/roost/tls/ca.crt)
    pid_before=$(guest_ssh systemctl show -p MainPID --value roost.service)
    guest_ssh DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/roost.deb >"$work/dpkg.log" 2>&1 ||
        fail "reinstall: dpkg -i failed: $(cat "$work/dpkg.log")"
    wait_serving "reinstall"
    pid_after=$(guest_ssh systemctl show -p MainPID --value roost.service)
    [[ $pid_after != "$pid_before" ]] || fail "reinstall: roost.service was not restarted"
    [[ $(guest_ssh sha256sum /var/lib/roost/tls/ca.crt) == "$ca_before" ]] ||
        fail "reinstall: the CA changed"
    say "  reinstall while running: restarted (pid $pid_before -> $pid_after), CA kept"

    guest_ssh dpkg -r roost >"$work/dpkg.log" 2>&1 || fail "dpkg -r: $(cat "$work/dpkg.log")"
    state=$(guest_ssh systemctl is-active roost.service || true)
    [[ $state != active ]] || fail "remove: roost.service still active"
    guest_ssh test -f /var/lib/roost/roost.sqlite3 -a -f /var/lib/roost/tls/ca.crt -a -f /etc/roost/roost.toml ||
        fail "remove: data or configuration was deleted"
    say "  remove: stopped ($state), data and configuration kept"

    guest_ssh dpkg -P roost >"$work/dpkg.log" 2>&1 || fail "dpkg -P: $(cat "$work/dpkg.log")"
    guest_ssh test ! -e /var/lib/roost -a ! -e /etc/roost || fail "purge: /var/lib/roost or /etc/roost remains"
    say "  purge: /var/lib/roost and /etc/roost removed"

    guest_ssh DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/roost.deb >"$work/dpkg.log" 2>&1 ||
        fail "install: dpkg -i failed: $(cat "$work/dpkg.log")"
    wait_serving "install after purge"
    [[ $(guest_ssh stat -c %U:%G /var/lib/roost /var/lib/roost/roost.sqlite3 | sort -u) == roost:roost ]] ||
        fail "install: the data directory is not owned by roost"
    [[ $(guest_ssh sha256sum /var/lib/roost/tls/ca.crt) != "$ca_before" ]] ||
        fail "install after purge: the old CA came back"
    say "  install after purge: a new CA, data owned by roost, active and answering"
    wait_livekit_up "  install after purge"
fi

guest_ssh systemctl poweroff >/dev/null 2>&1 || true
deadline=$((SECONDS + POWEROFF_DEADLINE_SECS))
while kill -0 "$qemu_pid" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "the guest did not power off within ${POWEROFF_DEADLINE_SECS}s"
    sleep 2
done
wait "$qemu_pid" || true
qemu_pid=
say "image smoke test passed"
