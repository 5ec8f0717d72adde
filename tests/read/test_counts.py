"""The orders' counts per status kept with ``order_summary``: exact after every kind of
command, across base rebuilds and compactions, seen by a query that waited for its
write's token; filtered counts equal to counting the list; and ``check_read_models``
finding a kept count that is wrong."""

import threading
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from orders_read import queries, rebuilds, refresh, verification
from orders_read.models import OrderSummary, RefreshState
from orders_read.read_models import READ_MODELS
from orders_write import commands, services
from orders_write.models import Order
from tests.factories import add_batch, place, submit
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

STATUSES = ("pending", "submitted", "cancelled")


def true_counts() -> dict[str, int]:
    """Orders per status, on the write tables."""
    return dict(Counter(Order.objects.values_list("status", flat=True)))


def assert_counts_exact() -> None:
    truth = true_counts()
    assert queries.kept_counts("order_summary") == truth
    assert queries.order_count() == sum(truth.values())
    for status in STATUSES:
        assert queries.order_count(filters={"status": status}) == truth.get(status, 0)


def test_counts_per_status_are_exact_after_every_kind_of_command():
    add_batch("lamps", "LAMP", 20)
    add_batch("chairs", "CHAIR", 20)
    assert_counts_exact()
    steps = [
        lambda: place("o1", ("LAMP", 1)),
        lambda: place("o2", ("LAMP", 2), ("CHAIR", 1)),
        lambda: submit("o1"),
        lambda: services.cancel_order(commands.CancelOrder("o2")),
        # Allocate to an unknown reference creates a submitted order.
        lambda: services.allocate(commands.Allocate(orderid="o3", sku="LAMP", qty=1)),
        lambda: services.add_line(commands.AddLine(reference="o1", sku="CHAIR", qty=2)),
        lambda: services.change_line_quantity(
            commands.ChangeLineQuantity(reference="o1", sku="CHAIR", qty=3)
        ),
        lambda: services.remove_line(commands.RemoveLine(reference="o1", sku="CHAIR")),
        lambda: services.deallocate(commands.Deallocate(orderid="o3", sku="LAMP")),
        lambda: services.change_batch_quantity(commands.ChangeBatchQuantity(ref="lamps", qty=1)),
        lambda: place("o4", ("CHAIR", 1)),
        lambda: services.cancel_order(commands.CancelOrder("o4")),
    ]
    for step in steps:
        step()
        assert_counts_exact()
    assert true_counts() == {"submitted": 2, "cancelled": 2}


def test_counts_stay_exact_across_base_rebuilds_and_compactions():
    add_batch("lamps", "LAMP", 100)
    for number in range(6):
        place(f"o{number}", ("LAMP", 1))
    assert_counts_exact()
    assert [outcome for outcome in rebuilds.compact(["order_summary"]) if outcome.error] == []
    assert_counts_exact()

    submit("o1")
    services.cancel_order(commands.CancelOrder("o2"))
    # A base rebuilt alone, then refreshed key by key (not whole): the state's counts
    # still change by the rows readers saw of each written key.
    rebuilt = rebuilds.rebuild_base("order_summary")
    assert rebuilt is not None and not rebuilt.error
    place("o9", ("LAMP", 1))
    submit("o3")
    assert_counts_exact()

    assert [outcome for outcome in rebuilds.compact(["order_summary"]) if outcome.error] == []
    assert_counts_exact()
    assert [outcome for outcome in rebuilds.rebuild(["order_summary"]) if outcome.error] == []
    assert_counts_exact()
    assert true_counts() == {"pending": 4, "submitted": 2, "cancelled": 1}


def test_a_rewritten_delta_counts_afresh_when_the_bases_counts_are_not_its_own():
    place("o1")
    place("o2")
    # As a migration that recreates the read model leaves it: the base's counts belong
    # to an older base.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE read_model_base_state SET value_counts = '{\"pending\": 99}',"
            " value_counts_snapshot = 'older' WHERE unit = 'order_summary'"
        )
    refresh.mark_dirty(["order_summary"])

    outcomes = refresh.refresh_unit("order_summary", wait=True, full=True)

    assert [outcome for outcome in outcomes if outcome.error] == []
    assert_counts_exact()


