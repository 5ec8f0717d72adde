"""`make bench`: the figures issue #7 asks for, at 10k, 100k and 1M orders, in one table.

For each size it seeds a database of its own (``quartermaster_bench``, made afresh),
then measures what decides whether the read side scales: the refresh work of one
write and a full base rebuild per view, POST /api/allocate latency in sync and async
mode, the read endpoints' requests/s under granian (wrk) against the same queries
straight through pgbench (the physical limit), and the read-your-writes wait under a
steady write rate. It prints the machine and one markdown table with each target's
PASS/FAIL beside its figures, and writes everything to bench/results.json. It never
fails on a figure: the numbers are for people to read.

Environment: BENCH_SIZES (default 10000,100000,1000000), BENCH_QUICK=1 (10k and 100k
only), BENCH_SECONDS (default 10: each wrk and pgbench run), BENCH_WRITES (default 200:
allocates timed per mode).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench import peer
from bench.harness import (
    PROJECT,
    Client,
    create_session,
    create_token_user,
    fresh_database_url,
    start_server,
)
from config.server import environment as server_environment
from tests.processes import free_port, manage, start_watcher, stop
from tests.waiting import wait_until

DATABASE = "quartermaster_bench"
BENCH_DIR = PROJECT / "bench"
RESULTS = BENCH_DIR / "results.json"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
MISSING = "-"  # a figure not measured
PEER_NOT_BUILT = "peer not built"  # without COSMIC_PEER (bench/peer.py)
CLIENTS = 16  # concurrent clients of wrk and pgbench
REFRESH_WRITES = 20  # writes whose refresh work is measured, per size
# Steady write rates (writes/s) at which the read-your-writes wait and the watcher's
# cost are measured, each for RYW_SECONDS.
FRESHNESS_RATES = (20, 200)
RYW_SECONDS = 12.0
RYW_TIMEOUT = 10.0  # seconds a read-your-writes GET may take before it counts as timed out
WARM_UP_WRITES = 5
# Staff pages measured with wrk and a browser session: the orders list, an order, stock.
STAFF_PAGES = ("/orders/", "/orders/DEMO-0000001/", "/stock/")
# Allocates from 16 clients before one-at-a-time allocates are timed again.
SUSTAINED_WRITES = 20_000


# --- pure helpers -------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` (0 to 1) percentile of ``values``, interpolated between the two
    nearest ranks (numpy's default), so that p50 of an even count is the mean of the
    middle two."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def bench_sizes(environ: Mapping[str, str]) -> list[int]:
    """The order counts to run: BENCH_SIZES (comma-separated), else 10k and 100k with
    BENCH_QUICK, else 10k, 100k and 1M."""
    if environ.get("BENCH_SIZES", "").strip():
        sizes = [int(size.replace("_", "")) for size in environ["BENCH_SIZES"].split(",") if size]
        if any(size <= 0 for size in sizes):
            raise ValueError("BENCH_SIZES: order counts must be positive")
        return sorted(set(sizes))
    if environ.get("BENCH_QUICK", "") not in ("", "0"):
        return list(QUICK_SIZES)
    return list(DEFAULT_SIZES)


def size_label(orders: int) -> str:
    """10000 → 10k, 1000000 → 1M (as the issue names the sizes)."""
    for unit, suffix in ((1_000_000, "M"), (1000, "k")):
        if orders >= unit and orders % unit == 0:
            return f"{orders // unit}{suffix}"
    return str(orders)


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, non-2xx/3xx answers, socket errors and the latency percentiles
    (``--latency``) from wrk's report."""
    figures: dict[str, float] = {}
    found = re.search(r"Requests/sec:\s*([\d.]+)", output)
    if found is None:
        raise ValueError(f"no Requests/sec in wrk's output:\n{output}")
    figures["requests_per_second"] = float(found.group(1))
    found = re.search(r"(\d+) requests in", output)
    figures["requests"] = float(found.group(1)) if found else 0.0
    found = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    figures["non_2xx"] = float(found.group(1)) if found else 0.0
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    figures["socket_errors"] = float(sum(map(int, errors.groups()))) if errors else 0.0
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
    for percent, value, unit in re.findall(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M):
        figures[f"latency_p{percent}_ms"] = float(value) * scale[unit]
    return figures


def parse_pgbench(output: str) -> float:
    """Transactions per second from pgbench's report (without connection time)."""
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    if found is None:
        raise ValueError(f"no tps in pgbench's output:\n{output}")
    return float(found.group(1))


def latency_summary(milliseconds: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(milliseconds, 0.5),
        "p99_ms": percentile(milliseconds, 0.99),
        "count": len(milliseconds),
    }


