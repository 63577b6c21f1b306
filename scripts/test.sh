#!/usr/bin/env bash
# Install (scripts/install.sh), then run the test suite: once with the compiled Cython modules, then the
# decoder/codec/envelope tests again on the pure-Python twins (CDC_PURE_PYTHON=1). Extra arguments go to
# pytest (e.g. `bash scripts/test.sh -x -k mysql`). Exit status: non-zero when any run failed.
#
# One sandbox (PostgreSQL, MariaDB, Kafka) serves every pytest run (through CDC_PG_URL, CDC_MYSQL_URL,
# CDC_KAFKA_BOOTSTRAP) and is removed at the end. pytest runs once per test directory: test modules
# import helpers next to them by plain name, and tests/connectors/{postgres,mysql} mirror each other's
# file names, which one pytest process cannot collect together without package __init__ files.
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

# Run pytest once per directory holding matching test files (find arguments select the files).
run_by_directory() {
  local -a files
  local directory status=0
  mapfile -t directories < <(find tests -type f "$@" -printf '%h\n' | sort -u)
  for directory in "${directories[@]}"; do
    mapfile -t files < <(find "$directory" -maxdepth 1 -type f "$@" | sort)
    say "$directory (decoder: $(.venv/bin/python -c 'import cdc; print(cdc.__impl__)' 2>&1 | tail -1))"
    run_pytest "${files[@]}" "${PYTEST_ARGS[@]}" || status=1
  done
  return "$status"
}

PYTEST_ARGS=("$@")
failed=0

if compgen -G "ext/*.pyx" >/dev/null; then
  export CDC_IMPL=cython  # the first pass must exercise the compiled modules: fail loudly if they did not build
fi
run_by_directory -name 'test_*.py' || failed=1
unset CDC_IMPL

export CDC_PURE_PYTHON=1
if [ -n "$(find tests -type f \( -name 'test_*decode*.py' -o -name 'test_codecs*.py' -o -name 'test_envelope*.py' \))" ]; then
  say "decoder/codec/envelope tests again on the pure-Python twins (CDC_PURE_PYTHON=1)"
  run_by_directory \( -name 'test_*decode*.py' -o -name 'test_codecs*.py' -o -name 'test_envelope*.py' \) || failed=1
else
  echo "no decoder/codec/envelope tests yet: skipping the pure-Python pass"
fi
unset CDC_PURE_PYTHON

if [ "$failed" -ne 0 ]; then
  say "FAILED (see the runs above)"
else
  say "all tests passed"
fi
exit "$failed"
