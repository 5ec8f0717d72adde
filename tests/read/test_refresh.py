"""The refresh machinery on real PostgreSQL: once per transaction, coalescing, failures,
and consistency tokens that are exact."""

import itertools
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from orders_read import freshness, queries, refresh, verification
from orders_read.models import RefreshState
from orders_read.read_models import READ_MODELS
from orders_write import commands, domain, services
from tests.database import (
    hold_refresh_lock,
    hold_view_lock,
    refresh_waiting_for_a_lock,
    run_threads,
)
from tests.factories import add_batch, place
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def refresh_counts() -> dict[str, int]:
    return dict(RefreshState.objects.values_list("unit", "refresh_count"))


# --- once per view per transaction ---------------------------------------------------


def test_a_command_refreshes_each_view_it_touches_once():
    add_batch("lamps", "LAMP", 10)
    before = refresh_counts()

    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))

    after = refresh_counts()
    changed = {unit: after[unit] - before.get(unit, 0) for unit in after}
    assert changed == {
        "allocations_view": 1,
        "order_summary": 1,
        "order_lines_view": 1,
        "batch_availability": 1,
        "product_availability": 1,
        "line_days": 1,
        "waiting_lines": 1,
    }


def test_a_command_refreshes_only_the_views_its_events_touch():
    before = refresh_counts()

    services.create_product(commands.CreateProduct(sku="LAMP", name="Lamp"))

    after = refresh_counts()
    assert {unit for unit in after if after[unit] != before.get(unit, 0)} == {
        "product_availability"
    }


def test_several_commands_in_one_transaction_refresh_each_view_once():
    add_batch("lamps", "LAMP", 10)
    before = refresh_counts()

    with transaction.atomic():
        for orderid in ("o1", "o2", "o3"):
            services.allocate(commands.Allocate(orderid=orderid, sku="LAMP", qty=1))

    after = refresh_counts()
    assert {unit: after[unit] - before[unit] for unit in before} == dict.fromkeys(before, 1)
    assert len(queries.allocations_for("o3")) == 1


def test_a_rolled_back_command_refreshes_nothing():
    add_batch("lamps", "LAMP", 10)
    before = refresh_counts()

    with pytest.raises(RuntimeError), transaction.atomic():
        services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))
        raise RuntimeError("changed my mind")

    assert refresh_counts() == before
    assert freshness.units_behind() == []


def test_a_refused_command_refreshes_nothing():
    add_batch("lamps", "LAMP", 10)
    before = refresh_counts()

    with pytest.raises(domain.InvalidSku):
        services.allocate(commands.Allocate(orderid="o1", sku="NOPE", qty=2))

    assert refresh_counts() == before


# --- coalescing --------------------------------------------------------------------


class RefreshProbe:
    """Wraps the single-refresh step to count refreshes and how many overlap."""

    def __init__(self, monkeypatch, *, hold: threading.Event | None = None):
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.count = 0
        self.started = threading.Event()
        original = refresh._refresh_once

        def probed(unit, **kwargs):
            with self.lock:
                self.running += 1
                self.count += 1
                self.most_at_once = max(self.most_at_once, self.running)
            self.started.set()
            try:
                if hold is not None:
                    assert hold.wait(timeout=30)
                return original(unit, **kwargs)
            finally:
                with self.lock:
                    self.running -= 1

        monkeypatch.setattr(refresh, "_refresh_once", probed)


_write_numbers = itertools.count()


def committed_writes(count: int, settings) -> list[int]:
    """The transactions of ``count`` committed writes that touch order_summary, made in
    async mode with no watcher running, so that no refresh includes them yet."""
    mode, settings.READ_MODEL_REFRESH = settings.READ_MODEL_REFRESH, "async"
    try:
        return [place(f"w{next(_write_numbers)}").transaction_id for _ in range(count)]
    finally:
        settings.READ_MODEL_REFRESH = mode