# --- targets ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A figure the issue sets a bound on; ``check`` answers (passed, measured text)
    for one size, or None where the target does not apply to that size."""

    row: str
    text: str
    check: Callable[[int, Mapping[int, dict]], bool | None]


def _dig(result: Mapping, *keys: str) -> float | None:
    for key in keys:
        if not isinstance(result, Mapping) or result.get(key) is None:
            return None
        result = result[key]
    return result  # type: ignore[return-value]


def _seed_target(size: int, results: Mapping[int, dict]) -> bool | None:
    seconds = _dig(results[size], "seed_seconds")
    return None if size < 1_000_000 or seconds is None else seconds <= 60


def _refresh_target(size: int, results: Mapping[int, dict]) -> bool | None:
    total = _dig(results[size], "refresh_work", "total_ms_p50")
    return None if size < 1_000_000 or total is None else total <= 100


def _sync_latency_target(size: int, results: Mapping[int, dict]) -> bool | None:
    baseline = _dig(results.get(10_000, {}), "allocate", "sync", "p50_ms")
    latency = _dig(results[size], "allocate", "sync", "p50_ms")
    if size == 10_000 or baseline is None or latency is None:
        return None
    return latency <= 2 * baseline


def _ryw_target(size: int, results: Mapping[int, dict]) -> bool | None:
    wait = _dig(results[size], "freshness", "200", "p99_ms")
    return None if wait is None else wait <= 250


def _sustained_target(size: int, results: Mapping[int, dict]) -> bool | None:
    first = _dig(results[size], "allocate", "async", "p50_ms")
    after = _dig(results[size], "allocate", "async_after", "p50_ms")
    return None if first is None or after is None else after <= 1.3 * first


def _watcher_share_target(size: int, results: Mapping[int, dict]) -> bool | None:
    share = _dig(results[size], "freshness", "200", "watcher_core_share")
    return None if size < 1_000_000 or share is None else share <= 0.25


def _lookup_target(size: int, results: Mapping[int, dict]) -> bool | None:
    ratio = _dig(results[size], "allocations_lookup", "ratio")
    return None if ratio is None else ratio >= 0.10


def _share_of_lookup(*keys: str) -> Callable[[int, Mapping[int, dict]], bool | None]:
    """At 1M orders: whether the figure at ``keys`` is at least half the allocations
    lookup's requests/s in the same run."""

    def check(size: int, results: Mapping[int, dict]) -> bool | None:
        lookup = _dig(results[size], "allocations_lookup", "requests_per_second")
        rate = _dig(results[size], *keys)
        if size < 1_000_000 or not lookup or rate is None:
            return None
        return rate >= 0.5 * lookup

    return check


def _peer_target(size: int, results: Mapping[int, dict]) -> bool | None:
    ours = _dig(results[size], "allocations_lookup", "requests_per_second")
    theirs = _dig(results[size], "peer", "allocations_lookup", "requests_per_second")
    return None if ours is None or not theirs else ours >= 2 * theirs


TARGETS = (
    Target("seed", "≤ 60 s at 1M orders", _seed_target),
    Target("refresh_total", "≤ 100 ms p50 at 1M orders", _refresh_target),
    Target("allocate_sync", "p50 ≤ 2 x the 10k figure", _sync_latency_target),
    Target("allocate_after", "p50 ≤ 1.3 x the first", _sustained_target),
    Target("ryw:200", "p99 ≤ 250 ms", _ryw_target),
    Target("watcher_share:200", "≤ 25 % at 1M orders", _watcher_share_target),
    Target("allocations_ratio", "≥ 10% of pgbench", _lookup_target),
    Target("peer_allocations_ratio", "≥ 2 x the peer", _peer_target),
    Target(
        "orders_rps",
        "≥ 50 % of the lookup's req/s at 1M",
        _share_of_lookup("orders_page", "requests_per_second"),
    ),
    Target(
        "orders_by_status_rps",
        "≥ 50 % of the lookup's req/s at 1M",
        _share_of_lookup("orders_page", "by_status_rps"),
    ),
    Target(
        "staff_page:/orders/",
        "≥ 50 % of the lookup's req/s at 1M",
        _share_of_lookup("staff_pages", "/orders/"),
    ),
)


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return MISSING
    return f"{value:,.{digits}f}"


