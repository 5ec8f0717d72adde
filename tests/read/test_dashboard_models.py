"""The dashboard's read models and selector: order lines with the days they were ordered
and allocated, the lines waiting for stock, and what the dashboard makes of them. Expectations are
worked out by hand; the check against the defining queries closes each test."""

import datetime
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.utils import timezone

from orders_read import queries, verification
from orders_read.models import LineDay, WaitingLine
from orders_write import commands, services
from tests.factories import add_batch, place

pytestmark = pytest.mark.django_db(transaction=True)

TODAY = datetime.date(2026, 11, 24)
DASHBOARD_MODELS = ["line_days", "waiting_lines"]


@pytest.fixture(autouse=True)
def catalogue():
    for sku, name in [
        ("LAMP", "Desk lamp"),
        ("CHAIR", "Chair"),
        ("RUG", "Rug"),
        ("TABLE", "Table"),
    ]:
        services.create_product(commands.CreateProduct(sku=sku, name=name, price=Decimal(10)))


@contextmanager
def on(day: datetime.date, hour: int = 12):
    """Commands run as if at ``hour`` o'clock UTC on ``day`` (their timestamps say so)."""
    moment = datetime.datetime.combine(day, datetime.time(hour), tzinfo=datetime.UTC)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timezone, "now", lambda: moment)
        yield


def days_ago(count: int) -> datetime.date:
    return TODAY - datetime.timedelta(days=count)


def submit(reference: str):
    return services.submit_order(commands.SubmitOrder(reference=reference))


def cancel(reference: str):
    return services.cancel_order(commands.CancelOrder(reference=reference))


def line_days(sku: str | None = None) -> list[tuple]:
    """(SKU, quantity, day ordered, day allocated) of each line."""
    rows = LineDay.objects.order_by("ordered_on", "sku", "qty")
    if sku is not None:
        rows = rows.filter(sku=sku)
    return list(rows.values_list("sku", "qty", "ordered_on", "allocated_on"))


def waiting() -> list[tuple]:
    return list(WaitingLine.objects.order_by("orderid", "sku").values_list("orderid", "sku", "qty"))


def assert_views_are_the_truth() -> None:
    assert [check.view for check in verification.check_all(DASHBOARD_MODELS) if not check.ok] == []


def test_a_line_is_ordered_on_the_day_its_order_was_placed_cancelled_or_not():
    with on(days_ago(3)):
        place("o1", ("LAMP", 2), ("CHAIR", 1))
        place("o2", ("LAMP", 5))
    with on(days_ago(1)):
        place("o3", ("LAMP", 4))
        cancel("o2")  # cancelled two days after it was placed: its day keeps its units

    assert line_days() == [
        ("CHAIR", 1, days_ago(3), None),
        ("LAMP", 2, days_ago(3), None),
        ("LAMP", 5, days_ago(3), None),
        ("LAMP", 4, days_ago(1), None),
    ]
    assert_views_are_the_truth()


def test_a_line_is_allocated_on_the_day_of_its_allocation_while_it_holds_its_stock():
    with on(days_ago(5)):
        add_batch("lamps", "LAMP", 100)
        place("o1", ("LAMP", 2))
        place("o2", ("LAMP", 3))
    with on(days_ago(2)):
        submit("o1")
        submit("o2")
    with on(days_ago(1)):
        cancel("o2")  # releases its 3: no longer allocated

    assert line_days("LAMP") == [
        ("LAMP", 2, days_ago(5), days_ago(2)),
        ("LAMP", 3, days_ago(5), None),
    ]
    assert_views_are_the_truth()


def test_a_day_is_a_utc_date():
    with on(days_ago(2), hour=23):
        place("late", ("LAMP", 1))
    with on(days_ago(1), hour=0):
        place("early", ("LAMP", 2))

    assert line_days("LAMP") == [("LAMP", 1, days_ago(2), None), ("LAMP", 2, days_ago(1), None)]


def test_waiting_lines_are_the_unallocated_lines_of_submitted_orders():
    add_batch("lamps", "LAMP", 3)
    place("pending", ("LAMP", 10))  # not submitted: it waits for nothing yet
    place("o1", ("LAMP", 2), ("CHAIR", 4))
    place("o2", ("LAMP", 5))
    place("o3", ("CHAIR", 1))

    submit("o1")  # LAMP fits, CHAIR has no batch
    submit("o2")  # 1 lamp left: waits
    submit("o3")

    assert waiting() == [("o1", "CHAIR", 4), ("o2", "LAMP", 5), ("o3", "CHAIR", 1)]
    assert_views_are_the_truth()


