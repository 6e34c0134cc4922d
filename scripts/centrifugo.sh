#!/usr/bin/env bash
# Build the Centrifugo server that `reelwire bench` runs as a fan-out peer.
#
# Usage: scripts/centrifugo.sh install|path
#
#   install  Build Centrifugo from the Go module proxy with `go install` into
#            .local/peers/bin/centrifugo. Skipped when that binary already
#            reports the pinned module version.
#   path     Print the path of the binary, whether or not it is built yet.
#
# The Go module and build caches live under .local/peers/go, so a build leaves
# nothing in the repository's tracked files or in the user's default Go paths.
#
# Environment (defaults in brackets):
#   REELWIRE_CENTRIFUGO_VERSION [v6.9.1]  module version of github.com/centrifugal/centrifugo/v6
#   GO                          [go]      Go command to build with (Go 1.26 or newer, as
#                                         the go.mod of Centrifugo v6.9.1 requires)

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

PEERS_DIR="$REPO_ROOT/.local/peers"
BIN_DIR="$PEERS_DIR/bin"
GO_DIR="$PEERS_DIR/go"
BINARY="$BIN_DIR/centrifugo"
LOCK_FILE="$PEERS_DIR/centrifugo.lock"

MODULE="github.com/centrifugal/centrifugo/v6"
VERSION="${REELWIRE_CENTRIFUGO_VERSION:-v6.9.1}"
GO_COMMAND="${GO:-go}"

say() {
    printf 'centrifugo: %s\n' "$*"
}

fail() {
    printf 'centrifugo: %s\n' "$*" >&2
    exit 1
}

usage() {
    printf 'Usage: %s install|path\n' "$0" >&2
}

# Print the module version recorded in the binary's build information, or
# nothing when the binary is missing or was not built by `go install`.
built_version() {
    [[ -x "$BINARY" ]] || return 0
    "$GO_COMMAND" version -m "$BINARY" 2>/dev/null | awk -v module="$MODULE" '$1 == "mod" && $2 == module { print $3 }'
}

command_install() {
    if [[ ! "$VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
        fail "invalid REELWIRE_CENTRIFUGO_VERSION '$VERSION': expected a release tag such as v6.9.1"
    fi
    if ! command -v "$GO_COMMAND" >/dev/null 2>&1; then
        fail "Go not found as '$GO_COMMAND': install Go 1.26 or newer, or set GO to its path"
    fi

    mkdir -p "$BIN_DIR" "$GO_DIR"
    # Two benchmark runs may start at once, so only one of them builds.
    exec 9>"$LOCK_FILE"
    flock 9

    local found
    found="$(built_version)"
    if [[ "$found" == "$VERSION" ]]; then
        say "$BINARY is already built at $VERSION"
        return
    fi
    if [[ -n "$found" ]]; then
        say "$BINARY is at $found; rebuilding at $VERSION"
    fi

    say "building $MODULE@$VERSION with $("$GO_COMMAND" env GOVERSION); the first build takes minutes"
    local started=$SECONDS
    # CGO is off so the binary does not depend on a C toolchain being present.
    # Release builds of Centrifugo set build.Version at link time, and without
    # it the server reports 0.0.0 and logs a development-build warning.
    GOBIN="$BIN_DIR" \
        GOPATH="$GO_DIR" \
        GOMODCACHE="$GO_DIR/mod" \
        GOCACHE="$GO_DIR/cache" \
        CGO_ENABLED=0 \
        "$GO_COMMAND" install -ldflags "-X $MODULE/internal/build.Version=${VERSION#v}" "$MODULE@$VERSION" 9>&- ||
        fail "go install $MODULE@$VERSION failed; see the go output above"

    found="$(built_version)"
    if [[ "$found" != "$VERSION" ]]; then
        fail "built $BINARY, but it reports module version '${found:-none}' instead of $VERSION"
    fi
    say "built $BINARY at $VERSION in $((SECONDS - started)) s"
}

main() {
    if (($# != 1)); then
        usage
        exit 2
    fi
    case "$1" in
        install)
            command_install
            ;;
        path)
            printf '%s\n' "$BINARY"
            ;;
        -h | --help | help)
            usage
            ;;
        *)
            printf "centrifugo: unknown command '%s'\n" "$1" >&2
            usage
            exit 2
            ;;
    esac
}

main "$@"
