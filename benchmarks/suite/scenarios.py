"""The scenarios of `benchmarks/run.py`: which scripts each runs, with what sizes, and the figures read from their JSON.

A scenario is one or more script invocations (`Invocation`); each writes its results file and a reader
turns that JSON into `Figure`s (case, tool, metric, value) and `Note`s (a peer that gave no figure, and
why). The scripts stay the source of truth for how something is measured; this module only knows their
arguments and their output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.suite.figures import Figure, Note

Reading = tuple[list[Figure], list[Note]]

# Lag counts as bounded at a load when p99 stayed short and the target caught up soon after the writer
# stopped: a backlog that grows with time shows as a long catch-up.
BOUNDED_MAX_CATCH_UP_S = 2.0
BOUNDED_MAX_P99_S = 2.0


@dataclass(frozen=True)
class Invocation:
    """One run of one script: its arguments, the prefix of the results file it writes, and its reader."""

    script: str
    args: tuple[str, ...]
    prefix: str
    read: Callable[[dict], Reading]


@dataclass(frozen=True)
class Scenario:
    """A named benchmark: its invocations at the quick or full size, and how its figures are shown."""

    name: str
    title: str
    invocations: Callable[[bool], list[Invocation]]
    chart_metric: str
    ours: tuple[str, ...]
    conclude: Callable[[list[dict]], list[Figure]] | None = None
    needs: tuple[str, ...] = field(default=())
    # with --quick, read these scenarios' results files (when they ran) instead of running scripts of its own
    quick_from: tuple[str, ...] = field(default=())
    # README: the metrics shown (the chart metric when empty) and the cases, by the start of their names
    # (the first few when empty)
    headline_metrics: tuple[str, ...] = field(default=())
    headline_cases: tuple[str, ...] = field(default=())


# --- readers ---------------------------------------------------------------------------------------------

def read_decode_envelope(data: dict) -> Reading:
    """bench_decode_envelope.py: events/s per implementation and path (`row_records`, `records`)."""
    figures = [Figure(f"PG decode + envelope ({path})", impl, "events/s", "events/s", out["events_per_s"])
               for impl, paths in data["results"].items() for path, out in paths.items()]
    return figures, []


def read_pg_decode(data: dict) -> Reading:
    """bench_pg_decode.py: pgoutput decode and decode + envelope, text and binary, Cython vs twin."""
    figures = []
    for section, label in (("decode", "pgoutput decode"), ("pipeline", "pgoutput decode + envelope")):
        for variant, out in data[section].items():
            impl, _, fmt = variant.partition("-")
            figures.append(Figure(f"{label} ({fmt})", impl, "events/s", "events/s", out["events_per_s"]))
    return figures, []


def read_mysql_decode(data: dict) -> Reading:
    """bench_mysql_decode.py: binlog rows decoded per second, replayed and streamed, against mysql-replication."""
    figures = [Figure("binlog rows decode (replay)", impl, "events/s", "events/s", out["rows_per_s"])
               for impl, out in data["replay"].items()]
    figures += [Figure("binlog rows streamed from MariaDB", impl.replace("ours-", ""), "events/s", "events/s",
                       out["rows_per_s"]) for impl, out in data.get("streaming", {}).items()]
    return figures, []


def read_pg_e2e(data: dict) -> Reading:
    """bench_pg_e2e.py: rows/s of cdc capture, pg_recvlogical and Debezium per load shape."""
    figures, notes = [], []
    for run in data["runs"]:
        case = run["description"]
        ours = run["cdc"]
        figures += [Figure(case, "cdc capture", "rows/s", "rows/s", ours["rows_per_s"]),
                    Figure(case, "cdc capture", "peak RSS", "MB", ours["peak_rss_mb"]),
                    Figure(case, "cdc capture, from START_REPLICATION", "rows/s", "rows/s", ours["stream_rows_per_s"]),
                    Figure(case, "pg_recvlogical", "rows/s", "rows/s", run["pg_recvlogical"]["rows_per_s"])]
        debezium = run.get("debezium") or {}
        if "rows_per_s" in debezium:
            figures.append(Figure(case, "Debezium 3.6", "rows/s", "rows/s", debezium["rows_per_s"]))
        else:
            notes.append(Note(case, "Debezium 3.6", debezium.get("skipped", "not run")))
    return figures, notes


def read_mysql_e2e(data: dict) -> Reading:
    """bench_mysql_e2e.py: rows/s of cdc capture (and without Kafka) and Debezium on one binlog backlog."""
    case = f"one transaction of {data['rows']:,} rows"
    ours = data["cdc"]
    figures = [Figure(case, "cdc capture", "rows/s", "rows/s", ours["rows_per_second"]),
               Figure(case, "cdc capture", "peak RSS", "MB", ours["peak_rss_mb"])]
    if data.get("cdc_without_kafka"):
        figures.append(Figure(case, "cdc, without Kafka", "rows/s", "rows/s",
                              data["cdc_without_kafka"]["rows_per_second"]))
    debezium = data.get("debezium") or {}
    if "rows_per_second" in debezium:
        figures.append(Figure(case, "Debezium 3.6", "rows/s", "rows/s", debezium["rows_per_second"]))
        return figures, []
    return figures, [Note(case, "Debezium 3.6", debezium.get("skipped", "not run"))]


def read_peak_rss(data: dict) -> Reading:
    """The capture's peak RSS through one big transaction, from either end-to-end script."""
    figures, notes = (read_pg_e2e if "runs" in data else read_mysql_e2e)(data)
    engine = "PostgreSQL" if "runs" in data else "MariaDB"
    return [Figure(f"{engine}: {figure.case}", figure.tool, figure.metric, figure.unit, figure.value)
            for figure in figures if figure.metric == "peak RSS"], []


