#!/usr/bin/env bash
# Install everything Reelwire needs that this machine lacks: a JDK and Maven
# from Debian if absent, the Python virtual environment in .venv with the
# project and its test and benchmark extras, and the service jars and Redis
# (through scripts/services.sh install). Every step is skipped when done.
#
# Usage: scripts/bootstrap.sh [--with-peers]
#   --with-peers  also build Centrifugo and install Strapi, the benchmark's
#                 peers (scripts/centrifugo.sh and scripts/strapi.sh), which
#                 takes about 4 minutes on a fresh 2-core machine.
# Environment: PYTHON [python3], the interpreter (3.11 or newer) for .venv.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
VENV="$REPO_ROOT/.venv"
PYTHON="${PYTHON:-python3}"
MARKER="$VENV/.reelwire-installed"

say() { printf 'bootstrap: %s\n' "$*"; }

apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        say "missing Debian packages: $*; run 'sudo apt-get install -y $*' and try again" >&2
        exit 1
    fi
    say "installing Debian packages: $*"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "$PYTHON is missing or older than 3.11; set PYTHON to a Python 3.11+ interpreter" >&2
    exit 1
fi

# The marker stores a hash of pyproject.toml, so a change of dependencies reinstalls.
wanted="$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$MARKER" 2>/dev/null)" != "$wanted" ]; then
    say "installing Reelwire and its dependencies into $VENV (first run takes about a minute)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$REPO_ROOT[test,bench]"
    printf '%s\n' "$wanted" > "$MARKER"
else
    say "Python environment is up to date"
fi

bash "$SCRIPT_DIR/services.sh" install

if [ "${1:-}" = "--with-peers" ]; then
    bash "$SCRIPT_DIR/centrifugo.sh" install
    bash "$SCRIPT_DIR/strapi.sh" install
fi
