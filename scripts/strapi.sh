#!/usr/bin/env bash
# Install the Strapi 5 project that `reelwire bench` runs as its REST peer.
#
# Usage: scripts/strapi.sh install|path
#
#   install  Copy the project template (reelwire/bench/strapi_app) to
#            .local/peers/strapi and run npm there. Skipped when that folder
#            was already installed from a template with the same content.
#   path     Print the folder of the installed project.
#
# The project needs no build step: it is JavaScript, and its config/admin.js
# turns the admin panel off, so `strapi start` runs straight from the sources.
#
# Environment:
#   NPM  npm command to use [npm]

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
TEMPLATE_DIR="$REPO_ROOT/reelwire/bench/strapi_app"
PEER_DIR="$REPO_ROOT/.local/peers/strapi"
INSTALLED_MARKER="$PEER_DIR/.installed"
LOCK_FILE="$REPO_ROOT/.local/peers/strapi.lock"
NPM="${NPM:-npm}"

# Strapi 5.54 needs Node.js 20 or later (the engines field of its package.json).
MIN_NODE_MAJOR=20

say() {
    printf 'strapi: %s\n' "$*"
}

fail() {
    printf 'strapi: %s\n' "$*" >&2
    exit 1
}

usage() {
    printf 'Usage: %s install|path\n' "$0" >&2
}

check_node() {
    local version major
    command -v node >/dev/null 2>&1 || fail "node not found: install Node.js $MIN_NODE_MAJOR or later"
    command -v "$NPM" >/dev/null 2>&1 || fail "$NPM not found: install npm or set NPM"
    version="$(node --version)"
    major="${version#v}"
    major="${major%%.*}"
    if ((major < MIN_NODE_MAJOR)); then
        fail "Node.js $version is too old: Strapi 5 needs $MIN_NODE_MAJOR or later"
    fi
}

# Print one checksum over the relative path and content of every template
# file. A node_modules folder left in the template by a local npm run is not
# part of the template.
template_hash() {
    (
        cd "$TEMPLATE_DIR"
        find . -path ./node_modules -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    ) | sha256sum | cut -d ' ' -f 1
}

# Hold a lock for the whole install so that two benchmark runs starting at
# once do not run npm in the same folder.
take_lock() {
    mkdir -p "$(dirname "$LOCK_FILE")"
    exec 9>"$LOCK_FILE"
    if ! flock -w 1800 9; then
        fail "timed out after 30 min waiting for another scripts/strapi.sh install to finish"
    fi
}

# Replace the project files in PEER_DIR with the template's. node_modules is
# left to npm: npm ci empties it, and npm install changes only what differs.
copy_template() {
    mkdir -p "$PEER_DIR"
    rm -rf "$PEER_DIR/config" "$PEER_DIR/src" "$PEER_DIR/public" "$PEER_DIR/package.json" "$PEER_DIR/package-lock.json"
    tar -C "$TEMPLATE_DIR" --exclude=./node_modules -cf - . | tar -C "$PEER_DIR" -xf -
}

run_npm() {
    local command=install
    if [[ -f "$PEER_DIR/package-lock.json" ]]; then
        command=ci
    fi
    say "running npm $command in $PEER_DIR"
    # better-sqlite3 is compiled from source, because its prebuilt binaries
    # would come from GitHub, not the npm registry. node-gyp compiles against
    # the headers of the installed Node.js where they exist, and otherwise
    # downloads them from nodejs.org.
    local node_prefix nodedir="${npm_config_nodedir:-}"
    node_prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
    if [[ -z "$nodedir" && -f "$node_prefix/include/node/node.h" ]]; then
        nodedir="$node_prefix"
    fi
    (
        cd "$PEER_DIR"
        if [[ -n "$nodedir" ]]; then
            export npm_config_nodedir="$nodedir"
        fi
        npm_config_build_from_source=better-sqlite3 \
            "$NPM" "$command" --no-audit --no-fund --no-update-notifier --loglevel=error
    ) || fail "npm $command failed in $PEER_DIR; see the npm output above"
}

install() {
    check_node
    [[ -f "$TEMPLATE_DIR/package.json" ]] || fail "template not found: $TEMPLATE_DIR/package.json is missing"
    take_lock

    local hash
    hash="$(template_hash)"
    if [[ -f "$INSTALLED_MARKER" && "$(cat "$INSTALLED_MARKER")" == "$hash" && -d "$PEER_DIR/node_modules" ]]; then
        say "already installed in $PEER_DIR (template ${hash:0:12})"
        return
    fi

    local started=$SECONDS
    rm -f "$INSTALLED_MARKER"
    copy_template
    run_npm
    [[ -x "$PEER_DIR/node_modules/.bin/strapi" ]] || fail "npm finished but $PEER_DIR/node_modules/.bin/strapi is missing"
    printf '%s\n' "$hash" >"$INSTALLED_MARKER"
    say "installed in $PEER_DIR in $((SECONDS - started)) s (template ${hash:0:12})"
}

main() {
    if (($# != 1)); then
        usage
        exit 2
    fi
    case "$1" in
        install) install ;;
        path) printf '%s\n' "$PEER_DIR" ;;
        *)
            usage
            exit 2
            ;;
    esac
}

main "$@"