def table_rows(results: Mapping[int, dict]) -> list[tuple[str, str, Callable[[dict], str]]]:
    """(key, label, cell) for each row of the table; key names a target's row."""
    views = sorted({view for result in results.values() for view in result.get("rebuild_ms", {})})

    def pair(
        *keys: str, digits: int = 0, keys_of_pair: tuple[str, str] = ("p50_ms", "p99_ms")
    ) -> Callable[[dict], str]:
        def cell(result: dict) -> str:
            first = _dig(result, *keys, keys_of_pair[0])
            second = _dig(result, *keys, keys_of_pair[1])
            if first is None:
                return MISSING
            return f"{_number(first, digits)} / {_number(second, digits)}"

        return cell

    def value(*keys: str, digits: int = 0, scale: float = 1.0, suffix: str = "") -> Callable:
        def cell(result: dict) -> str:
            found = _dig(result, *keys)
            return MISSING if found is None else _number(found * scale, digits) + suffix

        return cell

    def refresh_cell(view: str) -> Callable[[dict], str]:
        def cell(result: dict) -> str:
            rows = _dig(result, "refresh_work", "views", view, "rows_p50")
            milliseconds = _dig(result, "refresh_work", "views", view, "ms_p50")
            if milliseconds is None:
                return MISSING
            return f"{_number(rows)} rows, {_number(milliseconds, 1)} ms"

        return cell

    def peer_cell(*keys: str, ratio: bool = False) -> Callable[[dict], str]:
        """The peer's figure at ``keys``, or ours over it with ``ratio``."""

        def cell(result: dict) -> str:
            figures = result.get("peer")
            if figures is None:
                return PEER_NOT_BUILT
            if "error" in figures:
                return "peer failed"
            theirs = _dig(figures, *keys)
            if not ratio:
                return _number(theirs)
            ours = _dig(result, *keys)
            return MISSING if ours is None or not theirs else f"{ours / theirs:,.2f} x"

        return cell

    rows: list[tuple[str, str, Callable[[dict], str]]] = [
        ("seed", "seed_demo --orders N (s)", value("seed_seconds", digits=1)),
        (
            "refresh_total",
            "refresh after one allocate, all views (ms p50)",
            value("refresh_work", "total_ms_p50", digits=1),
        ),
    ]
    rows += [
        (f"refresh:{view}", f"… {view} (delta rows, ms p50)", refresh_cell(view)) for view in views
    ]
    rows += [
        (f"rebuild:{view}", f"rebuild_base {view} (ms)", value("rebuild_ms", view))
        for view in views
    ]
    rows += [
        (
            "export",
            "GET /orders.csv, every order streamed (s / peak MB of the process, before it)",
            lambda result: (
                MISSING
                if "export" not in result
                else f"{result['export']['seconds']:,.1f} / {result['export']['peak_rss_mb']:,.0f}"
                f" ({result['export']['peak_rss_mb_before']:,.0f})"
            ),
        ),
        (
            "allocate_sync",
            "POST /api/allocate, sync (ms p50 / p99)",
            pair("allocate", "sync", digits=1),
        ),
        (
            "allocate_async",
            "POST /api/allocate, async (ms p50 / p99)",
            pair("allocate", "async", digits=1),
        ),
        (
            "allocate_after",
            f"… one at a time again, after up to {SUSTAINED_WRITES:,} allocates"
            f" from {CLIENTS} clients (ms p50 / p99)",
            pair("allocate", "async_after", digits=1),
        ),
        (
            "allocate_rps",
            f"POST /api/allocate, async, {CLIENTS} clients at once (req/s)",
            value("allocate_throughput", "requests_per_second"),
        ),
        ("allocate_non_2xx", "… answers not 2xx", value("allocate_throughput", "non_2xx")),
        (
            "peer_allocate_rps",
            f"POST /allocate, Cosmic Python ch.12 peer on the same data, {CLIENTS} clients at once"
            " (req/s)",
            peer_cell("allocate_throughput", "requests_per_second"),
        ),
        (
            "peer_allocate_non_2xx",
            "… peer's answers not 2xx (its HTTP 500s: serialization failures)",
            peer_cell("allocate_throughput", "non_2xx"),
        ),
        (
            "peer_allocate_ratio",
            "… Quartermaster / peer, POST allocate (req/s)",
            peer_cell("allocate_throughput", "requests_per_second", ratio=True),
        ),
        (
            "allocations_rps",
            "GET /api/allocations/<orderid> (req/s)",
            value("allocations_lookup", "requests_per_second"),
        ),
        (
            "allocations_tps",
            "… same lookup in pgbench (tps)",
            value("allocations_lookup", "pgbench_tps"),
        ),
        (
            "allocations_ratio",
            "… API / pgbench",
            value("allocations_lookup", "ratio", digits=1, scale=100, suffix=" %"),
        ),
        (
            "allocations_unauthenticated",
            "… same URL without a token: 401, no query (req/s)",
            value("allocations_lookup", "unauthenticated_rps"),
        ),
        (
            "peer_allocations_rps",
            "GET /allocations/<orderid>, Cosmic Python ch.12 peer on the same data (req/s)",
            peer_cell("allocations_lookup", "requests_per_second"),
        ),
        (
            "peer_allocations_ratio",
            "… Quartermaster / peer, GET allocations (req/s)",
            peer_cell("allocations_lookup", "requests_per_second", ratio=True),
        ),
        (
            "orders_rps",
            "GET /api/orders?ordering=-created_at (req/s)",
            value("orders_page", "requests_per_second"),
        ),
        (
            "orders_by_status_rps",
            "GET /api/orders?status=submitted (req/s)",
            value("orders_page", "by_status_rps"),
        ),
        ("orders_tps", "… first page in pgbench (tps)", value("orders_page", "pgbench_tps")),
        (
            "orders_ratio",
            "… API / pgbench",
            value("orders_page", "ratio", digits=1, scale=100, suffix=" %"),
        ),
    ]
    rows += [
        (f"staff_page:{path}", f"staff page {path}, signed in (req/s)", value("staff_pages", path))
        for path in STAFF_PAGES
    ]
    for rate in map(str, FRESHNESS_RATES):
        rows += [
            (
                f"ryw:{rate}",
                f"read-your-writes wait at a steady {rate} writes/s (ms p50 / p99)",
                pair("freshness", rate),
            ),
            (f"ryw_stale:{rate}", "… answers marked stale", value("freshness", rate, "stale")),
            (
                f"ryw_timeouts:{rate}",
                f"… answers slower than {RYW_TIMEOUT:g} s (timed out)",
                value("freshness", rate, "timeouts"),
            ),
            (
                f"watcher_cpu:{rate}",
                f"… watcher's CPU s per 1,000 writes at {rate}/s: delta refreshes / base rebuilds",
                pair(
                    "freshness",
                    rate,
                    "watcher_cpu_per_1000_writes",
                    keys_of_pair=("refresh", "rebuild"),
                    digits=2,
                ),
            ),
            (
                f"watcher_share:{rate}",
                f"… watcher's share of one core at {rate} writes/s",
                value("freshness", rate, "watcher_core_share", scale=100, suffix=" %"),
            ),
            (
                f"delta_rows:{rate}",
                f"… largest delta at {rate} writes/s (rows)",
                value("freshness", rate, "delta_rows_max"),
            ),
        ]

    def replicas_cell(*keys: str, digits: int = 0) -> Callable[[dict], str]:
        def cell(result: dict) -> str:
            figures = result.get("replicas")
            if figures is None:
                return MISSING
            if "error" in figures:
                return figures["error"]
            found = _dig(figures, *keys)
            return MISSING if found is None else _number(found, digits)

        return cell

    def replica_sources(result: dict) -> str:
        sources = _dig(result, "replicas", "ryw", "sources")
        if not sources:
            return MISSING
        return ", ".join(f"{name} {count}" for name, count in sorted(sources.items()))

    rows += [
        (
            f"replicas:{count}",
            f"GET /api/allocations/<orderid> with {count} replica{'s' * (count != 1)}"
            " (private standbys on this machine) (req/s)",
            replicas_cell(str(count), "requests_per_second"),
        )
        for count in (0, 1, 2)
    ]
    rows += [
        (
            "replicas_ryw",
            "read-your-writes wait through 2 replicas at a steady 20 writes/s (ms p50 / p99)",
            pair("replicas", "ryw"),
        ),
        ("replicas_ryw_stale", "… answers marked stale", replicas_cell("ryw", "stale")),
        ("replicas_ryw_missing", "… answers without the write", replicas_cell("ryw", "missing")),
        ("replicas_ryw_sources", "… answered by", replica_sources),
    ]
    rows.append(("duration", "time for this size (s)", value("duration_seconds")))
    return rows


