"""The benchmark's pure helpers (percentiles, parsing wrk and pgbench, the table); the
benchmark itself is run by `make bench`, never by the tests, and asserts no timing."""

import pytest

from bench import peer
from bench.bench import (
    bench_sizes,
    cpu_spent,
    parse_pgbench,
    parse_wrk,
    percentile,
    process_cpu_seconds,
    render_table,
    size_label,
)

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:8000/api/allocations/DEMO-0000001
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   150.23ms   20.11ms 300.00ms   80.00%
    Req/Sec    53.00     10.00    80.00     70.00%
  Latency Distribution
     50%  148.00ms
     75%  160.00ms
     90%  175.00ms
     99%    1.20s
  1060 requests in 10.01s, 1.23MB read
  Socket errors: connect 0, read 1, write 0, timeout 3
  Non-2xx or 3xx responses: 212
Requests/sec:    105.90
Transfer/sec:    125.87KB
"""


def test_percentile_interpolates_between_the_nearest_ranks():
    assert percentile([4, 1, 3, 2], 0.5) == 2.5
    assert percentile(range(1, 101), 0.99) == pytest.approx(99.01)
    assert percentile([7], 0.99) == 7


def test_percentile_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_sizes_default_to_10k_100k_and_1m_and_quick_skips_1m():
    assert bench_sizes({}) == [10_000, 100_000, 1_000_000]
    assert bench_sizes({"BENCH_QUICK": "1"}) == [10_000, 100_000]
    assert bench_sizes({"BENCH_QUICK": "0"}) == [10_000, 100_000, 1_000_000]


def test_sizes_given_are_sorted_and_deduplicated():
    assert bench_sizes({"BENCH_SIZES": "100_000,10000,10000", "BENCH_QUICK": "1"}) == [
        10_000,
        100_000,
    ]
    with pytest.raises(ValueError):
        bench_sizes({"BENCH_SIZES": "0"})


def test_size_labels_read_like_the_issue():
    assert [size_label(size) for size in (10_000, 100_000, 1_000_000, 2500)] == [
        "10k",
        "100k",
        "1M",
        "2500",
    ]


def test_reads_requests_errors_and_latencies_from_wrk():
    assert parse_wrk(WRK_OUTPUT) == {
        "requests_per_second": 105.9,
        "requests": 1060,
        "non_2xx": 212,
        "socket_errors": 4,
        "latency_p50_ms": 148.0,
        "latency_p99_ms": 1200.0,
    }


def test_reads_tps_without_connection_time_from_pgbench():
    output = "latency average = 0.9 ms\ntps = 16542.123 (without initial connection time)\n"
    assert parse_pgbench(output) == 16542.123
    with pytest.raises(ValueError):
        parse_pgbench("connection to server failed")


def _result(
    sync_p50: float, refresh_ms: float, ryw_p99: float, ratio: float, seed_seconds: float = 3.0
) -> dict:
    return {
        "seed_seconds": seed_seconds,
        "refresh_work": {
            "total_ms_p50": refresh_ms,
            "views": {"allocations_view": {"rows_p50": 4, "ms_p50": refresh_ms}},
        },
        "rebuild_ms": {"allocations_view": 180.0},
        "allocate": {"sync": {"p50_ms": sync_p50, "p99_ms": 2 * sync_p50}},
        "allocations_lookup": {"requests_per_second": 100, "pgbench_tps": 1000, "ratio": ratio},
        "freshness": {
            "200": {
                "p50_ms": 30.0,
                "p99_ms": ryw_p99,
                "stale": 0,
                "watcher_cpu_per_1000_writes": {"refresh": 1.5, "rebuild": 0.25},
                "watcher_core_share": 0.3,
                "delta_rows_max": 420,
            }
        },
    }


def test_table_has_a_column_per_size_and_a_verdict_where_a_target_applies():
    table = render_table(
        {"CPU": "Test CPU, 2 cores"},
        {
            10_000: _result(sync_p50=20, refresh_ms=50, ryw_p99=400, ratio=0.2),
            1_000_000: _result(
                sync_p50=50, refresh_ms=150, ryw_p99=600, ratio=0.05, seed_seconds=75
            ),
        },
    )
    lines = table.splitlines()
    assert "- CPU: Test CPU, 2 cores" in lines
    assert "| measure | 10k orders | 1M orders | target |" in lines

    def row(label: str) -> str:
        return next(line for line in lines if line.startswith(f"| {label} |"))

    # The seed and refresh targets are for 1M only; the sync latency one compares with 10k.
    assert "| 3.0 | 75.0 FAIL | ≤ 60 s at 1M orders |" in row("seed_demo --orders N (s)")
    assert row("refresh after one allocate, all views (ms p50)").startswith(
        "| refresh after one allocate, all views (ms p50) | 50.0 | 150.0 FAIL |"
    )
    assert "| 20.0 / 40.0 | 50.0 / 100.0 FAIL |" in row("POST /api/allocate, sync (ms p50 / p99)")
    assert "| 30 / 400 FAIL | 30 / 600 FAIL |" in row(
        "read-your-writes wait at a steady 200 writes/s (ms p50 / p99)"
    )
    # The watcher's cost: CPU per 1,000 writes apart, its share of a core (a 1M target).
    assert "| 1.50 / 0.25 | 1.50 / 0.25 |" in row(
        "… watcher's CPU s per 1,000 writes at 200/s: delta refreshes / base rebuilds"
    )
    assert "| 30 % | 30 % FAIL | ≤ 25 % at 1M orders |" in row(
        "… watcher's share of one core at 200 writes/s"
    )
    assert "| 420 | 420 |" in row("… largest delta at 200 writes/s (rows)")
    # A rate not measured shows as such.
    assert "| - | - |" in row("read-your-writes wait at a steady 20 writes/s (ms p50 / p99)")
    assert "| 20.0 % PASS | 5.0 % FAIL |" in row("… API / pgbench")
    # Figures not measured show as such rather than as zero.
    assert "| - | - |" in row("POST /api/allocate, async (ms p50 / p99)")


def _row(table: str, label: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(f"| {label} |"))


PEER_ALLOCATE = (
    "POST /allocate, Cosmic Python ch.12 peer on the same data, 16 clients at once (req/s)"
)
PEER_LOOKUP = "GET /allocations/<orderid>, Cosmic Python ch.12 peer on the same data (req/s)"


def test_peer_rows_say_when_the_peer_was_not_built():
    table = render_table({}, {10_000: _result(sync_p50=20, refresh_ms=5, ryw_p99=100, ratio=0.2)})
    assert "| peer not built |" in _row(table, PEER_ALLOCATE)
    assert "| peer not built |" in _row(table, "… Quartermaster / peer, GET allocations (req/s)")


def test_peer_rows_sit_beside_ours_with_the_ratio_of_ours_to_the_peers():
    ours = _result(sync_p50=20, refresh_ms=5, ryw_p99=100, ratio=0.2)
    ours["allocate_throughput"] = {"requests_per_second": 150.0, "non_2xx": 0.0}
    failed = {**ours, "peer": {"error": "gunicorn exited"}}
    ours["peer"] = {
        "allocate_throughput": {"requests_per_second": 60.0, "non_2xx": 7.0},
        "allocations_lookup": {"requests_per_second": 400.0},
    }
    table = render_table({}, {10_000: ours, 100_000: failed})
    assert "| 60 | peer failed |" in _row(table, PEER_ALLOCATE)
    assert "| 7 | peer failed |" in _row(
        table, "… peer's answers not 2xx (its HTTP 500s: serialization failures)"
    )
    assert "| 2.50 x | peer failed |" in _row(
        table, "… Quartermaster / peer, POST allocate (req/s)"
    )
    assert "| 400 |" in _row(table, PEER_LOOKUP)
    # The issue's target: at least twice the peer's lookups.
    assert "| 0.25 x FAIL |" in _row(table, "… Quartermaster / peer, GET allocations (req/s)")
    labels = [line.split(" | ")[0] for line in table.splitlines()]
    assert labels.index(f"| {PEER_ALLOCATE}") == labels.index("| … answers not 2xx") + 1


def test_the_peer_is_the_checkout_cosmic_peer_names(tmp_path):
    assert peer.checkout({}) is None
    assert peer.checkout({"COSMIC_PEER": " "}) is None
    with pytest.raises(SystemExit, match="chapter_12_cqrs"):
        peer.checkout({"COSMIC_PEER": str(tmp_path)})
    app = tmp_path / "src" / peer.APP
    app.parent.mkdir(parents=True)
    app.touch()
    assert peer.checkout({"COSMIC_PEER": str(tmp_path)}) == tmp_path.resolve()


def test_cpu_spent_counts_each_process_from_its_first_sample_or_from_zero():
    before = {"refresh": {10: 1.0, 11: 2.0}, "rebuild": {12: 5.0}}
    after = {"refresh": {10: 1.5, 11: 2.25, 13: 0.5}, "rebuild": {12: 9.0}}
    assert cpu_spent(before, after) == {"refresh": 1.25, "rebuild": 4.0}


def test_reads_a_process_cpu_seconds_from_proc():
    import os
    import time

    seconds = process_cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # some CPU of our own
        pass
    assert process_cpu_seconds(os.getpid()) > seconds >= 0


EXPORT = "GET /orders.csv, every order streamed (s / peak MB of the process, before it)"


def test_the_export_row_gives_its_time_and_the_processs_peak_memory_before_and_after():
    measured = _result(sync_p50=20, refresh_ms=5, ryw_p99=100, ratio=0.2)
    measured["export"] = {"seconds": 15.71, "peak_rss_mb": 57.2, "peak_rss_mb_before": 54.0}

    table = render_table({}, {10_000: measured, 100_000: _result(20, 5, 100, 0.2)})

    assert "| 15.7 / 57 (54) | - |" in _row(table, EXPORT)
