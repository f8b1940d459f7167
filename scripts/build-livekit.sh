#!/usr/bin/env bash
# Builds the real livekit-server, at one pinned version, from its Go module and prints the
# binary's path on stdout (everything else goes to stderr).
#
#   scripts/build-livekit.sh [host|aarch64|armv7]      (default: host)
#
# The binary is cached outside the checkout, keyed by version and target:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/roost/livekit/<version>/<target>/livekit-server
# so a second run only prints the path. ROOST_LIVEKIT_CACHE moves that root. Kept beside it,
# for the Debian package to ship with the binary (scripts/build-deb.sh) without needing Go:
#   LICENSE, NOTICE              LiveKit's own (Apache-2.0), from the same module source
#   third-party-licenses.txt     the licence files (LICENSE*, COPYING*, NOTICE*, PATENTS...)
#                                of every Go module compiled into the binary, as `go version -m`
#                                lists them, read from the module cache (downloaded and
#                                checksum-verified when missing), and the Go toolchain's own,
#                                whose runtime and standard library are linked in too
# A module without a licence file fails the build, unless LICENCE_EXCEPTIONS below names it
# with the reason. A cache made before these files were kept gets them added without a rebuild.
#
# Why a copy of the module and not `go install …/cmd/server@version`: livekit-server's go.mod
# replaces three pion modules with LiveKit's forks, and `go install pkg@version` refuses a
# module with replace directives (a temporary module requiring it would silently drop them).
# So the script downloads the module (`go mod download`, verified against sum.golang.org like
# every dependency after it: GONOSUMDB/GONOSUMCHECK/GOFLAGS=-insecure are cleared), copies its
# source to a temp dir and builds ./cmd/server there with the module's own go.mod and go.sum.
#
# Why this version: v1.13.5 is the newest release whose whole module graph the Go module proxy
# serves. From v1.13.6 on, livekit-server's go.mod replaces pion's webrtc, ice and dtls modules
# with LiveKit's forks (github.com/livekit/{webrtc-pion,ice,dtls}), and proxy.golang.org answers
# every version of those with "403 Forbidden: This module version is not available" (checked
# for v1.13.11, the newest on the proxy). Fetching them from GitHub directly would bypass the
# proxy and its checksum database, so the pin stays on the last release without them.
#
# Moving the pin: change LIVEKIT_VERSION below (newest: `go list -m -versions
# github.com/livekit/livekit-server`), run `scripts/build-livekit.sh host`, then the LiveKit
# tests (`cargo test --test roost livekit_real::`); docs/calls.md says which is pinned.
set -euo pipefail

LIVEKIT_VERSION=v1.13.5
LIVEKIT_MODULE=github.com/livekit/livekit-server

# Go modules compiled into livekit-server that carry no licence file of their own, each with
# the reason shipping it is still right. Empty for v1.13.5: all 118 modules (117 on arm and
# arm64) have one. Form: [module path]="reason".
declare -A LICENCE_EXCEPTIONS=()

log() { echo "build-livekit: $*" >&2; }
die() {
    log "$*"
    exit 1
}

target=${1:-host}
case $target in
    host) goarch=$(go env GOHOSTARCH 2>/dev/null || true) goarm= ;;
    aarch64) goarch=arm64 goarm= ;;
    armv7) goarch=arm goarm=7 ;;
    *) die "unknown target '$target' (host, aarch64 or armv7)" ;;
esac

cache_root=${ROOST_LIVEKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roost/livekit}
out_dir=$cache_root/$LIVEKIT_VERSION/$target
binary=$out_dir/livekit-server
third_party=$out_dir/third-party-licenses.txt
# What a finished cache entry holds: the binary and the licence files that go with it.
complete() { [[ -x $binary && -f $out_dir/LICENSE && -f $out_dir/NOTICE && -f $third_party ]]; }
if complete; then
    echo "$binary"
    exit 0
fi

command -v go >/dev/null ||
    die "'go' is not on PATH: livekit-server $LIVEKIT_VERSION is built from its Go module (install Go >= 1.26, e.g. apt-get install golang-go or https://go.dev/dl)"

mkdir -p "$out_dir"
# Tests running in parallel may all ask for the binary at once: one builds, the rest wait.
exec 9>"$out_dir/.lock"
flock 9
if complete; then
    echo "$binary"
    exit 0
fi

# Module checksums are checked against the public checksum database: nothing in the caller's
# environment may turn that off.
unset GONOSUMDB GONOSUMCHECK GOPRIVATE GONOPROXY GOINSECURE
export GOSUMDB=${GOSUMDB:-sum.golang.org}
[[ $GOSUMDB != off ]] || export GOSUMDB=sum.golang.org
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 GOOS=linux GOARCH=$goarch
[[ -z $goarm ]] || export GOARM=$goarm

