#!/usr/bin/env bash
# Run the whole test suite: unit tests and integration tests against real
# Redis, Kafka, Cassandra and Ray. Installs what is missing, the benchmark's
# peers included, and starts the services first; leaves them running for the
# next run.
#
# Usage: scripts/test.sh [pytest options, e.g. tests/unit or -k flow]

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

bash "$SCRIPT_DIR/bootstrap.sh" --with-peers
bash "$SCRIPT_DIR/services.sh" start

cd "$REPO_ROOT"
status=0
"$REPO_ROOT/.venv/bin/python" -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test: pytest collected no tests; that counts as a failure" >&2
    exit 1
fi
exit "$status"