def test_counts_unknown_before_a_first_refresh_are_counted_on_the_view():
    place("o1")
    RefreshState.objects.filter(unit="order_summary").update(row_count=None)

    assert queries.kept_counts("order_summary") is None
    assert queries.order_count() == 1
    assert queries.order_count(filters={"status": "pending"}) == 1

    place("o2")  # its refresh rewrites the delta whole and counts afresh
    assert_counts_exact()


def test_a_query_that_waits_for_a_writes_token_counts_that_write(settings):
    settings.READ_MODEL_REFRESH = "async"  # no refresh in the request; nothing watches
    settings.READ_MODEL_MAX_WAIT = 20
    place("o1")
    refresh.refresh(READ_MODELS)
    result = place("o2")
    assert queries.order_count(filters={"status": "pending"}) == 1  # not refreshed yet

    refreshed = threading.Thread(target=_refresh_in_another_session, daemon=True)
    refreshed.start()
    try:
        freshness = queries.freshness("orders", result.consistency_token)
        counted = queries.order_count(filters={"status": "pending"})
    finally:
        refreshed.join(timeout=30)

    assert not freshness.stale
    assert counted == 2


def _refresh_in_another_session() -> None:
    try:
        wait_until(_someone_waits_for_a_refresh, what="the query to wait for its write")
        refresh.refresh(queries.VIEWS["orders"])
    finally:
        connection.close()


def _someone_waits_for_a_refresh() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state = 'idle'"
            " AND (query ILIKE %s OR query ILIKE %s)",
            ["%LISTEN%", "%read_model_coverage%"],
        )
        return cursor.fetchone()[0] > 0


FILTERS = [
    {"customer": "ada"},
    {"customer": "ADA", "status": "pending"},
    {"search": "o1"},
    {"search": "grace", "status": "cancelled"},
    {"waiting": "true"},
    {"waiting": "false", "status": "submitted"},
    {"status": "submitted", "ordering": "-total_amount"},
    {"ordering": "customer_name"},
    {},
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda filters: repr(filters))
def test_a_filtered_count_is_the_number_of_orders_the_list_holds(filters):
    add_batch("lamps", "LAMP", 3)
    place("o1", ("LAMP", 2), customer="Ada Lovelace")
    place("o10", ("LAMP", 2), customer="Grace Hopper")
    place("o2", ("LAMP", 1), customer="Grace Hopper")
    place("o3", ("LAMP", 1), customer="Ada Byron")
    submit("o1")
    submit("o10")  # waits: o1 took the lamps it needs
    services.cancel_order(commands.CancelOrder("o2"))

    assert queries.order_count(filters=filters) == queries.orders(filters=filters).count()
    assert queries.order_count(filters=filters) == _counted_by_hand(filters)


def _counted_by_hand(filters: dict[str, str]) -> int:
    rows = list(OrderSummary.objects.all())
    if "status" in filters:
        rows = [row for row in rows if row.status == filters["status"]]
    if "customer" in filters:
        rows = [row for row in rows if filters["customer"].lower() in row.customer_name.lower()]
    if "search" in filters:
        needle = filters["search"].lower()
        rows = [
            row
            for row in rows
            if needle in row.reference.lower() or needle in row.customer_name.lower()
        ]
    if "waiting" in filters:
        rows = [row for row in rows if row.is_waiting == (filters["waiting"] == "true")]
    return len(rows)


CUSTOMERS = [
    "Ada Lovelace",
    "Grace Hopper",
    "Élodie Dupont",
    "Sale 50% off",
    "a_b Trading",
    "Back\\slash Ltd",
]
# Values of every length, in another case, across words, with LIKE's own characters
# (%, _ and a backslash) and letters beyond ASCII.
TEXT_FILTERS = [
    "a",
    "Ad",
    "ada",
    "HOPPER",
    "e h",
    "élo",
    "ÉLODIE",
    "0%",
    "50% off",
    "a_b",
    "_",
    "k\\s",
    "o1",
    "o10",
    "missing",
]


