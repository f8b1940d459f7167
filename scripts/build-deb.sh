#!/usr/bin/env bash
# Builds the Debian package roost_<version>_<arch>.deb with cargo-deb and checks it with lintian.
#
#   scripts/build-deb.sh [--no-lintian] TARGET
#
# TARGET: aarch64-unknown-linux-gnu (arm64), armv7-unknown-linux-gnueabihf (armhf), or
# x86_64-unknown-linux-gnu (amd64, for trying the package on a PC). ARM binaries are built by
# scripts/build-arm.sh (Debian's cross compilers, no Docker).
#
# What goes into the package is declared in Cargo.toml ([package.metadata.deb]); the maintainer
# scripts, sysusers/tmpfiles entries, Avahi service, changelog and copyright live in debian/.
# The pinned livekit-server for the target (scripts/build-livekit.sh: cached per machine, else
# built from its Go module, minutes the first time) goes in as /usr/lib/roost/livekit-server,
# its LICENSE and NOTICE in /usr/share/doc/roost/livekit-server/, beside
# third-party-licenses.txt.gz: the licences of the Go modules compiled into it (collected by
# scripts/build-livekit.sh into its cache, so packaging needs no Go). The licences of the Rust
# code compiled into roost itself (the standard library and every crate linked for TARGET,
# collected by scripts/crate-licences.py from the toolchain and the cargo registry's sources,
# offline) go in as /usr/share/doc/roost/third-party-licenses.txt.gz; a crate without a licence
# file fails the build with its name. Every unit in systemd/ is
# packaged; whether the package enables and starts it comes from the systemd-units
# entries in Cargo.toml, and the built package's maintainer scripts are checked against the
# table UNIT_POLICY below (a unit missing from it fails the build). The man pages are generated
# from the clap definition by examples/gen-man.rs, dated by the newest debian/changelog entry.
#
# Installs what is missing: cargo-deb (pinned, from crates.io, into ~/.cargo/bin once), and as
# root lintian, dpkg-dev and python3. The package lands in $CARGO_TARGET_DIR/debian/ (default
# target/debian/); its path is the last line printed. lintian must report no error and no
# warning (overrides in debian/lintian-overrides carry their reasons).
set -euo pipefail

# cargo-deb, pinned: the package layout must not change under us.
readonly CARGO_DEB_VERSION=3.8.0

# What the maintainer scripts may do with each unit in systemd/: "enable start" or
# "none". roost-backup.service runs only when its timer fires, never at install or upgrade.
declare -A UNIT_POLICY=(
    [roost.service]="enable start"
    [roost-backup.timer]="enable start"
    [roost-backup.service]="none"
)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

run_lintian=true
target=
for arg in "$@"; do
    case $arg in
    --no-lintian) run_lintian=false ;;
    -h | --help)
        sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    -*)
        echo "build-deb: unknown option '$arg'" >&2
        exit 64
        ;;
    *) target=$arg ;;
    esac
done
case $target in
aarch64-unknown-linux-gnu | armv7-unknown-linux-gnueabihf | x86_64-unknown-linux-gnu) ;;
*)
    echo "usage: scripts/build-deb.sh [--no-lintian] aarch64-unknown-linux-gnu|armv7-unknown-linux-gnueabihf|x86_64-unknown-linux-gnu" >&2
    exit 64
    ;;
esac

# --- tools --------------------------------------------------------------------------------------
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    ((${#missing[@]} > 0)) || return 0
    if ((EUID != 0)); then
        echo "build-deb: missing Debian packages; install them with: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "build-deb: installing ${missing[*]}"
    if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -print -quit) ]]; then
        apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
# dpkg-dev: dpkg-shlibdeps (Depends from the binary's libraries) and dpkg-parsechangelog.
# python3: scripts/crate-licences.py.
tools=(dpkg-dev python3)
$run_lintian && tools+=(lintian)
apt_install "${tools[@]}"

if [[ $(cargo deb --version 2>/dev/null || true) != *" $CARGO_DEB_VERSION"* ]]; then
    echo "build-deb: cargo install cargo-deb $CARGO_DEB_VERSION"
    cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION"
fi

# --- binary and man pages -----------------------------------------------------------------------
target_dir=${CARGO_TARGET_DIR:-$repo/target}
release_dir=$target_dir/$target/release
if [[ $target == x86_64-* ]]; then
    cargo build --locked --release --bin roost --target "$target"
