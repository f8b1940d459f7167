#!/usr/bin/env bash
# Builds the real livekit-server, at one pinned version, from its Go module and prints the
# binary's path on stdout (everything else goes to stderr).
#
#   scripts/build-livekit.sh [host|aarch64|armv7]      (default: host)
#
# The binary is cached outside the checkout, keyed by version and target:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/roost/livekit/<version>/<target>/livekit-server
# so a second run only prints the path. ROOST_LIVEKIT_CACHE moves that root. LiveKit's LICENSE
# and NOTICE (Apache-2.0, from the same module source) are kept beside it: the Debian package
# ships them with the binary (scripts/build-deb.sh). A cache made before they were kept gets
# them added from the module download, without a rebuild.
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
# What a finished cache entry holds: the binary and the licence files that go with it.
complete() { [[ -x $binary && -f $out_dir/LICENSE && -f $out_dir/NOTICE ]]; }
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
if [[ -x $binary ]]; then
    log "added LICENSE and NOTICE to the cached $LIVEKIT_VERSION for $target"
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
log "built $LIVEKIT_VERSION for $target in $(($(date +%s) - t0)) s"
echo "$binary"