def render_table(machine: Mapping[str, str], results: Mapping[int, dict]) -> str:
    """The markdown report: the machine, then one row per figure, one column per size,
    and each target with PASS/FAIL in the cells it applies to."""
    sizes = sorted(results)
    targets = {target.row: target for target in TARGETS}
    lines = [
        "## Quartermaster benchmark",
        "",
        *(f"- {name}: {text}" for name, text in machine.items()),
        "",
        "| measure | " + " | ".join(f"{size_label(size)} orders" for size in sizes) + " | target |",
        "| --- | " + " | ".join("---:" for _ in sizes) + " | --- |",
    ]
    for key, label, cell in table_rows(results):
        target = targets.get(key)
        cells = []
        for size in sizes:
            text = cell(results[size])
            verdict = target.check(size, results) if target else None
            if verdict is not None:
                text += " PASS" if verdict else " FAIL"
            cells.append(text)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {target.text if target else ''} |")
    return "\n".join(lines)


def machine_description() -> dict[str, str]:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    return {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "RAM": memory,
        "PostgreSQL": "?",
        "Python": platform.python_version(),
        "load average at start": load,
        "set-up": (
            "granian (WSGI) 2 workers of"
            f" {server_environment(os.environ)['GRANIAN_BLOCKING_THREADS']} blocking threads;"
            f" wrk and pgbench {CLIENTS} clients, "
            f"{_seconds():g} s each; {_writes()} allocates per mode (at most 120 s); "
            "read-your-writes and the watcher's cost at "
            f"{' and '.join(map(str, FRESHNESS_RATES))} writes/s, {RYW_SECONDS:g} s each"
        ),
    }


def _seconds() -> float:
    return float(os.environ.get("BENCH_SECONDS", "10"))


def _writes() -> int:
    return int(os.environ.get("BENCH_WRITES", "200"))


# --- probes run inside Django, against the bench database ---------------------------


def probe_refresh_work(writes: list[list[str]]) -> dict:
    """Allocate each (orderid, sku) with the refresh left undone (async), then refresh
    the units its events touch, one by one, and note each delta refresh's rows and ms."""
    from orders_read import read_models, refresh
    from orders_write import commands, services

    per_view: dict[str, dict[str, list[float]]] = {}
    totals = []
    for orderid, sku in writes:
        result = services.allocate(commands.Allocate(orderid=orderid, sku=sku, qty=1))
        units = read_models.showing(event.kind for event in result.events)
        total = 0.0
        for outcome in refresh.refresh(units, timeout=0):
            if outcome.error:
                raise RuntimeError(str(outcome))
            view = outcome.unit
            figures = per_view.setdefault(view, {"rows": [], "ms": []})
            figures["rows"].append(outcome.rows_refreshed or 0)
            figures["ms"].append(outcome.duration_ms or 0.0)
            total += outcome.duration_ms or 0.0
        totals.append(total)
    return {
        "writes": len(writes),
        "total_ms_p50": percentile(totals, 0.5),
        "total_ms_p99": percentile(totals, 0.99),
        "views": {
            view: {
                "rows_p50": percentile(figures["rows"], 0.5),
                "ms_p50": percentile(figures["ms"], 0.5),
                "ms_p99": percentile(figures["ms"], 0.99),
            }
            for view, figures in per_view.items()
        },
    }


def probe_rebuild() -> dict:
    """Compact each unit the way the watcher does: rebuild its base (CONCURRENTLY), then
    rewrite its delta, which keeps only the keys the new base does not cover. The ms of
    each base's rebuild."""
    from orders_read import rebuilds
    from orders_read.read_models import READ_MODELS

    rebuilt = {}
    for outcome in rebuilds.compact(READ_MODELS, wait=True, timeout=0):
        if outcome.error:
            raise RuntimeError(f"compacting {outcome.unit}: {outcome}")
        if outcome.base:
            rebuilt[outcome.unit] = outcome.duration_ms
    if sorted(rebuilt) != sorted(READ_MODELS):
        raise RuntimeError(f"not every base was rebuilt: {sorted(rebuilt)}")
    return rebuilt


