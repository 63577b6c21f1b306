"""Network faults between cdc and its databases, through the drill's TCP proxies: reset, blackhole, latency."""

from __future__ import annotations

import threading
import time

from cdc.drill.faults.base import SERVERS, DrillTarget, Fault


def reset(target: DrillTarget) -> str:
    count = sum(proxy.reset() for proxy in target.proxies)
    return f"reset {count} connection(s) through {len(target.proxies)} proxies"


def blackhole(target: DrillTarget) -> str:
    seconds = target.timings.blackhole_seconds
    threads = [threading.Thread(target=proxy.blackhole, args=(seconds,)) for proxy in target.proxies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return f"no byte moved for {seconds:.0f}s on {len(target.proxies)} proxies"


def latency(target: DrillTarget) -> str:
    timings = target.timings
    for proxy in target.proxies:
        proxy.latency = timings.latency_seconds
    try:
        time.sleep(timings.latency_for)
    finally:
        for proxy in target.proxies:
            proxy.latency = 0.0
    return f"{timings.latency_seconds * 1000:.0f} ms added to every chunk for {timings.latency_for:.0f}s"


RESET = Fault("net-reset", "TCP reset of every cdc connection to the databases", SERVERS, reset)
BLACKHOLE = Fault("net-blackhole", "no byte moves between cdc and the databases for a while", SERVERS, blackhole)
LATENCY = Fault("net-latency", "added latency between cdc and the databases", SERVERS, latency)
