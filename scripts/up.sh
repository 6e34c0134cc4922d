#!/usr/bin/env bash
# Run Reelwire on this machine: install what is missing, start Redis, Kafka and
# Cassandra, then run Ray, the actors, the Kafka consumers and the gateway, with
# a small demo data set, until Ctrl-C.
#
# Usage: scripts/up.sh [reelwire up options, e.g. --no-seed or --port 8001]
#
# Services that this script started are stopped again on exit; services that
# were already running are left running. Set REELWIRE_KEEP_SERVICES=1 to keep them.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

bash "$SCRIPT_DIR/bootstrap.sh"

already_running=0
if bash "$SCRIPT_DIR/services.sh" status >/dev/null 2>&1; then
    already_running=1
fi
bash "$SCRIPT_DIR/services.sh" start

stop_services() {
    if [ "$already_running" -eq 0 ] && [ "${REELWIRE_KEEP_SERVICES:-0}" != "1" ]; then
        bash "$SCRIPT_DIR/services.sh" stop
    fi
}
trap stop_services EXIT

# Ctrl-C reaches the whole foreground process group; reelwire handles it and
# shuts down, then the trap above stops the services.
"$REPO_ROOT/.venv/bin/reelwire" up "$@" || status=$?
exit "${status:-0}"
