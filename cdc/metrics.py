"""Prometheus metrics shared by capture, apply and run, and a tiny HTTP server for /metrics and /healthz."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

EVENTS_CAPTURED = Counter("cdc_events_captured_total", "Change events produced to Kafka", ["prefix", "table"])
EVENTS_APPLIED = Counter("cdc_events_applied_total", "Change events written to a target", ["prefix", "table"])
EVENTS_DEAD_LETTERED = Counter("cdc_events_dead_lettered_total", "Events sent to the DLQ", ["prefix"])
SOURCE_LAG_SECONDS = Gauge("cdc_source_lag_seconds", "Now minus the commit time of the last captured event", ["prefix"])
APPLY_LAG_SECONDS = Histogram(
    "cdc_apply_lag_seconds",
    "Source commit to target commit",
    ["prefix"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ACKED_POSITION = Gauge("cdc_acked_position", "Last source position acknowledged (PG LSN as a number)", ["prefix"])
COMPONENT_UP = Gauge("cdc_component_up", "1 when a supervised component runs", ["component"])
COMPONENT_RESTARTS = Counter("cdc_component_restarts_total", "Restarts of a supervised component", ["component"])


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port` -> (host, port); a bare port binds to 127.0.0.1."""
    host, _, port = listen.rpartition(":")
    return host or "127.0.0.1", int(port)


def serve_metrics(listen: str, healthy: Callable[[], tuple[bool, str]] = lambda: (True, "ok")) -> ThreadingHTTPServer:
    """Serve /metrics (Prometheus text) and /healthz (200 or 503 with a reason) in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path.startswith("/metrics"):
                body, status, ctype = generate_latest(), 200, CONTENT_TYPE_LATEST
            elif self.path.startswith("/healthz"):
                ok, reason = healthy()
                body, status, ctype = (reason + "\n").encode(), 200 if ok else 503, "text/plain"
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