def _place_named_orders() -> None:
    """Two orders per customer, one in the base and one written after it was rebuilt
    (in the delta), and an order of the base changed since (its row in the delta)."""
    for number, customer in enumerate(CUSTOMERS):
        place(f"o{number}", customer=customer)
    rebuilds.rebuild(READ_MODELS)
    for number, customer in enumerate(CUSTOMERS, start=len(CUSTOMERS)):
        place(f"o{number}", customer=customer)
    services.cancel_order(commands.CancelOrder("o1"))  # an order of the base, changed


@pytest.mark.parametrize("value", TEXT_FILTERS)
def test_customer_and_search_counts_are_exact_in_any_case_on_base_and_delta(value):
    _place_named_orders()

    for filters in (
        {"customer": value},
        {"search": value},
        {"customer": value, "status": "pending"},
    ):
        expected = _counted_by_hand(filters)
        assert queries.order_count(filters=filters) == expected, filters
        on_trigrams = list(queries.orders(filters=filters, matching=0))
        in_order = list(queries.orders(filters=filters, matching=10**9))
        assert len(on_trigrams) == expected, filters
        assert [row.reference for row in on_trigrams] == [row.reference for row in in_order]


def _plan(sql: str) -> str:
    """PostgreSQL's plan of ``sql`` when it may not read a table whole."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def _count_sql(filters: dict[str, str]) -> str:
    with CaptureQueriesContext(connection) as captured:
        queries.order_count(filters=filters)
    (sql,) = [query["sql"] for query in captured if "COUNT(" in query["sql"].upper()]
    return sql


@pytest.mark.parametrize(
    ("filters", "indexes"),
    [
        ({"customer": "hopper"}, ["customer_trigrams"]),
        ({"search": "o12"}, ["customer_trigrams", "reference_trigrams"]),
        ({"customer": "ho"}, []),  # shorter than a trigram: nothing to look up
    ],
)
def test_customer_and_search_counts_look_their_orders_up_on_the_trigram_indexes(filters, indexes):
    _place_named_orders()

    plan = _plan(_count_sql(filters))

    used = sorted(
        name
        for name in ("customer_trigrams", "reference_trigrams")
        if f"order_summary_base_{name}" in plan
    )
    assert used == indexes, plan


def test_a_filter_that_cannot_be_applied_is_refused_by_the_count():
    with pytest.raises(queries.InvalidFilters) as refused:
        queries.order_count(filters={"status": "lost"})

    assert "status" in refused.value.errors


def test_check_read_models_finds_a_kept_count_that_is_wrong():
    place("o1")
    place("o2")
    assert verification.check_view("order_summary").ok
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE read_model_state SET value_counts = '{\"pending\": 3}'"
            " WHERE unit = 'order_summary'"
        )

    check = verification.check_view("order_summary")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("check_read_models", "order_summary", stdout=out)

    assert check.count_differences == {"pending": (3, 2)}
    assert "count of 'pending': kept 3, true 2" in out.getvalue()


def test_a_refresh_after_a_base_rebuilt_over_unrefreshed_writes_counts_them(settings):
    settings.READ_MODEL_REFRESH = "async"  # the writes wait for the refresh below
    add_batch("lamps", "LAMP", 10)
    place("o1", ("LAMP", 1))
    place("o2", ("LAMP", 1))
    refresh.refresh(["order_summary"])
    submit("o1")
    place("o3", ("LAMP", 1))
    # The new base holds the writes that no refresh has counted yet: counting them by
    # what readers see of them now (the new base's rows) would miss them.
    rebuilt = rebuilds.rebuild_base("order_summary")
    assert rebuilt is not None and not rebuilt.error

    outcomes = refresh.refresh(["order_summary"])

    assert [outcome for outcome in outcomes if outcome.error] == []
    assert_counts_exact()
    assert RefreshState.objects.get(unit="order_summary").row_count == 3
