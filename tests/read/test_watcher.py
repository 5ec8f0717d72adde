"""Async mode: `refresh_views --watch` in a real subprocess keeps the read side fresh."""

import datetime
import itertools
import socket
import subprocess
import sys

import pytest

from orders_read import queries, rebuilds, verification
from orders_read import watcher as watcher_module
from orders_read.models import BaseState, RefreshState
from orders_read.read_models import READ_MODELS
from orders_write import commands, services
from tests.database import run_threads
from tests.factories import add_batch, watcher_row
from tests.processes import Watcher, terminate_watcher_connections
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def watcher():
    started = []

    def start(**kwargs):
        started.append(Watcher(**kwargs))
        assert started[-1].ready.wait(timeout=60), "\n".join(started[-1].lines)
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def async_mode(settings):
    settings.READ_MODEL_REFRESH = "async"
    settings.READ_MODEL_MAX_WAIT = 20


def test_a_token_read_waits_for_the_watcher_and_then_sees_the_write(async_mode, watcher):
    add_batch("lamps", "LAMP", 10)
    watcher()

    result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))
    freshness = queries.freshness("allocations_for", result.consistency_token)

    assert freshness.stale is False
    assert queries.allocations_for("o1") == [{"sku": "LAMP", "batchref": "lamps"}]
    # Each query waits for the views it reads: availability is another one.
    assert queries.freshness("product", result.consistency_token).stale is False
    assert queries.product("LAMP").allocated == 2


def test_the_watcher_catches_up_on_writes_made_while_it_was_down(async_mode, watcher):
    add_batch("lamps", "LAMP", 10)
    result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))
    assert queries.allocations_for("o1") == []

    watcher()
    freshness = queries.freshness("allocations_for", result.consistency_token)

    assert freshness.stale is False
    assert queries.allocations_for("o1") == [{"sku": "LAMP", "batchref": "lamps"}]


def test_the_watcher_stops_cleanly_on_sigterm(watcher):
    running = watcher()

    running.stop()

    assert running.process.returncode == 0
    assert running.lines[-1] == "watcher stopped"


def test_the_watcher_survives_losing_its_connections_and_catches_up(async_mode, watcher):
    add_batch("lamps", "LAMP", 1000)
    running = watcher()
    wait_until(lambda: queries.watchers(), what="the watcher's first heartbeat")

    tokens = []
    for round_ in range(3):
        assert terminate_watcher_connections() >= 1
        # Writes go on while the watcher is without its connection.
        for number in range(5):
            result = services.allocate(
                commands.Allocate(orderid=f"o{round_}-{number}", sku="LAMP", qty=1)
            )
            tokens.append(result.consistency_token)
        # Every read model, not only the one of the allocations.
        freshness = queries.freshness("read_models", tokens[-1])
        assert freshness.stale is False, "\n".join(running.lines)

    assert running.process.poll() is None, "\n".join(running.lines)
    assert any(line.startswith("database unavailable") for line in running.lines)
    assert queries.allocations_for("o2-4") == [{"sku": "LAMP", "batchref": "lamps"}]
    assert all(check.ok for check in verification.check_all())
    assert [each["running"] for each in queries.watchers()] == [True]


def test_a_running_watcher_beats_and_leaves_no_trace_when_stopped(watcher):
    running = watcher()
    wait_until(lambda: queries.watchers(), what="the watcher's first heartbeat")

    (seen,) = queries.watchers()
    assert seen["pid"] == running.process.pid
    assert seen["running"] is True
    assert sorted(seen["units"]) == sorted(READ_MODELS)
    assert all(state["watcher_running"] for state in queries.read_model_states())

    running.stop()

    assert queries.watchers() == []
    assert not any(state["watcher_running"] for state in queries.read_model_states())


def test_a_watcher_that_stopped_beating_is_shown_as_not_responding():
    silent_since = watcher_row(
        host="elsewhere", silent_for=watcher_module.SILENT_AFTER + datetime.timedelta(seconds=1)
    ).heartbeat_at

    (seen,) = queries.watchers()

    assert seen["running"] is False
    states = queries.read_model_states()
    assert not any(state["watcher_running"] for state in states)
    assert all(state["watcher_heartbeat_at"] == silent_since for state in states)