def read_apply(data: dict) -> Reading:
    """bench_apply.py: rows/s into each target, batched (with and without overlap) vs one statement per row."""
    figures = []
    for out in data["results"]:
        case = f"into {'PostgreSQL' if out['target'] == 'postgresql' else 'MariaDB'}"
        figures += [Figure(case, "cdc apply (batched)", "rows/s", "rows/s", out["batched_rows_per_s"]),
                    Figure(case, "batched, no overlap", "rows/s", "rows/s", out["batched_no_overlap_rows_per_s"]),
                    Figure(case, "one statement per row", "rows/s", "rows/s", out["per_row_rows_per_s"])]
    return figures, []


def read_lag(data: dict) -> Reading:
    """bench_lag.py: lag p50/p99 of one load level, per target."""
    rate = data["workload"]["rate"]
    figures = []
    for out in data["results"]:
        case = f"{rate:,} changes/s -> {_engine(out['target'])}"
        figures += [Figure(case, "cdc", "lag p50", "s", out["lag_p50_s"]),
                    Figure(case, "cdc", "lag p99", "s", out["lag_p99_s"]),
                    Figure(case, "cdc", "changes/s", "changes/s", out["achieved_changes_per_s"]),
                    Figure(case, "cdc", "catch-up", "s", out["catch_up_after_writer_s"])]
    return figures, []


def highest_bounded_load(payloads: list[dict]) -> list[Figure]:
    """Per target, the highest load of this run (changes/s the writer reached) whose lag stayed bounded.

    The writer's achieved rate counts, not the rate asked: on a small machine the writer itself cannot
    reach the highest rates, and what the pipeline kept up with is the load it was given (0: none).
    """
    best: dict[str, float] = {}
    for data in payloads:
        for out in data["results"]:
            target = _engine(out["target"])
            best.setdefault(target, 0)
            if is_bounded(out):
                best[target] = max(best[target], out["achieved_changes_per_s"])
    return [Figure(f"highest load with bounded lag -> {target}", "cdc", "highest bounded load", "changes/s", rate)
            for target, rate in best.items()]


def is_bounded(out: dict) -> bool:
    """p99 stayed under 2 s and the target caught up within 2 s of the writer stopping."""
    return out["lag_p99_s"] <= BOUNDED_MAX_P99_S and out.get("catch_up_after_writer_s", 0.0) <= BOUNDED_MAX_CATCH_UP_S


def read_incremental(data: dict) -> Reading:
    """bench_incremental.py: incremental snapshot rows/s idle and under a writer, and streaming lag meanwhile."""
    figures = []
    for engine in ("pg", "mysql"):
        if engine not in data:
            continue
        name = _engine(engine)
        idle, loaded = data[engine]["idle"], data[engine]["under_load"]
        figures.append(Figure(f"{name}, idle", "cdc snapshot", "rows/s", "rows/s", idle["rows_per_s"]))
        case = f"{name}, writer at {data['rate']:,} changes/s"
        figures += [Figure(case, "cdc snapshot", "rows/s", "rows/s", loaded["rows_per_s"]),
                    Figure(case, "cdc snapshot", "lag p50", "s", loaded["lag_p50_s"]),
                    Figure(case, "cdc snapshot", "lag p99", "s", loaded["lag_p99_s"])]
    return figures, []


