#!/usr/bin/env bash
# The main demo: install (scripts/install.sh), start the sandbox (PostgreSQL, MariaDB, Kafka on free
# 127.0.0.1 ports under .cdc-sandbox/) and show what works (cdc/demo/). Extra arguments go to the demo,
# e.g. `bash scripts/demo.sh --down` to stop the sandbox at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install.sh
exec .venv/bin/python -m cdc.demo "$@"
