"""The demo behind `scripts/demo.sh`: the only place in `cdc/` besides `cdc/registry.py` that names both engines.

    steps.py     the demo's steps (servers answer, replication both ways, parity) and `main`
    chain.py     the main act: `cdc run` replicating PostgreSQL -> MariaDB and MariaDB -> PostgreSQL
    drill_act.py the drill act inside it: SIGKILL the captures mid-load; they resume, nothing is lost
    workload.py  the demo's data: a shop on PostgreSQL, an inventory on MariaDB, a mixed write load
    __main__.py  `python -m cdc.demo [--dir DIR] [--down]`
"""

from __future__ import annotations

from cdc.demo.steps import STEPS, Step, main

__all__ = ["STEPS", "Step", "main"]
