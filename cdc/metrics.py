"""Prometheus metric families of capture, apply, verify and run, and a tiny HTTP server for /metrics and /healthz.

Every family is named `cdc_<part>_...`; labels are `pipeline` (the topic prefix, or a [[verify]] name) and
`table` (`schema.table` / `db.table`) where it makes sense. Labels never carry a URL, a password or a value
from the data: only names the operator chose (prefixes) or catalogs hold (table names).
`cdc run` merges every child's families into its own /metrics (cdc/metrics_merge.py); docs/operations.md
lists them with the alerts of docker/prometheus/alerts.yml.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_ROW_BUCKETS = (1, 10, 50, 100, 500, 1000, 5000, 10000, 50000)

# capture ------------------------------------------------------------------------------------------
EVENTS_CAPTURED = Counter("cdc_events_captured_total", "Change events produced to Kafka", ["pipeline", "table"])
CAPTURE_LAG_SECONDS = Gauge(
    "cdc_capture_lag_seconds", "Source commit time to Kafka acknowledgement of the last acknowledged event",
    ["pipeline"])
CAPTURE_ACKED_POSITION = Gauge(
    "cdc_capture_acked_position", "Last source position acknowledged (PG LSN as a number, MySQL binlog offset)",
    ["pipeline"])
KAFKA_ACK_SECONDS = Histogram(
    "cdc_kafka_ack_seconds", "Records produced up to a poll of the source loop to Kafka acknowledging them all", ["pipeline"],
    buckets=LATENCY_BUCKETS)
SNAPSHOT_ROWS_DONE = Gauge("cdc_snapshot_rows_done", "Rows of the initial snapshot produced", ["pipeline", "table"])
SNAPSHOT_ROWS_ESTIMATED = Gauge(
    "cdc_snapshot_rows_estimated", "Rows the initial snapshot expects (catalog estimate)", ["pipeline", "table"])
CAPTURE_RECONNECTS = Counter("cdc_capture_reconnects_total", "Source connections re-established", ["pipeline"])
# Read by `cdc run` from the source server (connectors/*/status.py), not by the capture itself.
SOURCE_LAG_BYTES = Gauge(
    "cdc_source_lag_bytes", "Source write position minus the position capture confirmed (PG WAL / MySQL binlog)",
    ["pipeline"])
SOURCE_RETAINED_BYTES = Gauge(
    "cdc_source_retained_wal_bytes", "WAL the replication slot keeps on the source server (PostgreSQL)", ["pipeline"])

# apply --------------------------------------------------------------------------------------------
EVENTS_APPLIED = Counter("cdc_events_applied_total", "Change events written to a target", ["pipeline", "table"])
TABLE_PARKED = Gauge("cdc_apply_table_parked", "1 for a table apply parked (--on-error skip-table) and no longer writes",
                     ["pipeline", "table"])
EVENTS_DEAD_LETTERED = Counter("cdc_events_dead_lettered_total", "Events sent to the DLQ", ["pipeline"])
APPLY_LAG_SECONDS = Histogram(
    "cdc_apply_lag_seconds", "Source commit to target commit", ["pipeline"], buckets=LAG_BUCKETS)
APPLY_BATCH_ROWS = Histogram("cdc_apply_batch_rows", "Events per applied batch", ["pipeline"], buckets=BATCH_ROW_BUCKETS)
APPLY_BATCH_SECONDS = Histogram(
    "cdc_apply_batch_seconds", "Time to write one batch and its offsets", ["pipeline"], buckets=LATENCY_BUCKETS)
APPLY_LAST_BATCH = Gauge(
    "cdc_apply_last_batch_timestamp_seconds", "Unix time of the last committed batch", ["pipeline"])

# verify (scheduled, in `cdc run`) ----------------------------------------------------------------
VERIFY_ROWS_CHECKED = Counter("cdc_verify_rows_checked_total", "Rows compared by scheduled checks", ["pipeline", "table"])
VERIFY_RANGES = Counter("cdc_verify_ranges_total", "Key ranges (segments) checksummed by scheduled checks",
                        ["pipeline", "table"])
VERIFY_DIFFERENCES = Gauge(
    "cdc_verify_differences", "Rows different in the last check (in-flight rows not counted)", ["pipeline", "table"])
VERIFY_CONFIRMED = Gauge(
    "cdc_verify_differences_confirmed",
    "Rows different in two checks in a row (the parity alarm: 0 means parity or not yet confirmed)", ["pipeline"])
VERIFY_CHECKS = Counter("cdc_verify_checks_total", "Scheduled checks by result (parity, differences, error)",
                        ["pipeline", "result"])
VERIFY_LAST_CHECK = Gauge(
    "cdc_verify_last_check_timestamp_seconds", "Unix time the last scheduled check ended", ["pipeline"])
VERIFY_LAST_EXIT = Gauge(
    "cdc_verify_last_exit_code", "Result of the last scheduled check: 0 parity, 1 differences, 2 could not check",
    ["pipeline"])
VERIFY_DURATION = Gauge("cdc_verify_duration_seconds", "Duration of the last scheduled check", ["pipeline"])
VERIFY_SINCE_CLEAN = Gauge(
    "cdc_verify_seconds_since_clean_check",
    "Seconds since the last check without differences (since the schedule started, before the first)", ["pipeline"])
VERIFY_FULL_PASSES = Counter(
    "cdc_verify_full_passes_total", "Complete passes over every slice of every table", ["pipeline"])

# run ----------------------------------------------------------------------------------------------
COMPONENT_UP = Gauge("cdc_component_up", "1 when a supervised component runs", ["component"])
COMPONENT_RESTARTS = Counter("cdc_component_restarts_total", "Restarts of a supervised component", ["component"])


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port` -> (host, port); a bare port binds to 127.0.0.1."""
    host, _, port = listen.rpartition(":")
    return host or "127.0.0.1", int(port)


def serve_metrics(listen: str, healthy: Callable[[], tuple[bool, str]] = lambda: (True, "ok"),
                  registry=REGISTRY, routes: dict[str, Callable[[], bytes]] | None = None) -> ThreadingHTTPServer:
    """Serve /metrics (Prometheus text) and /healthz (200 or 503 with a reason) in a daemon thread.

    `routes` adds JSON documents (`/status` of `cdc run`): path -> a function returning the body.
    """
    extra = routes or {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path.startswith("/metrics"):
                body, status, ctype = generate_latest(registry), 200, CONTENT_TYPE_LATEST
            elif path.startswith("/healthz"):
                ok, reason = healthy()
                body, status, ctype = (reason + "\n").encode(), 200 if ok else 503, "text/plain"
            elif path in extra:
                body, status, ctype = extra[path](), 200, "application/json"
            else:
                body, status, ctype = b"see /metrics and /healthz\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(parse_listen(listen), Handler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
