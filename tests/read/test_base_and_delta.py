"""Base and delta views: a write refreshes only the rows it wrote, readers see exactly
the writes their token names, and a base rebuild folds the delta in without losing a
write made while it ran."""

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from orders_read import queries, rebuilds, refresh, verification
from orders_read.models import BaseState, RefreshState
from orders_read.read_models import READ_MODELS
from orders_write import commands, services
from tests.database import other_connection
from tests.factories import add_batch, place
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS = 60


def states() -> dict[str, RefreshState]:
    return {state.unit: state for state in RefreshState.objects.all()}


def dirty_keys() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM read_dirty_order), (SELECT count(*) FROM read_dirty_sku)"
        )
        return cursor.fetchone()


def allocate(orderid: str, sku: str, qty: int = 1):
    return services.allocate(commands.Allocate(orderid=orderid, sku=sku, qty=qty))


@pytest.fixture
def many_orders(settings):
    """ORDERS orders of two lines each, allocated, all folded into the bases."""
    settings.READ_MODEL_REFRESH = "async"  # no refresh per write while arranging
    add_batch("lamps", "LAMP", 10_000)
    add_batch("chairs", "CHAIR", 10_000)
    add_batch("rugs", "RUG", 10)
    for number in range(ORDERS):
        place(f"o{number}", ("LAMP", 1), ("CHAIR", 2))
        services.submit_order(commands.SubmitOrder(reference=f"o{number}"))
    outcomes = rebuilds.compact(READ_MODELS, wait=True)
    assert [outcome for outcome in outcomes if outcome.error] == []
    settings.READ_MODEL_REFRESH = "sync"


def test_a_write_refreshes_only_the_rows_of_what_it_wrote(many_orders):
    assert {unit: state.delta_row_count for unit, state in states().items()} == dict.fromkeys(
        READ_MODELS, 0
    )

    allocate("o7", "RUG")

    after = states()
    # The delta holds o7's rows (its three lines, its one new allocation, its summary,
    # a row saying it has no waiting line) and the rug batch and product: not the 120
    # orders' 240 lines.
    assert {unit: state.delta_row_count for unit, state in after.items()} == {
        "allocations_view": 3,
        "order_summary": 1,
        "order_lines_view": 3,
        "batch_availability": 1,
        "product_availability": 1,
        "line_days": 3,
        "waiting_lines": 1,
    }
    # ... while the state still counts every row readers see.
    assert {unit: state.row_count for unit, state in after.items()} == {
        "allocations_view": 2 * ORDERS + 1,
        "order_summary": ORDERS,
        "order_lines_view": 2 * ORDERS + 1,
        "batch_availability": 3,
        "product_availability": 3,
        "line_days": 2 * ORDERS + 1,
        "waiting_lines": 0,
    }


def test_a_token_read_sees_exactly_its_write_from_the_delta_and_the_rest_from_the_base(
    many_orders,
):
    result = allocate("o7", "RUG", 3)

    freshness = queries.freshness("order", result.consistency_token)

    assert not freshness.stale
    assert queries.allocations_for("o7") == [
        {"sku": "CHAIR", "batchref": "chairs"},
        {"sku": "LAMP", "batchref": "lamps"},
        {"sku": "RUG", "batchref": "rugs"},
    ]
    assert queries.allocations_for("o8") == [
        {"sku": "CHAIR", "batchref": "chairs"},
        {"sku": "LAMP", "batchref": "lamps"},
    ]
    assert queries.order("o7").total_quantity == 6
    assert queries.product("RUG").available == 7
    assert queries.orders().count() == ORDERS
    assert [check.view for check in verification.check_all() if not check.ok] == []


def test_an_order_whose_allocations_are_all_released_shows_none(many_orders):
    services.cancel_order(commands.CancelOrder(reference="o3"))

    # o3's rows in the base are hidden by its delta entry, which has no allocation.
    assert queries.allocations_for("o3") == []
    assert queries.order("o3").allocated_line_count == 0
    assert queries.product("LAMP").allocated == ORDERS - 1


def test_a_base_rebuild_empties_the_delta_and_forgets_the_keys_it_covers(many_orders):
    allocate("o7", "RUG")
    allocate("o8", "RUG")
    assert dirty_keys() == (2, 2)  # (o7, first write), (o8, second); RUG in each

    outcomes = rebuilds.compact(READ_MODELS, wait=True)

    assert [outcome for outcome in outcomes if outcome.error] == []
    assert {unit: state.delta_row_count for unit, state in states().items()} == dict.fromkeys(
        READ_MODELS, 0
    )
    assert dirty_keys() == (0, 0)
    bases = {base.unit: base for base in BaseState.objects.all()}
    assert bases["allocations_view"].row_count == 2 * ORDERS + 2
    assert queries.allocations_for("o8")[-1] == {"sku": "RUG", "batchref": "rugs"}
    assert [check.view for check in verification.check_all() if not check.ok] == []