def probe_restock() -> dict:
    """Receive a large warehouse batch of every product, through the service: the seed
    allocates until stock runs out, and an allocate that finds none writes less (no
    allocation, two views) than the one this bench is about."""
    from django.db import transaction

    from orders_write import commands, services
    from orders_write.models import Product

    with transaction.atomic():  # one commit: the read models refresh once
        skus = list(Product.objects.values_list("sku", flat=True))
        for sku in skus:
            services.create_batch(
                commands.CreateBatch(ref=f"BENCH-{sku}", sku=sku, qty=1_000_000, eta=None)
            )
    return {"products": len(skus)}


def probe_base_rebuilds() -> dict:
    """How many times each base has been rebuilt (to see compactions in a window)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT unit, rebuild_count FROM read_model_base_state")
        return dict(cursor.fetchall())


def probe_export() -> dict:
    """Export every order as CSV through the orders list's export view, reading the
    stream as a client would: its time, size and this process's peak memory (RSS)
    before and after, which says whether the export held the orders in memory."""
    import resource

    from django.contrib.auth.models import User
    from django.test import RequestFactory

    from orders_read import views

    request = RequestFactory().get("/orders.csv")
    request.user = User(username="bench", is_superuser=True, is_active=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.monotonic()
    size = rows = 0
    for piece in views.orders_csv(request).streaming_content:
        size += len(piece)
        rows += piece.count(b"\r\n")  # the rows' ends; an address holds "\n"
    return {
        "seconds": time.monotonic() - started,
        "rows": rows - 1,
        "megabytes": size / 1e6,
        "peak_rss_mb_before": before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


PROBES: dict[str, Callable[..., dict]] = {
    "export": probe_export,
    "refresh-work": probe_refresh_work,
    "rebuild": probe_rebuild,
    "restock": probe_restock,
    "base-rebuilds": probe_base_rebuilds,
}


def run_probe_here(name: str) -> None:
    """Entry point of ``python -m bench.bench --probe NAME`` (arguments as JSON on stdin)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    arguments = json.loads(sys.stdin.read() or "[]")
    print(json.dumps(PROBES[name](*arguments)))


def probe(environment: dict, name: str, *arguments: object) -> dict:
    """Run a probe in a child process on the bench database; its JSON answer."""
    answer = subprocess.run(
        [sys.executable, "-m", "bench.bench", "--probe", name],
        cwd=PROJECT,
        env=environment,
        input=json.dumps(list(arguments)),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])


# --- the database ---------------------------------------------------------------------


def query(url: str, sql: str, parameters: Sequence[object] = ()) -> list[tuple]:
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, parameters)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def sample_writes(url: str, count: int) -> list[tuple[str, str]]:
    """``count`` allocations that add a line: distinct submitted seeded orders, each
    with a SKU it has no line for yet (so none is refused)."""
    rows = query(
        url,
        """
        WITH seeded AS (SELECT setseed(0.5)),
        chosen AS (
            SELECT o.id, o.reference FROM orders_write_order o, seeded
            WHERE o.status = 'submitted' ORDER BY random() LIMIT %s
        )
        SELECT chosen.reference, (
            SELECT product.sku FROM orders_write_product product
            WHERE NOT EXISTS (
                SELECT 1 FROM orders_write_orderline line
                WHERE line.order_id = chosen.id AND line.sku = product.sku)
            ORDER BY random() LIMIT 1)
        FROM chosen
        """,
        [count],
    )
    return [(reference, sku) for reference, sku in rows if sku]


# --- load generators ------------------------------------------------------------------


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("make bench needs wrk: apt-get install wrk")
    return found


def pgbench_binary() -> str:
    """pgserver's own pgbench (the server's version) when installed, else the system's."""
    try:
        import pgserver

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("pgbench")
    if found is None:
        raise SystemExit("make bench needs pgbench: apt-get install postgresql-client")
    return found