def waiting_for_the_refresh_lock() -> int:
    """Other sessions queued for a read model's advisory lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid = %s",
            [refresh.LOCK_NAMESPACE],
        )
        return cursor.fetchone()[0]


def test_writers_arriving_during_a_refresh_wait_for_it_and_share_one_follow_up(
    monkeypatch, settings
):
    [first_write] = committed_writes(1, settings)
    probe = RefreshProbe(monkeypatch)
    blocker = hold_view_lock("order_summary")  # the first refresh waits, in its snapshot
    [first] = run_threads(lambda: refresh.catch_up("order_summary", [first_write]), 1)
    wait_until(refresh_waiting_for_a_lock, what="the refresh to take its snapshot and wait")

    # Twenty writes commit after the first refresh's snapshot; their writers queue
    # behind it rather than refreshing beside it.
    latecomers = committed_writes(20, settings)
    waiters = run_threads(lambda: refresh.catch_up("order_summary", [latecomers.pop()]), 20)
    wait_until(lambda: waiting_for_the_refresh_lock() == 20, what="the writers to queue")
    assert probe.count == 1

    blocker.rollback()
    blocker.close()
    for thread in [first, *waiters]:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in [first, *waiters])

    # The first refresh did not show their writes; one follow-up showed them all.
    assert probe.count == 2
    assert probe.most_at_once == 1
    assert freshness.units_behind(["order_summary"]) == []


def test_writers_asking_at_once_are_served_by_one_refresh(monkeypatch, settings):
    writes = committed_writes(30, settings)
    probe = RefreshProbe(monkeypatch)
    barrier = threading.Barrier(30)

    def request():
        transaction_id = writes.pop()
        barrier.wait(timeout=30)
        refresh.request_refresh(["order_summary"], transaction_id)

    for thread in run_threads(request, 30):
        thread.join(timeout=60)

    # Every write had committed before the first refresh began: it showed them all.
    assert probe.count == 1
    assert freshness.units_behind(["order_summary"]) == []


def test_a_write_committed_during_a_refresh_is_covered_by_the_next_one(settings):
    [early] = committed_writes(1, settings)
    before = refresh_counts()["order_summary"]
    blocker = hold_view_lock("order_summary")
    [refresher] = run_threads(lambda: refresh.catch_up("order_summary", [early]), 1)
    wait_until(refresh_waiting_for_a_lock, what="the refresh to take its snapshot and wait")

    written = []
    # Committed after the refresh's snapshot; in sync mode it queues behind that refresh.
    [writer] = run_threads(lambda: written.append(place("during")), 1)
    wait_until(lambda: waiting_for_the_refresh_lock() == 1, what="the writer to queue")
    blocker.rollback()
    blocker.close()
    for thread in (refresher, writer):
        thread.join(timeout=30)
    [result] = written

    assert refresh_counts()["order_summary"] - before == 2
    token = result.consistency_token
    assert queries.freshness("order", token).stale is False
    assert queries.order("during").reference == "during"


def test_a_writer_kept_waiting_too_long_leaves_the_refresh_owed(settings):
    [write] = committed_writes(1, settings)
    holder = hold_refresh_lock("order_summary")
    try:
        before = refresh_counts().get("order_summary", 0)
        assert refresh.catch_up("order_summary", [write], max_wait=0.2) == []
        # It gave up waiting for the lock's holder, and said so in the state.
        assert refresh_counts()["order_summary"] == before
        assert RefreshState.objects.get(unit="order_summary").dirty
        assert freshness.units_behind(["order_summary"]) == ["order_summary"]
    finally:
        holder.close()
    # Whoever takes the lock next finds the request waiting for it.
    assert [outcome.refreshed for outcome in refresh.refresh_unit("order_summary", wait=True)] == [
        True
    ]
    assert freshness.units_behind(["order_summary"]) == []


def test_under_concurrent_writers_one_refresh_covers_several_writes():
    add_batch("lamps", "LAMP", 10_000)
    before = refresh_counts()["allocations_view"]
    writers, each = 8, 10

    writer_numbers = itertools.count()

    def write() -> None:
        writer = next(writer_numbers)
        for number in range(each):
            services.allocate(commands.Allocate(f"o{writer}-{number}", "LAMP", 1))

    for thread in run_threads(write, writers):
        thread.join(timeout=120)

    refreshes = refresh_counts()["allocations_view"] - before
    assert refreshes < writers * each
    assert freshness.units_behind() == []
    assert verification.check_view("allocations_view").ok


# --- several units together (the watcher's rounds) ----------------------------------


def allocate_unrefreshed(settings, orderid: str) -> services.CommandResult:
    """An allocate in async mode with no watcher running: no refresh shows it yet."""
    mode, settings.READ_MODEL_REFRESH = settings.READ_MODEL_REFRESH, "async"
    try:
        return services.allocate(commands.Allocate(orderid=orderid, sku="LAMP", qty=2))
    finally:
        settings.READ_MODEL_REFRESH = mode


def test_the_units_of_a_write_are_refreshed_together_and_show_it_exactly(settings):
    add_batch("lamps", "LAMP", 10)
    result = allocate_unrefreshed(settings, "o1")
    units = sorted(READ_MODELS)
    assert sorted(freshness.units_behind()) == units

    outcomes = refresh.catch_up_together({unit: [result.transaction_id] for unit in units})

    assert sorted(outcome.unit for outcome in outcomes if outcome.refreshed) == units
    # One transaction: every unit shows the database as of the same moment.
    assert len(set(RefreshState.objects.values_list("snapshot", flat=True))) == 1
    assert freshness.units_behind() == []
    assert all(verification.check_view(unit).ok for unit in units)
    assert queries.freshness("order", result.consistency_token).stale is False
    assert queries.allocations_for("o1") == [{"sku": "LAMP", "batchref": "lamps"}]
    # Asked again for the same write: nothing left to do.
    assert refresh.catch_up_together({unit: [result.transaction_id] for unit in units}) == []


def test_a_unit_another_refresher_holds_is_left_to_it_while_the_others_refresh(settings):
    add_batch("lamps", "LAMP", 10)
    result = allocate_unrefreshed(settings, "o1")
    holder = hold_refresh_lock("order_summary")
    try:
        outcomes = refresh.catch_up_together(
            {unit: [result.transaction_id] for unit in READ_MODELS}, max_wait=0.2
        )
        # The others were refreshed; order_summary waited for its holder as catch_up
        # does, gave up, and is owed to whoever comes next.
        assert sorted(outcome.unit for outcome in outcomes) == sorted(
            set(READ_MODELS) - {"order_summary"}
        )
        assert freshness.units_behind() == ["order_summary"]
        assert RefreshState.objects.get(unit="order_summary").dirty
    finally:
        holder.close()
    # Whoever takes the lock next (once the holder's session has ended) does it.
    assert [outcome.refreshed for outcome in refresh.refresh_unit("order_summary", wait=True)] == [
        True
    ]
    assert freshness.units_behind() == []


def test_one_unit_failing_does_not_hold_back_the_others_refreshed_with_it(settings):
    settings.READ_MODEL_REFRESH_TIMEOUT = 0.2
    add_batch("lamps", "LAMP", 10)
    result = allocate_unrefreshed(settings, "o1")
    blocker = hold_view_lock("allocations_view")
    try:
        outcomes = refresh.catch_up_together(
            {unit: [result.transaction_id] for unit in READ_MODELS}
        )
    finally:
        blocker.rollback()
        blocker.close()

    failed = {outcome.unit for outcome in outcomes if outcome.error}
    refreshed = {outcome.unit for outcome in outcomes if outcome.refreshed}
    assert failed == {"allocations_view"}
    assert refreshed == set(READ_MODELS) - failed
    state = RefreshState.objects.get(unit="allocations_view")
    assert "timeout" in state.last_error and state.dirty
    assert freshness.units_behind() == ["allocations_view"]
    assert queries.order("o1").allocated_line_count == 1

    refresh.refresh_unit("allocations_view")
    assert freshness.units_behind() == []
    assert queries.allocations_for("o1") == [{"sku": "LAMP", "batchref": "lamps"}]


# --- failures ----------------------------------------------------------------------


def test_a_failed_refresh_keeps_the_command_and_the_next_refresh_repairs(settings):
    settings.READ_MODEL_REFRESH_TIMEOUT = 0.2
    add_batch("lamps", "LAMP", 10)
    blocker = hold_view_lock("allocations_view")
    try:
        result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))
    finally:
        blocker.rollback()
        blocker.close()

    # The command stands; the failure is recorded and the view still owes the write.
    assert result.events[-1] == services.events.Allocated("o1", "LAMP", 2, "lamps")
    state = RefreshState.objects.get(unit="allocations_view")
    assert "timeout" in state.last_error
    assert state.last_error_at is not None
    assert state.dirty
    assert not verification.check_view("allocations_view").ok
    # Views it did not block were refreshed as usual.
    assert RefreshState.objects.get(unit="order_summary").last_error == ""

    refresh.refresh_unit("allocations_view")

    state.refresh_from_db()
    assert (state.last_error, state.dirty) == ("", False)
    assert verification.check_view("allocations_view").ok
    assert queries.allocations_for("o1") == [{"sku": "LAMP", "batchref": "lamps"}]


# --- consistency tokens ------------------------------------------------------------


def test_a_token_read_after_a_sync_write_sees_it_at_once():
    add_batch("lamps", "LAMP", 10)
    result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))

    freshness = queries.freshness("allocations_for", result.consistency_token)

    assert freshness.stale is False
    assert freshness.refreshed_at is not None
    assert queries.allocations_for("o1") == [{"sku": "LAMP", "batchref": "lamps"}]


def test_a_token_of_a_command_that_changed_nothing_is_read_at_once(settings):
    settings.READ_MODEL_MAX_WAIT = 5
    add_batch("lamps", "LAMP", 10)
    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))
    again = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))
    assert again.events == ()  # rule 3: nothing to refresh

    freshness = queries.freshness("allocations_for", again.consistency_token)

    assert freshness.stale is False


def test_a_token_needs_only_the_views_its_write_touched(settings):
    settings.READ_MODEL_REFRESH = "async"  # and no watcher runs
    settings.READ_MODEL_MAX_WAIT = 0.3
    result = services.create_product(commands.CreateProduct("LAMP", "Desk lamp", Decimal(1)))

    # A new product changes no order: the order views show this write as they are.
    assert queries.freshness("order", result.consistency_token).stale is False
    # The product's view does not show it until it is refreshed.
    assert queries.freshness("product", result.consistency_token).stale is True
    refresh.refresh(READ_MODELS)
    assert queries.freshness("product", result.consistency_token).stale is False


def test_without_a_refresh_a_token_read_answers_stale_after_the_maximum_wait(settings):
    settings.READ_MODEL_REFRESH = "async"  # and no watcher runs
    settings.READ_MODEL_MAX_WAIT = 0.3
    add_batch("lamps", "LAMP", 10)
    result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))

    started = time.monotonic()
    freshness = queries.freshness("allocations_for", result.consistency_token)

    assert freshness.stale is True
    assert time.monotonic() - started >= 0.3
    assert queries.allocations_for("o1") == []


def test_a_token_read_waits_for_a_refresh_that_comes_later(settings):
    settings.READ_MODEL_REFRESH = "async"
    settings.READ_MODEL_MAX_WAIT = 20
    add_batch("lamps", "LAMP", 10)
    result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))
    outcome = {}

    def read():
        try:
            token = result.consistency_token
            outcome["freshness"] = queries.freshness("allocations_for", token)
            outcome["rows"] = queries.allocations_for("o1")
        finally:
            connection.close()

    [reader] = run_threads(read, 1)
    wait_until(lambda: reader.is_alive() and _reader_waiting(), what="the reader to wait")
    refresh.refresh(["allocations_view"])
    reader.join(timeout=30)

    assert outcome["freshness"].stale is False
    assert outcome["rows"] == [{"sku": "LAMP", "batchref": "lamps"}]


def _reader_waiting() -> bool:
    """Another session sits idle after checking the refresh state: waiting for a refresh."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            " AND state = 'idle' AND query LIKE %s AND datname = current_database()",
            [f"EXECUTE {freshness.COVERAGE.name} %"],
        )
        return cursor.fetchone()[0] > 0