def read_tool_table(data: dict) -> Reading:
    """A `{"results": {case: {tool: {seconds, rows_per_s} | {error}}}}` file (bench_copy.py)."""
    figures, notes = [], []
    for case, tools in data["results"].items():
        for tool, out in tools.items():
            tool = tool.replace("_", " ") if tool.startswith("cdc") else tool
            if not isinstance(out, dict) or "error" in out or "skipped" in out or "seconds" not in out:
                reason = out.get("error") or out.get("skipped") if isinstance(out, dict) else str(out)
                notes.append(Note(case, tool, str(reason or "no figure")))
                continue
            figures.append(Figure(case, tool, "time", "s", out["seconds"]))
            if out.get("rows_per_s"):
                figures.append(Figure(case, tool, "rows/s", "rows/s", out["rows_per_s"]))
    return figures, notes


def read_verify(data: dict) -> Reading:
    """bench_verify_realistic.py: cdc verify vs reladiff per engine pair on the 13-column table."""
    figures, notes = [], []
    for entry in data["results"]:
        case = f"{entry['case']}, {entry['rows']:,} rows"
        ours = entry["cdc_verify"]
        figures += [Figure(case, "cdc verify", "rows/s", "rows/s", ours["rows_per_s"]),
                    Figure(case, "cdc verify", "time", "s", ours["seconds"]),
                    Figure(case, "cdc verify", "peak RSS", "MB", ours["peak_rss_mb"]),
                    Figure(case, "cdc verify", "differences found", f"of {entry['seeded_differences']}",
                           ours["differences"])]
        peer = entry.get("reladiff") or {}
        if peer.get("complete") is False:
            notes.append(Note(case, "reladiff", f"its run was incomplete: {peer.get('error', 'no reason given')}"))
        elif peer.get("seconds"):
            figures += [Figure(case, "reladiff", "time", "s", peer["seconds"]),
                        Figure(case, "reladiff", "rows/s", "rows/s", round(entry["rows"] / peer["seconds"]))]
        else:
            notes.append(Note(case, "reladiff", peer.get("error") or peer.get("skipped") or "not run"))
    return figures, notes


def _engine(name: str) -> str:
    """The engine's display name from the spellings the scripts use."""
    return {"pg": "PostgreSQL", "postgresql": "PostgreSQL", "mysql": "MariaDB", "mariadb": "MariaDB"}.get(name, name)


# --- the scenarios -----------------------------------------------------------------------------------------

LAG_RATES_QUICK = (1000, 5000, 20000)
LAG_RATES_FULL = (1000, 5000, 20000)  # the loads the issue names; 2k and 10k added 40% to a full run


def _decode(quick: bool) -> list[Invocation]:
    events = ("--events", "100000", "--twin-events", "10000") if quick else ()
    return [Invocation("bench_decode_envelope.py", (*events, "--repeat", "1"), "decode-envelope-", read_decode_envelope),
            Invocation("bench_pg_decode.py", (*events, "--repeat", "1"), "pg-decode-", read_pg_decode),
            Invocation("bench_mysql_decode.py", ("--rows", "20000" if quick else "100000", "--repeat", "1"),
                       "mysql-decode-", read_mysql_decode)]


def _pg_kafka(quick: bool) -> list[Invocation]:
    sizes = ("--shapes", "big", "--rows", "50000") if quick else ()
    return [Invocation("bench_pg_e2e.py", sizes, "pg-e2e-", read_pg_e2e)]


def _mysql_kafka(quick: bool) -> list[Invocation]:
    return [Invocation("bench_mysql_e2e.py", ("--rows", "50000" if quick else "1000000"), "mysql-e2e-",
                       read_mysql_e2e)]


def _snapshot(quick: bool) -> list[Invocation]:
    args = ("--engines", "pg", "--rows", "40000", "--rate", "1000", "--chunk-rows", "10000") if quick else ()
    return [Invocation("bench_incremental.py", args, "incremental-", read_incremental)]


