#!/bin/sh
# Regenerates the PyTorch reference fixtures in tests/fixtures/ (deterministic:
# re-running gives byte-identical files). Needs Debian's python3-torch, which is
# /usr/bin/python3 (the python3 on PATH may be another interpreter without torch).
set -e
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh bench >&2
PYTHONDONTWRITEBYTECODE=1 exec /usr/bin/python3 tests/fixtures/gen_fixtures.py "$@"