def test_a_new_watcher_forgets_the_dead_ones(watcher):
    watcher_row(
        host="here",
        units=["order_summary"],
        silent_for=watcher_module.SILENT_AFTER + datetime.timedelta(seconds=1),
    )

    running = watcher()
    wait_until(
        lambda: [each["pid"] for each in queries.watchers()] == [running.process.pid],
        what="the silent watcher's row to go",
    )


def test_a_new_watcher_forgets_one_of_its_host_whose_process_is_gone(watcher):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(gone.stdout)
    # It beat a moment ago, then was killed.
    watcher_row(host=socket.gethostname(), pid=pid, units=["order_summary"])

    running = watcher()
    wait_until(
        lambda: [each["pid"] for each in queries.watchers()] == [running.process.pid],
        what="the dead watcher's row to go",
    )


def _rebuild_counts() -> dict[str, int]:
    return dict(BaseState.objects.values_list("unit", "rebuild_count"))


def test_compacting_from_the_admin_is_left_to_the_watcher(admin_client, watcher):
    add_batch("lamps", "LAMP", 10)
    before = _rebuild_counts()

    page = admin_client.post(
        "/admin/orders_read/refreshstate/",
        {"action": "compact_selected", "_selected_action": ["order_summary"]},
        follow=True,
    )

    # Nothing rebuilt in the request; without a watcher, the admin says who must do it.
    assert _rebuild_counts() == before
    (message,) = [str(message) for message in page.context["messages"]]
    assert message.startswith("Asked for order_summary to be folded into their bases, but no")
    assert rebuilds.units_to_compact() == ["order_summary"]

    watcher()
    wait_until(
        lambda: _rebuild_counts()["order_summary"] == before["order_summary"] + 1,
        timeout=30,
        what="the watcher to rebuild the base",
    )
    assert rebuilds.units_to_compact() == []
    assert {unit for unit, count in _rebuild_counts().items() if count > before[unit]} == {
        "order_summary"
    }


def test_compacting_from_the_admin_says_the_running_watcher_does_it(admin_client, watcher):
    watcher()
    wait_until(lambda: queries.watchers(), what="the watcher's first heartbeat")

    page = admin_client.post(
        "/admin/orders_read/refreshstate/",
        {"action": "compact_selected", "_selected_action": ["allocations_view"]},
        follow=True,
    )

    (message,) = [str(message) for message in page.context["messages"]]
    assert message.startswith("The watcher folds the deltas of allocations_view into their")


def test_under_a_burst_of_writes_the_watcher_refreshes_far_fewer_times_than_it_is_told(
    async_mode, watcher
):
    add_batch("lamps", "LAMP", 10_000)
    watcher()
    before = RefreshState.objects.get(unit="allocations_view").refresh_count
    writers, each = 8, 15
    writer_numbers = itertools.count()
    tokens = []

    def write() -> None:
        writer = next(writer_numbers)
        for number in range(each):
            result = services.allocate(commands.Allocate(f"o{writer}-{number}", "LAMP", 1))
            tokens.append(result.consistency_token)

    for thread in run_threads(write, writers):
        thread.join(timeout=120)

    assert all(not queries.freshness("allocations_for", token).stale for token in tokens)
    refreshes = RefreshState.objects.get(unit="allocations_view").refresh_count - before
    assert 1 <= refreshes < writers * each / 2
    assert verification.check_view("allocations_view").ok


def test_pace_rests_three_times_a_round_at_a_quarter_share(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(watcher_module.time, "monotonic", lambda: clock[0])
    pace = watcher_module.Pace(0.25)
    assert pace.rest() <= 0  # the first round starts at once

    pace.start()
    clock[0] += 0.02  # a round of refreshes took 20 ms
    pace.end()

    assert pace.rest() == pytest.approx(0.06)
    clock[0] += 0.06
    assert pace.rest() == pytest.approx(0)

    pace.start()
    clock[0] += 1.0  # a slow round: the rest is capped, to keep read-your-writes short
    pace.end()
    assert pace.rest() == pytest.approx(watcher_module.Pace.MAX_REST)
