"""Faults on the read side: no committed write is lost, the state shows the error, and
the next refresh repairs."""

import pytest
from django.db import connection

from orders_read import queries, refresh, verification
from orders_read.models import RefreshState
from orders_write import commands, services
from tests.database import hold_view_lock, refresh_waiting_for_a_lock, run_threads
from tests.factories import add_batch
from tests.processes import Watcher
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_refresh_killed_midway_is_recorded_and_the_next_one_repairs(settings):
    settings.READ_MODEL_REFRESH_TIMEOUT = 30
    add_batch("lamps", "LAMP", 10)
    settings.READ_MODEL_REFRESH = "async"
    result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))
    blocker = hold_view_lock("allocations_view")
    outcomes = []
    try:
        [refresher] = run_threads(
            lambda: outcomes.extend(refresh.catch_up("allocations_view", [result.transaction_id])),
            1,
        )
        wait_until(
            lambda: refresh_waiting_for_a_lock("allocations_view") is not None,
            what="the refresh to start",
        )

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(%s)", [refresh_waiting_for_a_lock("allocations_view")]
            )
        refresher.join(timeout=30)
    finally:
        blocker.rollback()
        blocker.close()

    assert [outcome.refreshed for outcome in outcomes] == [False]
    state = RefreshState.objects.get(unit="allocations_view")
    assert state.dirty and state.last_error and state.last_error_at
    assert queries.allocations_for("o1") == []  # not shown, and not lost:
    assert services.allocate(commands.Allocate("o1", "LAMP", 2)).events == ()

    assert [outcome.refreshed for outcome in refresh.refresh_unit("allocations_view")] == [True]
    assert queries.freshness("allocations_for", result.consistency_token).stale is False
    assert queries.allocations_for("o1") == [{"sku": "LAMP", "batchref": "lamps"}]
    assert RefreshState.objects.get(unit="allocations_view").last_error == ""


def test_a_watcher_killed_and_restarted_catches_up(settings):
    settings.READ_MODEL_REFRESH = "async"
    settings.READ_MODEL_MAX_WAIT = 20
    add_batch("lamps", "LAMP", 10)
    first = Watcher(interval=60)
    assert first.ready.wait(timeout=60)
    first.process.kill()  # SIGKILL: no goodbye
    first.process.wait(timeout=30)

    results = [
        services.allocate(commands.Allocate(orderid=f"o{number}", sku="LAMP", qty=1))
        for number in range(3)
    ]
    second = Watcher(interval=60)
    try:
        assert second.ready.wait(timeout=60)
        freshness = queries.freshness("order", results[-1].consistency_token)
    finally:
        second.stop()

    assert freshness.stale is False
    assert [queries.allocations_for(f"o{number}") for number in range(3)] == [
        [{"sku": "LAMP", "batchref": "lamps"}]
    ] * 3
    assert all(check.ok for check in verification.check_all(["order_summary", "order_lines_view"]))
