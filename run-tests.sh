#!/usr/bin/env bash
# Test command: ruff, then pytest. The test run starts and stops its own services: a throwaway
# MariaDB on 127.0.0.1 (real user and password), one Spark local[2] session, and a standalone
# Spark Master + Worker on 127.0.0.1 for the tests marked `cluster`. Extra arguments go to pytest
# (e.g. ./run-tests.sh -k hudi, ./run-tests.sh -m "not cluster").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
if [ ! -x .venv/bin/python ]; then
  echo "run-tests.sh: .venv missing; run ./bootstrap.sh first" >&2
  exit 2
fi
export SPARK_LOCAL_IP=127.0.0.1
export PYTHONUNBUFFERED=1
echo "== ruff check"
.venv/bin/ruff check .
echo "== pytest"
.venv/bin/python -m pytest "$@"