else
    bash scripts/build-arm.sh "$target"
fi

# --- licences of the Rust code and the web client's packages in roost --------------------------
# For the same target as the binary: the crates linked differ between targets (the build just
# fetched their sources, so this needs no network). The web client's npm packages are read
# from web/node_modules, which a build that reused an already built client may not have made. Gzipped as Debian policy asks of documents
# over 4 kB; -n: no name or time stamp inside, so the same licences give the same bytes.
# Staged beside the binary: Cargo.toml's assets name target/release/doc/.
doc_stage=$release_dir/doc
rm -rf "$doc_stage"
mkdir -p "$doc_stage"
if [[ ! -d web/node_modules ]]; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
python3 scripts/crate-licences.py "$target" "$doc_stage/third-party-licenses.txt"
gzip -9n "$doc_stage/third-party-licenses.txt"

# --- livekit-server -----------------------------------------------------------------------------
# The pinned LiveKit media server for the same machine, built (or taken from the cache) by
# scripts/build-livekit.sh, goes in as /usr/lib/roost/livekit-server, the first place Roost
# looks (livekit.binary empty), with its LICENSE and NOTICE under /usr/share/doc/roost/ and
# the licences of the Go modules compiled into it, gzipped as Debian policy asks of documents
# over 4 kB. Staged beside the roost binary: Cargo.toml's assets name target/release/livekit/.
case $target in
aarch64-*) livekit_target=aarch64 ;;
armv7-*) livekit_target=armv7 ;;
x86_64-*)
    [[ $(uname -m) == x86_64 ]] || {
        echo "build-deb: the amd64 package carries the host's livekit-server: build it on an x86_64 machine" >&2
        exit 1
    }
    livekit_target=host
    ;;
esac
livekit=$(bash scripts/build-livekit.sh "$livekit_target")
livekit_stage=$release_dir/livekit
rm -rf "$livekit_stage"
mkdir -p "$livekit_stage"
install -m 0755 "$livekit" "$livekit_stage/livekit-server"
install -m 0644 "$(dirname "$livekit")/LICENSE" "$(dirname "$livekit")/NOTICE" "$livekit_stage/"
# -n: no name or time stamp inside, so the same licences give the same bytes.
gzip -9n <"$(dirname "$livekit")/third-party-licenses.txt" >"$livekit_stage/third-party-licenses.txt.gz"