def read_kafka_copy(data: dict) -> Reading:
    """bench_kafka_snapshot.py: `{"results": {pair: {seconds, rows_per_s, time_to_first_assignment_s, ...}}}`
    for this tree; with `--tree NAME=PATH` runs, `{pair: {tree: {...}}}`, one tool per tree."""
    figures, notes = [], []
    for case, out in data["results"].items():
        runs = {"cdc (capture -> Kafka -> apply)": out} if "seconds" in out or "error" in out else out
        for tool, run in runs.items():
            if "seconds" not in run:
                notes.append(Note(case, tool, str(run.get("error") or "no figure")))
                continue
            figures += [Figure(case, tool, "time", "s", run["seconds"]),
                        Figure(case, tool, "rows/s", "rows/s", run["rows_per_s"])]
            if run.get("time_to_first_assignment_s") is not None:
                figures.append(Figure(case, tool, "first assignment", "s", run["time_to_first_assignment_s"]))
            if run.get("apply_peak_rss_mb") is not None:
                figures.append(Figure(case, tool, "apply peak RSS", "MB", run["apply_peak_rss_mb"]))
    return figures, notes


def _kafka_copy(quick: bool) -> list[Invocation]:
    return [Invocation("bench_kafka_snapshot.py", ("--rows", "100000" if quick else "1000000"), "kafka-snapshot-",
                       read_kafka_copy)]


def _copy(quick: bool) -> list[Invocation]:
    return [Invocation("bench_copy.py", ("--rows", "200000" if quick else "1000000"), "copy-", read_tool_table)]


def _apply(quick: bool) -> list[Invocation]:
    args = ("--events", "20000", "--baseline-events", "2000", "--preload", "10000") if quick else ()
    return [Invocation("bench_apply.py", args, "apply-", read_apply)]


def _verify(quick: bool) -> list[Invocation]:
    return [Invocation("bench_verify_realistic.py", ("--rows", "200000" if quick else "1000000"), "verify-realistic-",
                       read_verify)]


def _lag(quick: bool) -> list[Invocation]:
    rates = LAG_RATES_QUICK if quick else LAG_RATES_FULL
    extra = ("--targets", "pg", "--seconds", "2", "--preload", "2000") if quick else ("--seconds", "30")
    return [Invocation("bench_lag.py", ("--rate", str(rate), *extra), "lag-", read_lag) for rate in rates]


def _peak_rss(quick: bool) -> list[Invocation]:
    rows = "50000" if quick else "1000000"
    return [Invocation("bench_pg_e2e.py", ("--shapes", "big", "--rows", rows, "--no-debezium"), "pg-e2e-",
                       read_peak_rss),
            Invocation("bench_mysql_e2e.py", ("--rows", rows, "--no-debezium"), "mysql-e2e-", read_peak_rss)]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("decode", "Decode, compiled vs pure-Python twin", _decode, "events/s", ("cython",),
             headline_cases=("PG decode + envelope (row_records)", "pgoutput decode (text)",
                             "binlog rows decode (replay)", "binlog rows streamed")),
    Scenario("pg-kafka", "PostgreSQL -> Kafka", _pg_kafka, "rows/s", ("cdc capture",)),
    Scenario("mysql-kafka", "MariaDB -> Kafka", _mysql_kafka, "rows/s", ("cdc capture",)),
    Scenario("snapshot", "Incremental snapshot while streaming", _snapshot, "rows/s", ("cdc snapshot",)),
    Scenario("kafka-copy", "Initial copy through Kafka", _kafka_copy, "rows/s", ("cdc (capture -> Kafka -> apply)",),
             needs=("bench_kafka_snapshot.py",)),
    Scenario("copy", "Initial copy per engine pair", _copy, "rows/s", ("cdc copy",)),
    Scenario("apply", "Apply into the target", _apply, "rows/s", ("cdc apply (batched)",)),
    Scenario("verify", "Verify on the realistic 13-column table", _verify, "rows/s", ("cdc verify",)),
    Scenario("lag", "End-to-end lag (PostgreSQL -> Kafka -> target)", _lag, "lag p99", ("cdc",),
             conclude=highest_bounded_load, headline_metrics=("lag p99", "highest bounded load")),
    Scenario("rss", "Peak RSS of the capture through one big transaction", _peak_rss, "peak RSS", ("cdc capture",),
             quick_from=("pg-kafka", "mysql-kafka")),
)


def by_name(names: str | None) -> list[Scenario]:
    """The scenarios named in a comma-separated list (all when empty), in the suite's order."""
    if not names:
        return list(SCENARIOS)
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    unknown = wanted - {scenario.name for scenario in SCENARIOS}
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(s.name for s in SCENARIOS)}")
    return [scenario for scenario in SCENARIOS if scenario.name in wanted]
