#!/usr/bin/env bash
# The whole suite, once per backend pair: embedded (SQLite + filesystem broker) and
# real services (PostgreSQL + Redis). Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
status=0
for combo in "sqlite filesystem" "postgresql redis"; do
  read -r db broker <<<"$combo"
  echo "=== suite on database=$db broker=$broker"
  FANOUT_TEST_DB=$db FANOUT_TEST_BROKER=$broker "$PY" -m pytest -q -p no:cacheprovider "$@" || status=1
done
exit $status