# The example runs on the build machine; it only reads the clap definition.
man_dir=$release_dir/man
rm -rf "$man_dir"
changelog_date=$(date -u -d "$(dpkg-parsechangelog -l debian/changelog -S Date)" +%F)
cargo run --locked --quiet --example gen-man -- "$man_dir" "$changelog_date" >/dev/null
# -n: no name or time stamp inside, so the same pages give the same bytes.
gzip -9n "$man_dir"/*.1

# --- package ------------------------------------------------------------------------------------
out_dir=$target_dir/debian
mkdir -p "$out_dir"
# --no-build: the binary above is the one packaged. --no-strip: [profile.release] already
# strips it, so no cross strip tool is needed.
deb=$(cargo deb --locked --no-build --no-strip --target "$target" --output "$out_dir" | tail -n 1)
[[ -f $deb ]] || {
    echo "build-deb: cargo deb did not report a package file (got '$deb')" >&2
    exit 1
}

# --- what the maintainer scripts do with the units -----------------------------------------------
# True if a command line (not a comment) of the SCRIPTS runs deb-systemd-helper, deb-systemd-invoke
# or systemctl with one of the ACTIONS (comma-separated) on UNIT, matched as whole words.
scripts_act_on() {
    local actions=$1 unit=$2
    shift 2
    awk -v unit="$unit" -v actions=",$actions," '
        /^[[:space:]]*#/ { next }
        {
            tool = 0; act = 0; named = 0
            for (i = 1; i <= NF; i++) {
                if ($i == "deb-systemd-helper" || $i == "deb-systemd-invoke" || $i == "systemctl") tool = 1
                if (index(actions, "," $i ",")) act = 1
                if ($i == unit) named = 1
            }
            if (tool && act && named) found = 1
        }
        END { exit !found }' "$@"
}

check_units() {
    local deb=$1 control scripts unit file want enabled started problems=0
    control=$(mktemp -d)
    dpkg-deb -e "$deb" "$control"
    scripts=()
    for file in preinst postinst prerm postrm; do
        [[ -f $control/$file ]] && scripts+=("$control/$file")
    done
    for file in systemd/*; do
        unit=$(basename "$file")
        want=${UNIT_POLICY[$unit]-}
        if [[ -z $want ]]; then
            echo "build-deb: $unit is in systemd/ but not in UNIT_POLICY (scripts/build-deb.sh): decide whether the package enables and starts it, and give it a systemd-units entry in Cargo.toml" >&2
            problems=1
            continue
        fi
        enabled=no started=no
        scripts_act_on enable "$unit" "${scripts[@]}" && enabled=yes
        # $_dh_action is cargo-deb's start-or-restart variable, matched literally.
        # shellcheck disable=SC2016
        scripts_act_on 'start,restart,try-restart,reload-or-restart,$_dh_action' "$unit" "${scripts[@]}" &&
            started=yes
        case $want in
        "enable start") [[ $enabled$started == yesyes ]] ;;
        none) [[ $enabled$started == nono ]] ;;
        esac || {
            echo "build-deb: maintainer scripts of $(basename "$deb"): $unit enabled=$enabled started=$started, expected: $want (systemd-units in Cargo.toml, debian/postinst)" >&2
            problems=1
        }
    done
    rm -rf "$control"
    ((problems == 0)) || exit 1
    echo "build-deb: maintainer scripts enable and start units as UNIT_POLICY says"
}
check_units "$deb"

# The package carries livekit-server where Roost looks first, built for the package's machine
# (ELF e_machine: 0xb7 aarch64, 0x28 arm, 0x3e x86-64), LiveKit's licence files, and those of
# the Go modules compiled into it.
check_livekit() {
    local deb=$1 unpacked want got path
    unpacked=$(mktemp -d)
    dpkg-deb -x "$deb" "$unpacked"
    for path in usr/lib/roost/livekit-server usr/share/doc/roost/livekit-server/LICENSE \
        usr/share/doc/roost/livekit-server/NOTICE \
        usr/share/doc/roost/livekit-server/third-party-licenses.txt.gz; do
        [[ -f $unpacked/$path ]] || {
            echo "build-deb: $(basename "$deb") has no /$path" >&2
            rm -rf "$unpacked"
            exit 1
        }
    done
    case $(dpkg-deb -f "$deb" Architecture) in
    arm64) want=b7 ;;
    armhf) want=28 ;;
    amd64) want=3e ;;
    esac
    got=$(od -An -tx1 -j18 -N1 "$unpacked/usr/lib/roost/livekit-server" | tr -d ' ')
    rm -rf "$unpacked"
    [[ $got == "$want" ]] || {
        echo "build-deb: /usr/lib/roost/livekit-server is for ELF machine 0x$got, not this package's 0x$want" >&2
        exit 1
    }
    echo "build-deb: /usr/lib/roost/livekit-server for $(dpkg-deb -f "$deb" Architecture), Installed-Size $(dpkg-deb -f "$deb" Installed-Size) KiB"
}
check_livekit "$deb"

# The package carries the licences of the Rust code in roost, collected for its own target.
check_rust_licences() {
    local deb=$1 unpacked path=usr/share/doc/roost/third-party-licenses.txt.gz first web
    unpacked=$(mktemp -d)
    dpkg-deb -x "$deb" "$unpacked"
    first=$(zcat "$unpacked/$path" 2>/dev/null | head -n 1 || true)
    web=$(zcat "$unpacked/$path" 2>/dev/null | grep -c '^livekit-client .* (npm, in the web client)$' || true)
    rm -rf "$unpacked"
    [[ $first == *"compiled into roost for $target:"* ]] || {
        echo "build-deb: $(basename "$deb") has no /$path for $target (first line: '$first')" >&2
        exit 1
    }
    [[ $web == 1 ]] || {
        echo "build-deb: /$path in $(basename "$deb") does not list the web client's npm packages" >&2
        exit 1
    }
    echo "build-deb: /$path lists the Rust code and the web client's packages compiled into roost for $target"
}
check_rust_licences "$deb"

if $run_lintian; then
    echo "build-deb: lintian $(basename "$deb")"
    # Errors and warnings fail the build; info tags are shown for the record.
    lintian --fail-on error,warning --display-info --tag-display-limit 0 "$deb"
fi
echo "$deb"