def run_wrk(
    base: str, path: str, script: str | None, environment: dict, *, seconds: float | None = None
) -> dict[str, float]:
    """wrk's figures for ``path``, with ``script`` (bench/*.lua) making the requests, for
    ``seconds`` (BENCH_SECONDS by default)."""
    output = subprocess.run(
        [
            wrk_binary(),
            "--threads",
            "2",
            "--connections",
            str(CLIENTS),
            "--duration",
            f"{round(seconds or _seconds())}s",
            "--timeout",
            "10s",
            "--latency",
            *(["--script", str(BENCH_DIR / script)] if script else []),
            base + path,
        ],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return parse_wrk(output)


def run_pgbench(url: str, script: str, variables: Mapping[str, object]) -> float:
    command = [
        pgbench_binary(),
        "--no-vacuum",
        "--protocol=prepared",
        f"--client={CLIENTS}",
        "--jobs=2",
        f"--time={round(_seconds())}",
        f"--file={BENCH_DIR / script}",
        *(f"--define={name}={value}" for name, value in variables.items()),
        url,
    ]
    answer = subprocess.run(command, check=True, capture_output=True, text=True)
    return parse_pgbench(answer.stdout)


def time_allocates(
    client: Client, writes: Iterable[tuple[str, str]], *, max_seconds: float = 120
) -> dict:
    """POST /api/allocate for each write, one after another; latency and statuses.
    Stops after ``max_seconds``, so that a slow mode cannot hold the run for long."""
    milliseconds = []
    statuses: dict[str, int] = {}
    deadline = time.monotonic() + max_seconds
    for number, (orderid, sku) in enumerate(writes):
        if time.monotonic() > deadline and len(milliseconds) >= 2:
            break
        started = time.perf_counter()
        status, _, _ = client.call(
            "POST", "/api/allocate", {"orderid": orderid, "sku": sku, "qty": 1}
        )
        elapsed = (time.perf_counter() - started) * 1000
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if number >= WARM_UP_WRITES:
            milliseconds.append(elapsed)
    return {**latency_summary(milliseconds), "statuses": statuses}


def read_your_writes(
    client_factory: Callable[[], Client], writes: list[tuple[str, str]], rate: float
) -> dict:
    """At ``rate`` writes/s (open loop: a slow answer does not slow the writes), for each
    of ``writes`` POST an allocate, then GET its order's allocations with the consistency
    token; the wait is from the POST's answer to the GET's answer that includes the
    write."""
    waits: list[float] = []
    outcome = {"stale": 0, "missing": 0, "errors": 0, "timeouts": 0}
    sources: dict[str, int] = {}  # X-Read-Model-Source of the reads
    lock = threading.Lock()

    def one(orderid: str, sku: str) -> None:
        client = client_factory()
        status, headers, body = client.call(
            "POST", "/api/allocate", {"orderid": orderid, "sku": sku, "qty": 1}
        )
        if status != 202:
            with lock:
                outcome["errors"] += 1
            return
        written = time.perf_counter()
        allocated = any(event["name"] == "Allocated" for event in json.loads(body)["events"])
        status, answer_headers, answer = client.call(
            "GET",
            f"/api/allocations/{orderid}",
            consistency=headers.get("X-Consistency-Token"),
            timeout=RYW_TIMEOUT,
        )
        waited = (time.perf_counter() - written) * 1000
        with lock:
            waits.append(waited)  # a timed-out one counts with what it waited, at least
            source = answer_headers.get("X-Read-Model-Source", "none") if status else "none"
            sources[source] = sources.get(source, 0) + 1
            if status == 0:
                outcome["timeouts"] += 1
            elif answer_headers.get("X-Read-Model-Stale") == "true":
                outcome["stale"] += 1
            elif allocated and (
                status != 200 or sku not in {row["sku"] for row in json.loads(answer)}
            ):
                outcome["missing"] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=64) as pool:
        for number, (orderid, sku) in enumerate(writes):
            delay = started + number / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, orderid, sku)
        # The rate the writes went out at (the answers may still be coming).
        achieved = len(writes) / (time.perf_counter() - started)
    return {
        **latency_summary(waits),
        **outcome,
        "sources": sources,
        "writes_per_second": achieved,
    }


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process (of this machine) has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def watcher_cpu(url: str, watcher_pid: int) -> dict[str, dict[int, float]]:
    """CPU seconds used so far, per process: for delta refreshes the watcher's process
    and its database sessions, for base rebuilds its compactor's session."""
    from orders_read.watcher import APPLICATION_NAME, COMPACTOR_NAME

    used: dict[str, dict[int, float]] = {"refresh": {}, "rebuild": {}}
    sessions = query(
        url,
        "SELECT pid, application_name FROM pg_stat_activity WHERE application_name IN (%s, %s)",
        [APPLICATION_NAME, COMPACTOR_NAME],
    )
    for pid, name in [(watcher_pid, APPLICATION_NAME), *sessions]:
        with contextlib.suppress(FileNotFoundError):  # a session that just ended
            used["rebuild" if name == COMPACTOR_NAME else "refresh"][pid] = process_cpu_seconds(pid)
    return used


def cpu_spent(
    before: Mapping[str, Mapping[int, float]], after: Mapping[str, Mapping[int, float]]
) -> dict[str, float]:
    """CPU seconds per kind between two ``watcher_cpu`` samples; a process seen only in
    the second (a session opened meanwhile) counts from zero."""
    return {
        kind: sum(seconds - before.get(kind, {}).get(pid, 0.0) for pid, seconds in used.items())
        for kind, used in after.items()
    }


def largest_delta_while(url: str, stop: threading.Event, largest: list[int]) -> None:
    """Until ``stop``, keep in ``largest[0]`` the largest delta (rows) of any read model,
    looked at every 0.2 s."""
    while not stop.wait(0.2):
        (rows,) = query(url, "SELECT coalesce(max(delta_row_count), 0) FROM read_model_state")[0]
        largest[0] = max(largest[0], rows)


def cost_of_freshness(
    url: str,
    watcher_pid: int,
    client_factory: Callable[[], Client],
    writes: list[tuple[str, str]],
    rate: float,
) -> dict:
    """The read-your-writes wait at a steady ``rate`` writes/s, with what keeping the read
    models fresh cost the watcher meanwhile: CPU seconds per 1,000 writes (delta
    refreshes and base rebuilds apart), its share of one core, the largest delta."""
    before = watcher_cpu(url, watcher_pid)
    stop, largest = threading.Event(), [0]
    poller = threading.Thread(target=largest_delta_while, args=(url, stop, largest))
    poller.start()
    started = time.monotonic()
    try:
        figures = read_your_writes(client_factory, writes, rate)
    finally:
        stop.set()
        poller.join()
    elapsed = time.monotonic() - started
    spent = cpu_spent(before, watcher_cpu(url, watcher_pid))
    return {
        **figures,
        "watcher_cpu_per_1000_writes": {
            kind: 1000 * seconds / len(writes) for kind, seconds in spent.items()
        },
        "watcher_core_share": sum(spent.values()) / elapsed,
        "delta_rows_max": largest[0],
    }