t0=$(date +%s)
log "downloading $LIVEKIT_MODULE@$LIVEKIT_VERSION (checksum verified)"
module_dir=$(GOOS= GOARCH= GOARM= go mod download -json "$LIVEKIT_MODULE@$LIVEKIT_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -n $module_dir && -f $module_dir/go.mod ]] ||
    die "go mod download did not give a source directory for $LIVEKIT_MODULE@$LIVEKIT_VERSION"

# install, not cp: the module cache's files are read-only, and an older copy may be in the way.
for notice in LICENSE NOTICE; do
    [[ -f $module_dir/$notice ]] || die "$LIVEKIT_MODULE@$LIVEKIT_VERSION has no $notice file"
    install -m 0644 "$module_dir/$notice" "$out_dir/$notice"
done

# Writes $third_party from the modules the binary says it was built from (not from go.mod:
# a module the build pruned is not in the binary, and its licence does not belong here).
collect_licences() {
    local modules=() path version dir error file found missing=() text answered=0
    # `go version -m` prints "dep PATH VERSION SUM", then "=> PATH VERSION SUM" when go.mod
    # replaced that module: the replacement's source is what was compiled, so its licence counts.
    mapfile -t modules < <(go version -m "$binary" | awk '
        $1 == "dep" { if (mod != "") print mod; mod = $2 "@" $3 }
        $1 == "=>" { mod = (NF >= 3 ? $2 "@" $3 : "local:" $2) }
        END { if (mod != "") print mod }')
    ((${#modules[@]} > 0)) || die "go version -m lists no modules in $binary"
    for path in "${modules[@]}"; do
        [[ $path != local:* ]] ||
            die "$binary was built with a module replaced by the local directory ${path#local:}: its licence is not in the module cache"
    done

    text=$(mktemp)
    {
        echo "Licences of the Go code compiled into livekit-server $LIVEKIT_VERSION (linux/$goarch${goarm:+ v$goarm}):"
        echo "the Go toolchain's runtime and standard library, then each module that"
        echo "\`go version -m livekit-server\` lists, with the licence files of its source"
        echo "(LiveKit's own LICENSE and NOTICE are the files beside this one)."
        echo
        echo "================================================================================"
        echo "Go runtime and standard library ($(go version -m "$binary" | sed -n '1s/^[^:]*: //p'))"
        for file in LICENSE PATENTS; do
            [[ -f $(go env GOROOT)/$file ]] || continue
            printf -- '--- %s\n' "$file"
            cat "$(go env GOROOT)/$file"
        done
    } >"$text"
    [[ -f $(go env GOROOT)/LICENSE ]] || die "the Go toolchain at $(go env GOROOT) has no LICENSE"

    # One download call for all of them: a no-op for what the module cache already holds,
    # otherwise fetched through the proxy and checked against the checksum database.
    # Top-level fields are indented by one tab; nested ones (Origin) by more.
    while IFS=$'\t' read -r path version dir error; do
        [[ -z $error ]] || die "go mod download $path@$version: $error"
        answered=$((answered + 1))
        found=()
        for file in "$dir"/*; do
            [[ -f $file ]] || continue
            case ${file##*/} in
            *.go) ;;
            [Ll][Ii][Cc][Ee][Nn][CcSs][Ee]* | [Cc][Oo][Pp][Yy][Ii][Nn][Gg]* | [Nn][Oo][Tt][Ii][Cc][Ee]* | \
                [Cc][Oo][Pp][Yy][Rr][Ii][Gg][Hh][Tt]* | [Uu][Nn][Ll][Ii][Cc][Ee][Nn][Ss][Ee]* | [Pp][Aa][Tt][Ee][Nn][Tt][Ss]*)
                found+=("$file")
                ;;
            esac
        done
        if ((${#found[@]} == 0)); then
            if [[ -n ${LICENCE_EXCEPTIONS[$path]-} ]]; then
                log "no licence file in $path@$version (known: ${LICENCE_EXCEPTIONS[$path]})"
                printf '\n%s\n%s %s\n--- no licence file: %s\n' "================================================================================" \
                    "$path" "$version" "${LICENCE_EXCEPTIONS[$path]}" >>"$text"
            else
                missing+=("$path@$version")
            fi
            continue
        fi
        {
            printf '\n%s\n%s %s\n' "================================================================================" "$path" "$version"
            for file in "${found[@]}"; do
                printf -- '--- %s\n' "${file##*/}"
                cat "$file"
                # A file without a final newline must not run into the next header.
                [[ -z $(tail -c 1 "$file") ]] || echo
            done
        } >>"$text"
    done < <(GOOS= GOARCH= GOARM= go mod download -json "${modules[@]}" | awk '
        /^\t"Path": / { path = $0; sub(/^\t"Path": "/, "", path); sub(/",?$/, "", path) }
        /^\t"Version": / { version = $0; sub(/^\t"Version": "/, "", version); sub(/",?$/, "", version) }
        /^\t"Dir": / { dir = $0; sub(/^\t"Dir": "/, "", dir); sub(/",?$/, "", dir) }
        /^\t"Error": / { error = $0; sub(/^\t"Error": "/, "", error); sub(/",?$/, "", error) }
        /^}/ { printf "%s\t%s\t%s\t%s\n", path, version, dir, error; path = version = dir = error = "" }')
    if ((${#missing[@]} > 0)); then
        rm -f "$text"
        die "no licence file (LICENSE*, COPYING*, NOTICE*...) found for these modules compiled into livekit-server; check each by hand and name it in LICENCE_EXCEPTIONS with the reason: ${missing[*]}"
    fi
    ((answered == ${#modules[@]})) ||
        die "go mod download answered for $answered of ${#modules[@]} modules"
    install -m 0644 "$text" "$third_party.tmp"
    rm -f "$text"
    mv "$third_party.tmp" "$third_party"
    log "collected the licences of ${#modules[@]} Go modules into $third_party"
}

if [[ -x $binary ]]; then
    collect_licences
    log "licence files added to the cached $LIVEKIT_VERSION for $target"
    echo "$binary"
    exit 0
fi

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$module_dir" "$work/src"
chmod -R u+w "$work/src"

log "building for $target (GOARCH=$goarch${goarm:+ GOARM=$goarm}); the first build takes minutes"
(cd "$work/src" && go build -trimpath -ldflags='-s -w' -o "$work/livekit-server" ./cmd/server)
install -m 0755 "$work/livekit-server" "$binary.tmp"
mv "$binary.tmp" "$binary"
collect_licences
log "built $LIVEKIT_VERSION for $target in $(($(date +%s) - t0)) s"
echo "$binary"