def test_a_cancel_and_arriving_stock_take_lines_off_the_waiting_list():
    place("o1", ("CHAIR", 4))
    place("o2", ("CHAIR", 1), ("RUG", 1))
    submit("o1")
    submit("o2")

    cancel("o1")
    add_batch("chairs", "CHAIR", 10)  # back-orders: o2's chair is allocated

    assert waiting() == [("o2", "RUG", 1)]
    assert_views_are_the_truth()


# --- the dashboard selector ------------------------------------------------------------


def test_the_dashboard_shows_thirty_days_ending_today_with_days_without_orders_at_zero():
    with on(days_ago(40)):
        place("old", ("LAMP", 9))  # before the window
    with on(days_ago(29)):
        place("first", ("LAMP", 1))
    with on(TODAY):
        add_batch("lamps", "LAMP", 100)
        place("today", ("LAMP", 2))
        submit("today")

    board = queries.dashboard(today=TODAY)

    assert len(board.days) == 30
    assert (board.first_day, board.last_day) == (days_ago(29), TODAY)
    assert [(day.day, day.ordered, day.allocated) for day in board.days if day.ordered] == [
        (days_ago(29), 1, 0),
        (TODAY, 2, 2),
    ]
    assert sum(day.ordered for day in board.days) == 3


def test_days_roll_on_without_any_write():
    with on(TODAY):
        place("o1", ("LAMP", 2))

    # Read later, with nothing written since: the same rows, seen from a later today.
    assert sum(day.ordered for day in queries.dashboard(today=TODAY).days) == 2
    later = TODAY + datetime.timedelta(days=30)
    assert sum(day.ordered for day in queries.dashboard(today=later).days) == 0
    assert queries.dashboard(today=later).top_products == []


def test_top_products_are_the_most_ordered_in_the_last_thirty_days():
    with on(days_ago(45)):
        place("old", ("CHAIR", 100))  # too long ago to count
    with on(days_ago(3)):
        place("o1", ("LAMP", 3), ("CHAIR", 2), ("RUG", 3))

    board = queries.dashboard(today=TODAY)

    assert [(product.sku, product.name, product.ordered) for product in board.top_products] == [
        ("LAMP", "Desk lamp", 3),
        ("RUG", "Rug", 3),  # as many as LAMP: by SKU then
        ("CHAIR", "Chair", 2),
    ]


def test_out_of_stock_is_nothing_available_and_running_low_is_less_than_a_weeks_orders():
    with on(days_ago(10)):
        add_batch("lamps", "LAMP", 20)
        add_batch("chairs", "CHAIR", 5)
        add_batch("rugs", "RUG", 100)
        add_batch("tables", "TABLE", 1)
        place("long-ago", ("TABLE", 1))
        submit("long-ago")  # TABLE: nothing left, nothing ordered lately
    with on(days_ago(2)):
        place("o1", ("LAMP", 12), ("CHAIR", 5), ("RUG", 3))
        submit("o1")  # LAMP: 8 left of 12 ordered this week; CHAIR: none left
        place("o2", ("CHAIR", 2))
        submit("o2")  # waits for chairs

    board = queries.dashboard(today=TODAY)

    assert [(alert.sku, alert.waiting_units) for alert in board.out_of_stock] == [
        ("CHAIR", 2),
        ("TABLE", 0),
    ]
    assert [
        (alert.sku, alert.available, alert.ordered_recently) for alert in board.running_low
    ] == [("LAMP", 8, 12)]  # RUG: 97 left of 3 ordered, plenty
    assert (board.out_of_stock_count, board.running_low_count) == (2, 1)


def test_the_dashboard_counts_what_waits_for_stock():
    add_batch("lamps", "LAMP", 1)
    place("o1", ("LAMP", 2), ("CHAIR", 4))
    place("o2", ("CHAIR", 1))
    place("o3", ("LAMP", 1))
    for reference in ("o1", "o2", "o3"):
        submit(reference)  # o3 takes the one lamp; o1 waits for both, o2 for its chair

    board = queries.dashboard(today=TODAY)

    assert (board.waiting_orders, board.waiting_lines, board.waiting_units) == (2, 3, 7)
    assert board.waiting_by_product == [("CHAIR", 2, 5), ("LAMP", 1, 2)]


def test_a_line_allocate_adds_without_stock_is_shown_at_once():
    place("o1", ("CHAIR", 1))
    submit("o1")

    # A new line that finds no stock: the command's only event is OutOfStock.
    result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))

    assert [event.kind for event in result.events] == ["OutOfStock"]
    assert line_days("LAMP") == [("LAMP", 2, queries.utc_today(), None)]
    assert waiting() == [("o1", "CHAIR", 1), ("o1", "LAMP", 2)]