# --- one size -------------------------------------------------------------------------


def measure(orders: int) -> dict:
    started = time.monotonic()
    url = fresh_database_url(DATABASE)
    from config.http.restframework import Pagination  # Django is set up by now

    page_size = Pagination.page_size
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "FAILED_LOGIN_RATE": "100000/min",
        "LOG_LEVEL": "WARNING",
    }
    say(f"[{size_label(orders)}] migrate")
    manage(environment, "migrate", "--noinput", "-v0")
    say(f"[{size_label(orders)}] seed_demo --orders {orders}")
    seeding = time.monotonic()
    manage(environment, "seed_demo", "--orders", str(orders), "-v0")
    result: dict = {
        "orders": orders,
        "seed_seconds": time.monotonic() - seeding,
        "postgres_version": query(url, "SHOW server_version")[0][0],
    }
    say(f"[{size_label(orders)}] seeded in {result['seed_seconds']:.1f} s")
    # Planner statistics for the bulk-loaded tables now, rather than whenever autovacuum
    # gets to them in the middle of a measurement.
    query(url, "ANALYZE")
    token = create_token_user(environment, "bench")
    probe(environment, "restock")
    # The last 20/s: read-your-writes through the replicas.
    steady_writes = sum(int(rate * RYW_SECONDS) for rate in (*FRESHNESS_RATES, 20))
    writes = iter(
        sample_writes(url, REFRESH_WRITES + 3 * (_writes() + WARM_UP_WRITES) + steady_writes)
    )

    def take(count: int) -> list[tuple[str, str]]:
        return [next(writes) for _ in range(count)]

    # The restock put every SKU in the deltas: fold them into the bases (measuring the
    # rebuild), so that each phase below starts from empty deltas as after a compaction.
    say(f"[{size_label(orders)}] rebuild_base of each view")
    result["rebuild_ms"] = probe(environment, "rebuild")

    say(f"[{size_label(orders)}] refresh work of one write ({REFRESH_WRITES} writes)")
    async_environment = {**environment, "READ_MODEL_REFRESH": "async"}
    result["refresh_work"] = probe(async_environment, "refresh-work", take(REFRESH_WRITES))

    say(f"[{size_label(orders)}] CSV export of every order")
    result["export"] = probe(environment, "export")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    say(f"[{size_label(orders)}] POST /api/allocate, sync")
    result["allocate"] = {}
    with ExitStack() as running:
        server = start_server({**environment, "READ_MODEL_REFRESH": "sync"}, port)
        running.callback(stop, server)
        client = Client(base, token)
        result["allocate"]["sync"] = time_allocates(client, take(_writes() + WARM_UP_WRITES))

    # Again, so that the async phase's writes stay under READ_MODEL_DELTA_LIMIT and the
    # watcher does not compact in the middle of the measurements.
    say(f"[{size_label(orders)}] compact")
    result["second_rebuild_ms"] = probe(environment, "rebuild")
    rebuilds_before = probe(environment, "base-rebuilds")

    say(f"[{size_label(orders)}] async: allocates, wrk, pgbench, read-your-writes")
    wrk_environment = {**os.environ, "BENCH_TOKEN": token, "BENCH_ORDERS": str(orders)}
    with ExitStack() as running:
        watcher = start_watcher(async_environment)
        running.callback(stop, watcher)
        server = start_server(async_environment, port)
        running.callback(stop, server)
        client = Client(base, token)
        result["allocate"]["async"] = time_allocates(client, take(_writes() + WARM_UP_WRITES))
        lookups = run_wrk(
            base, "/api/allocations/DEMO-0000001", "wrk_allocations.lua", wrk_environment
        )
        # The same URL without a token: Django, its middleware and DRF answer 401 with no
        # query at all, the most this stack serves here whatever the lookup costs.
        lookups["unauthenticated_rps"] = run_wrk(
            base, "/api/allocations/DEMO-0000001", None, wrk_environment
        )["requests_per_second"]
        page = run_wrk(base, "/api/orders?ordering=-created_at", "wrk_token.lua", wrk_environment)
        by_status = run_wrk(base, "/api/orders?status=submitted", "wrk_token.lua", wrk_environment)
        page["by_status_rps"] = by_status["requests_per_second"]
        session_environment = {
            **wrk_environment,
            "BENCH_SESSION": create_session(environment, "bench"),
        }
        result["staff_pages"] = {
            path: run_wrk(base, path, "wrk_session.lua", session_environment)["requests_per_second"]
            for path in STAFF_PAGES
        }
        lookups["pgbench_tps"] = run_pgbench(url, "pgbench_allocations.sql", {"orders": orders})
        page["pgbench_tps"] = run_pgbench(url, "pgbench_orders_page.sql", {"page_size": page_size})
        for figures in (lookups, page):
            figures["ratio"] = figures["requests_per_second"] / figures["pgbench_tps"]
        result["allocations_lookup"], result["orders_page"] = lookups, page
        result["freshness"] = {
            str(rate): cost_of_freshness(
                url,
                watcher.pid,
                lambda: Client(base, token),
                take(int(rate * RYW_SECONDS)),
                rate,
            )
            for rate in FRESHNESS_RATES
        }
        # Last: its writes may outgrow READ_MODEL_DELTA_LIMIT and set the watcher compacting.
        skus = [sku for (sku,) in query(url, "SELECT sku FROM orders_write_product")]
        allocate_environment = {**wrk_environment, "BENCH_SKUS": ",".join(skus)}
        throughput = run_wrk(base, "/api/allocate", "wrk_allocate.lua", allocate_environment)
        result["allocate_throughput"] = throughput
        # Then on to SUSTAINED_WRITES writes from 16 clients (at most 120 s more), and one at
        # a time again: does a write cost more once the deltas and the bases have grown?
        more = max(0.0, SUSTAINED_WRITES - throughput["requests"])
        sustained = run_wrk(
            base,
            "/api/allocate",
            "wrk_allocate.lua",
            allocate_environment,
            seconds=max(1.0, min(120.0, more / max(throughput["requests_per_second"], 1.0))),
        )
        result["allocate"]["async_after"] = {
            **time_allocates(client, take(_writes() + WARM_UP_WRITES)),
            "writes_before": throughput["requests"] + sustained["requests"],
        }
    rebuilds_after = probe(environment, "base-rebuilds")
    result["base_rebuilds_during_async"] = {
        unit: count - rebuilds_before.get(unit, 0)
        for unit, count in rebuilds_after.items()
        if count != rebuilds_before.get(unit, 0)
    }
    if orders == min(bench_sizes(os.environ)):
        say(f"[{size_label(orders)}] reads on 0, 1 and 2 replicas")
        result["replicas"] = replica_reads(
            url, async_environment, wrk_environment, token, take(int(20 * RYW_SECONDS))
        )
    result["duration_seconds"] = time.monotonic() - started
    say(f"[{size_label(orders)}] done in {result['duration_seconds']:.0f} s")
    # The peer after ours, alone on the machine (our server and watcher have stopped), on
    # a copy of this size's data; None without COSMIC_PEER.
    result["peer"] = peer.measure(orders, url, run_wrk=run_wrk, say=say)
    return result