def test_a_write_committed_after_the_refresh_snapshot_is_not_reported_as_included(settings):
    settings.READ_MODEL_REFRESH = "async"
    settings.READ_MODEL_MAX_WAIT = 0.2
    add_batch("lamps", "LAMP", 10)
    # A write the refresh has to show, so that it waits for the view's lock in its snapshot.
    services.allocate(commands.Allocate(orderid="o0", sku="LAMP", qty=1))
    blocker = hold_view_lock("allocations_view")
    outcomes = []
    [refresher] = run_threads(lambda: outcomes.append(refresh._refresh_once("allocations_view")), 1)
    wait_until(refresh_waiting_for_a_lock, what="the refresh to take its snapshot and wait")

    # Committed after the refresh's snapshot, and before the refresh ends.
    result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))
    blocker.rollback()
    blocker.close()
    refresher.join(timeout=30)

    assert outcomes[0].refreshed
    token = result.consistency_token
    assert queries.freshness("allocations_for", token).stale is True
    assert queries.allocations_for("o1") == []

    refresh.refresh(["allocations_view"])
    assert queries.freshness("allocations_for", token).stale is False
    assert queries.allocations_for("o1") == [{"sku": "LAMP", "batchref": "lamps"}]


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("garbage", "Malformed consistency token"),
        ("qm1-", "Malformed consistency token"),
        ("qm1-12x", "Malformed consistency token"),
        ("qm1-" + "9" * 30, "Malformed consistency token"),
        ("qm1-999999999999", "Unknown consistency token"),
    ],
)
def test_a_token_not_issued_here_is_refused_with_a_clear_message(token, message):
    with pytest.raises(freshness.InvalidToken, match=message):
        queries.freshness("orders", token)