def test_a_write_committed_while_a_base_is_rebuilt_stays_in_the_delta(many_orders, settings):
    # The write's own refresh of the view waits for the held lock too: let it give up
    # (recorded, repaired below) after a second rather than the default ten.
    settings.READ_MODEL_REFRESH_TIMEOUT = 1
    # Another session holds the base's lock: the rebuild takes its snapshot, then waits.
    blocker = other_connection()
    with blocker.cursor() as cursor:
        cursor.execute(f"REFRESH MATERIALIZED VIEW {READ_MODELS['allocations_view'].base}")
    rebuilt = []
    rebuild = threading.Thread(
        target=lambda: rebuilt.append(rebuilds.rebuild_base("allocations_view")), daemon=True
    )
    rebuild.start()
    try:
        wait_until(_rebuild_is_waiting, what="the rebuild to wait for the lock")
        result = allocate("o9", "RUG", 2)  # after the rebuild's snapshot
    finally:
        blocker.rollback()
        blocker.close()
    rebuild.join(timeout=30)

    assert rebuilt and rebuilt[0].refreshed
    refresh.refresh(["allocations_view"])
    assert not queries.freshness("allocations_for", result.consistency_token).stale
    assert queries.allocations_for("o9")[-1] == {"sku": "RUG", "batchref": "rugs"}
    assert dirty_keys()[0] == 1  # o9: its write is not in the new base, so still pending
    assert verification.check_view("allocations_view").ok


def _rebuild_is_waiting() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE query LIKE %s AND wait_event_type = 'Lock'"
            " AND datname = current_database()",
            [f"REFRESH MATERIALIZED VIEW%{READ_MODELS['allocations_view'].base}%"],
        )
        return cursor.fetchone()[0] == 1


def test_the_watcher_rebuilds_a_base_once_its_delta_outgrows_the_limit(many_orders, settings):
    from orders_read import watcher

    settings.READ_MODEL_DELTA_LIMIT = 5
    for number in range(4):
        allocate(f"o{number}", "RUG")
    assert states()["order_lines_view"].delta_row_count == 12
    before = {base.unit: base.rebuild_count for base in BaseState.objects.all()}
    stop = threading.Event()
    thread = threading.Thread(
        target=watcher.watch,
        args=(list(READ_MODELS),),
        kwargs={"interval": 60, "log": lambda line: None, "stop": stop},
        daemon=True,
    )
    thread.start()
    try:
        wait_until(
            lambda: states()["order_lines_view"].delta_row_count == 0,
            timeout=30,
            what="the watcher to fold the delta into the base",
        )
    finally:
        stop.set()
        thread.join(timeout=30)

    after = {base.unit: base.rebuild_count for base in BaseState.objects.all()}
    # Deltas of more than 5 rows were folded in; the one-row ones were left alone.
    assert {unit for unit in after if after[unit] > before[unit]} == {
        "allocations_view",
        "order_lines_view",
        "line_days",  # twelve lines, like order_lines_view
    }
    assert [check.view for check in verification.check_all() if not check.ok] == []


def test_a_bulk_load_records_no_dirty_keys():
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SET LOCAL quartermaster.bulk_load = 'on'")
        cursor.execute(
            "INSERT INTO orders_write_order (reference, customer_name, shipping_address,"
            " status, created_at) VALUES ('bulk', '', '', 'pending', now())"
        )
        cursor.execute("COMMIT")
    assert dirty_keys() == (0, 0)

    place("normal")

    assert dirty_keys() == (1, 0)


def test_refresh_views_compact_folds_every_delta_into_its_base(many_orders):
    allocate("o7", "RUG")
    out = StringIO()

    call_command("refresh_views", "--compact", stdout=out)

    rebuilt = [line.split(":")[0] for line in out.getvalue().splitlines() if "(base)" in line]
    assert rebuilt == [f"{unit} (base)" for unit in READ_MODELS]
    assert {unit: state.delta_row_count for unit, state in states().items()} == dict.fromkeys(
        READ_MODELS, 0
    )
    assert dirty_keys() == (0, 0)
    assert queries.allocations_for("o7")[-1] == {"sku": "RUG", "batchref": "rugs"}


def test_refresh_views_refuses_compact_and_full_together():
    with pytest.raises(CommandError, match="not allowed with argument"):
        call_command("refresh_views", "--compact", "--full")