def replica_urls(url: str, count: int) -> list[str]:
    """URLs of the bench's database on ``count`` private hot standbys of the private
    server (config/localdb.py), started, and caught up with the primary."""
    from config import localdb

    (position,) = query(url, "SELECT pg_current_wal_lsn()::text")[0]
    urls = [
        localdb.url_of({**replica, "NAME": DATABASE})
        for replica in localdb.replica_databases(count).values()
    ]
    replayed = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"
    for replica in urls:
        wait_until(
            lambda replica=replica: query(replica, replayed, [position])[0][0],
            timeout=600,
            what=f"{replica} to replay the primary's WAL",
        )
    return urls


def replica_reads(
    url: str,
    async_environment: dict,
    wrk_environment: dict,
    token: str,
    writes: list[tuple[str, str]],
) -> dict:
    """The allocations lookup's requests/s with 0, 1 and 2 replicas (private standbys on
    this same machine: the point is the cost of routing and the answers' correctness, not
    a speed-up), and the read-your-writes wait through the replicas at 20 writes/s."""
    if os.environ.get("DATABASE_URL"):
        return {"error": "the replicas are private standbys: run with DATABASE_URL unset"}
    urls = replica_urls(url, 2)
    from config import localdb

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    result: dict = {}
    try:
        for count in (0, 1, 2):
            environment = {**async_environment, "DATABASE_REPLICA_URLS": ",".join(urls[:count])}
            with ExitStack() as running:
                watcher = start_watcher(environment)
                running.callback(stop, watcher)
                server = start_server(environment, port)
                running.callback(stop, server)
                lookups = run_wrk(
                    base, "/api/allocations/DEMO-0000001", "wrk_allocations.lua", wrk_environment
                )
                result[str(count)] = {"requests_per_second": lookups["requests_per_second"]}
                if count == len(urls):
                    result["ryw"] = read_your_writes(lambda: Client(base, token), writes, 20)
    finally:
        # Stopped: a later `REPLICAS=2 make run` resumes them, a command without REPLICAS
        # removes them with their slots (config/localdb.py).
        localdb.stop_replicas()
    return result


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def main() -> int:
    sizes = bench_sizes(os.environ)
    wrk_binary(), pgbench_binary()  # fail early, not after the seeding
    peer.prepare(os.environ)  # the peer's virtualenv and redis-server, with COSMIC_PEER
    machine = machine_description()
    results: dict[int, dict] = {}
    for orders in sizes:
        results[orders] = measure(orders)
        machine["PostgreSQL"] = results[orders]["postgres_version"]
        report = {
            "machine": machine,
            "results": {str(size): result for size, result in results.items()},
            "targets": {
                target.text: {str(size): target.check(size, results) for size in results}
                for target in TARGETS
            },
        }
        # After each size, so that an interrupted run keeps what it measured.
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(render_table(machine, results))
    print(f"\n(also in {RESULTS.relative_to(PROJECT)})")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        run_probe_here(sys.argv[2])
    else:
        sys.exit(main())
