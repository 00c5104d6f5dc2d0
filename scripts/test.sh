#!/usr/bin/env bash
# Install everything the tests need (see scripts/install.sh --dev), then run the whole suite.
#   bash scripts/test.sh [PYTEST ARGS...]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
bash "$REPO/scripts/install.sh" --dev
VENV=${CARDIOPLAN_VENV:-$REPO/.venv}
cd "$REPO"
"$VENV/bin/ruff" check .
exec "$VENV/bin/python" -m pytest "$@"