def test_units_behind_follow_the_event_log(settings):
    settings.READ_MODEL_REFRESH = "async"
    refresh.refresh(READ_MODELS)
    assert freshness.units_behind() == []

    place("o1")  # an order without lines touches the order views only

    assert set(freshness.units_behind()) == {
        "order_summary",
        "order_lines_view",
        "line_days",
        "waiting_lines",
    }


def test_a_unit_missing_a_write_is_behind_even_without_its_dirty_mark(settings):
    settings.READ_MODEL_REFRESH = "async"
    refresh.refresh(READ_MODELS)
    add_batch("lamps", "LAMP", 10)
    # As if the process died between the commit and marking the views dirty.
    RefreshState.objects.update(dirty=False)

    assert set(freshness.units_behind()) == {"batch_availability", "product_availability"}


def test_an_operator_refresh_without_a_time_limit_waits_out_a_lock(settings):
    settings.READ_MODEL_REFRESH_TIMEOUT = 0.2  # what a refresh after a write would allow
    committed_writes(1, settings)  # something to refresh, so that it needs the view's lock
    blocker = hold_view_lock("order_summary")
    outcomes = []
    [refresher] = run_threads(
        lambda: outcomes.extend(refresh.refresh(["order_summary"], timeout=0)), 1
    )
    wait_until(refresh_waiting_for_a_lock, what="the refresh to wait for the lock")
    blocker.rollback()
    blocker.close()
    refresher.join(timeout=30)

    assert [(outcome.refreshed, outcome.error) for outcome in outcomes] == [(True, None)]


def test_refresh_views_refuses_a_negative_timeout():
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--timeout must not be negative"):
        call_command("refresh_views", "--timeout", "-1")


@pytest.mark.parametrize("snapshot", ["100:105:101,103", "100:100:", "7:9:8"])
def test_snapshot_shows_what_postgresql_says_is_visible(snapshot):
    with connection.cursor() as cursor:
        for transaction_id in range(5, 108):
            cursor.execute(
                "SELECT pg_visible_in_snapshot(%s::text::xid8, %s::pg_snapshot)",
                [str(transaction_id), snapshot],
            )
            expected = cursor.fetchone()[0]
            assert refresh.snapshot_shows(snapshot, transaction_id) == expected, transaction_id
    assert refresh.snapshot_shows("", 1) is False  # never refreshed: shows nothing
