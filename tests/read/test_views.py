"""What each materialized view holds after each kind of command, and the selectors over
them; every expectation is worked out by hand, not with the views' own SQL."""

import datetime
from decimal import Decimal

import pytest

from orders_read import queries
from orders_read.models import (
    AllocationRow,
    BatchAvailability,
    OrderLineRow,
    OrderSummary,
    ProductAvailability,
)
from orders_write import commands, services
from tests.factories import LATER, TODAY, TOMORROW, add_batch, place, submit

pytestmark = pytest.mark.django_db(transaction=True)

NEXT_WEEK = TODAY + datetime.timedelta(days=7)


# --- arranging through the write side --------------------------------------------------


def create_product(sku: str, price: str, name: str | None = None):
    return services.create_product(
        commands.CreateProduct(sku=sku, name=name or sku.title(), price=Decimal(price))
    )


def cancel(reference: str):
    return services.cancel_order(commands.CancelOrder(reference=reference))


def allocate(orderid: str, sku: str, qty: int):
    return services.allocate(commands.Allocate(orderid=orderid, sku=sku, qty=qty))


def deallocate(orderid: str, sku: str):
    return services.deallocate(commands.Deallocate(orderid=orderid, sku=sku))


def change_quantity(ref: str, qty: int):
    return services.change_batch_quantity(commands.ChangeBatchQuantity(ref=ref, qty=qty))


# --- reading the views ------------------------------------------------------------------


def allocation_rows() -> list[tuple[str, str, str]]:
    return list(
        AllocationRow.objects.order_by("orderid", "sku").values_list("orderid", "sku", "batchref")
    )


SUMMARY_FIELDS = (
    "reference",
    "customer_name",
    "status",
    "line_count",
    "total_quantity",
    "total_amount",
    "allocated_line_count",
)


def summary(reference: str) -> dict:
    return OrderSummary.objects.values(*SUMMARY_FIELDS).get(reference=reference)


def line_rows(orderid: str) -> list[tuple]:
    return list(
        OrderLineRow.objects.filter(orderid=orderid)
        .order_by("sku")
        .values_list("sku", "qty", "unit_price", "amount", "batchref")
    )


def batch_row(ref: str) -> tuple[int, int, int]:
    return BatchAvailability.objects.values_list("purchased", "allocated", "available").get(
        batchref=ref
    )


AVAILABILITY_FIELDS = (
    "purchased",
    "allocated",
    "available",
    "available_now",
    "next_eta",
    "batch_count",
)


def availability(sku: str) -> dict:
    return ProductAvailability.objects.values(*AVAILABILITY_FIELDS).get(sku=sku)


def stock(*values) -> dict:
    """(purchased, allocated, available, available_now, next_eta, batch_count), by name."""
    return dict(zip(AVAILABILITY_FIELDS, values, strict=True))


# --- allocations_view ---------------------------------------------------------------------


def test_allocations_view_shows_a_line_allocated_by_allocate():
    add_batch("lamps-1", "LAMP", 10)

    allocate("o1", "LAMP", 3)

    assert allocation_rows() == [("o1", "LAMP", "lamps-1")]


def test_allocations_view_shows_each_line_a_submit_allocates_and_not_the_out_of_stock_one():
    add_batch("lamps-1", "LAMP", 10)
    add_batch("chairs-1", "CHAIR", 5, eta=TOMORROW)
    add_batch("tables-1", "TABLE", 1)
    place("o1", ("LAMP", 2), ("CHAIR", 1), ("TABLE", 4))
    assert allocation_rows() == []  # a pending order holds no stock

    submit("o1")

    assert allocation_rows() == [("o1", "CHAIR", "chairs-1"), ("o1", "LAMP", "lamps-1")]


def test_allocations_view_drops_a_deallocated_line_only():
    add_batch("lamps-1", "LAMP", 10)
    allocate("o1", "LAMP", 3)
    allocate("o2", "LAMP", 4)

    deallocate("o1", "LAMP")

    assert allocation_rows() == [("o2", "LAMP", "lamps-1")]


def test_allocations_view_drops_every_line_of_a_cancelled_order_only():
    add_batch("lamps-1", "LAMP", 10)
    add_batch("chairs-1", "CHAIR", 10)
    allocate("o1", "LAMP", 1)
    allocate("o1", "CHAIR", 1)
    allocate("o2", "LAMP", 2)

    cancel("o1")

    assert allocation_rows() == [("o2", "LAMP", "lamps-1")]


def test_allocations_view_follows_a_line_that_a_smaller_batch_moves_to_another_batch():
    add_batch("warehouse", "LAMP", 10)
    add_batch("shipment", "LAMP", 10, eta=TOMORROW)
    allocate("o1", "LAMP", 4)
    allocate("o2", "LAMP", 5)
    assert allocation_rows() == [("o1", "LAMP", "warehouse"), ("o2", "LAMP", "warehouse")]

    # 9 allocated, 6 left: the latest line (o2) goes, and only the shipment can hold it.
    change_quantity("warehouse", 6)

    assert allocation_rows() == [("o1", "LAMP", "warehouse"), ("o2", "LAMP", "shipment")]


def test_allocations_view_drops_a_line_that_a_smaller_batch_leaves_out_of_stock():
    add_batch("warehouse", "LAMP", 10)
    allocate("o1", "LAMP", 4)
    allocate("o2", "LAMP", 5)

    change_quantity("warehouse", 5)

    assert allocation_rows() == [("o1", "LAMP", "warehouse")]


# --- order_summary ------------------------------------------------------------------------


@pytest.fixture
def priced_stock():
    """LAMP at 12.50 (10 in the warehouse) and CHAIR at 39.99 (none in stock)."""
    create_product("LAMP", "12.50")
    create_product("CHAIR", "39.99")
    add_batch("lamps-1", "LAMP", 10)


def test_order_summary_of_a_placed_order_totals_its_lines(priced_stock):
    place("o1", ("LAMP", 2), ("CHAIR", 3), customer="Grace Hopper")

    assert summary("o1") == {
        "reference": "o1",
        "customer_name": "Grace Hopper",
        "status": "pending",
        "line_count": 2,
        "total_quantity": 5,
        "total_amount": Decimal("144.97"),  # 2 x 12.50 + 3 x 39.99
        "allocated_line_count": 0,
    }


def test_order_summary_of_an_order_without_lines_shows_zeros(priced_stock):
    place("empty")

    assert summary("empty") == {
        "reference": "empty",
        "customer_name": "Ada Lovelace",
        "status": "pending",
        "line_count": 0,
        "total_quantity": 0,
        "total_amount": Decimal("0.00"),
        "allocated_line_count": 0,
    }


def test_order_summary_after_submit_counts_allocated_lines_but_not_out_of_stock_ones(
    priced_stock,
):
    place("o1", ("LAMP", 2), ("CHAIR", 3))

    submit("o1")

    row = summary("o1")
    assert (row["status"], row["line_count"], row["allocated_line_count"]) == ("submitted", 2, 1)
    assert row["total_amount"] == Decimal("144.97")


def test_order_summary_after_submit_with_stock_for_every_line(priced_stock):
    add_batch("chairs-1", "CHAIR", 3, eta=LATER)
    place("o1", ("LAMP", 2), ("CHAIR", 3))

    submit("o1")

    assert summary("o1")["allocated_line_count"] == 2


def test_order_summary_after_cancel_keeps_the_lines_and_releases_their_stock(priced_stock):
    place("o1", ("LAMP", 2), ("CHAIR", 3))
    submit("o1")

    cancel("o1")

    assert summary("o1") == {
        "reference": "o1",
        "customer_name": "Ada Lovelace",
        "status": "cancelled",
        "line_count": 2,
        "total_quantity": 5,
        "total_amount": Decimal("144.97"),
        "allocated_line_count": 0,
    }


def test_order_summary_of_an_order_that_allocate_creates(priced_stock):
    allocate("o1", "LAMP", 4)

    assert summary("o1") == {
        "reference": "o1",
        "customer_name": "",
        "status": "submitted",
        "line_count": 1,
        "total_quantity": 4,
        "total_amount": Decimal("50.00"),
        "allocated_line_count": 1,
    }


def test_order_summary_shows_a_line_that_allocate_leaves_out_of_stock(priced_stock):
    allocate("o1", "LAMP", 4)

    allocate("o1", "CHAIR", 2)  # no chair in stock: the line is added, unallocated

    row = summary("o1")
    assert (row["line_count"], row["total_quantity"], row["allocated_line_count"]) == (2, 6, 1)
    assert row["total_amount"] == Decimal("129.98")  # 4 x 12.50 + 2 x 39.99


def test_order_summary_counts_a_deallocated_line_as_unallocated(priced_stock):
    allocate("o1", "LAMP", 4)

    deallocate("o1", "LAMP")

    assert summary("o1")["allocated_line_count"] == 0


# --- order_lines_view ---------------------------------------------------------------------


def test_order_lines_view_shows_price_amount_and_batch_or_none(priced_stock):
    place("o1", ("LAMP", 2), ("CHAIR", 3))
    assert line_rows("o1") == [
        ("CHAIR", 3, Decimal("39.99"), Decimal("119.97"), None),
        ("LAMP", 2, Decimal("12.50"), Decimal("25.00"), None),
    ]

    submit("o1")

    assert line_rows("o1") == [
        ("CHAIR", 3, Decimal("39.99"), Decimal("119.97"), None),
        ("LAMP", 2, Decimal("12.50"), Decimal("25.00"), "lamps-1"),
    ]


def test_order_lines_view_names_the_product_and_the_batch_eta():
    create_product("CHAIR", "39.99", name="Bentwood chair")
    add_batch("chairs-1", "CHAIR", 5, eta=TOMORROW)

    allocate("o1", "CHAIR", 1)

    row = OrderLineRow.objects.get(orderid="o1")
    assert (row.product_name, row.batchref, row.batch_eta) == (
        "Bentwood chair",
        "chairs-1",
        TOMORROW,
    )


def test_order_lines_view_loses_the_batch_on_deallocate_and_cancel(priced_stock):
    add_batch("chairs-1", "CHAIR", 10)
    allocate("o1", "LAMP", 1)
    allocate("o1", "CHAIR", 1)

    deallocate("o1", "LAMP")
    assert [(sku, batchref) for sku, *_, batchref in line_rows("o1")] == [
        ("CHAIR", "chairs-1"),
        ("LAMP", None),
    ]

    cancel("o1")
    assert [(sku, batchref) for sku, *_, batchref in line_rows("o1")] == [
        ("CHAIR", None),
        ("LAMP", None),
    ]


def test_order_lines_view_follows_a_line_moved_by_a_batch_quantity_change():
    add_batch("warehouse", "LAMP", 5)
    add_batch("shipment", "LAMP", 5, eta=TOMORROW)
    allocate("o1", "LAMP", 5)

    change_quantity("warehouse", 4)

    assert [row[-1] for row in line_rows("o1")] == ["shipment"]


# --- batch_availability -------------------------------------------------------------------


def test_batch_availability_of_a_new_batch_is_all_available():
    add_batch("lamps-1", "LAMP", 10)

    assert batch_row("lamps-1") == (10, 0, 10)


def test_batch_availability_subtracts_allocated_lines_and_gives_back_released_ones():
    add_batch("lamps-1", "LAMP", 10)
    allocate("o1", "LAMP", 3)
    allocate("o2", "LAMP", 4)
    assert batch_row("lamps-1") == (10, 7, 3)

    deallocate("o1", "LAMP")
    assert batch_row("lamps-1") == (10, 4, 6)

    cancel("o2")
    assert batch_row("lamps-1") == (10, 0, 10)


def test_batch_availability_after_a_quantity_change_moves_a_line():
    add_batch("warehouse", "LAMP", 10)
    add_batch("shipment", "LAMP", 10, eta=TOMORROW)
    allocate("o1", "LAMP", 4)
    allocate("o2", "LAMP", 5)

    change_quantity("warehouse", 6)

    assert batch_row("warehouse") == (6, 4, 2)
    assert batch_row("shipment") == (10, 5, 5)


def test_batch_availability_after_a_quantity_increase():
    add_batch("lamps-1", "LAMP", 10)
    allocate("o1", "LAMP", 8)

    change_quantity("lamps-1", 25)

    assert batch_row("lamps-1") == (25, 8, 17)


# --- product_availability -----------------------------------------------------------------


def test_product_availability_of_a_product_without_batches_is_zero():
    create_product("DESK", "250.00", name="Oak desk")

    row = ProductAvailability.objects.get(sku="DESK")
    assert (row.name, row.price) == ("Oak desk", Decimal("250.00"))
    assert availability("DESK") == stock(0, 0, 0, 0, None, 0)


def test_product_availability_of_a_product_a_batch_created_has_the_sku_as_name_and_no_price():
    add_batch("lamps-1", "LAMP", 10)

    row = ProductAvailability.objects.get(sku="LAMP")
    assert (row.name, row.price) == ("LAMP", Decimal("0.00"))


def test_product_availability_sums_batches_and_tells_warehouse_stock_from_shipments():
    add_batch("warehouse", "LAMP", 10)
    add_batch("soon", "LAMP", 20, eta=TOMORROW)
    add_batch("late", "LAMP", 5, eta=LATER)
    add_batch("chairs", "CHAIR", 7)  # another product: not counted

    assert availability("LAMP") == stock(35, 0, 35, 10, TOMORROW, 3)


def test_product_availability_next_eta_skips_shipments_with_nothing_left():
    add_batch("warehouse", "LAMP", 10)
    add_batch("soon", "LAMP", 20, eta=TOMORROW)
    add_batch("late", "LAMP", 5, eta=LATER)

    allocate("o1", "LAMP", 20)  # too much for the warehouse: fills the earliest shipment
    assert availability("LAMP") == stock(35, 20, 15, 10, LATER, 3)

    allocate("o2", "LAMP", 10)  # empties the warehouse
    assert availability("LAMP") == stock(35, 30, 5, 0, LATER, 3)

    allocate("o3", "LAMP", 5)  # empties the last shipment
    assert availability("LAMP") == stock(35, 35, 0, 0, None, 3)

    deallocate("o1", "LAMP")
    assert availability("LAMP") == stock(35, 15, 20, 0, TOMORROW, 3)


def test_product_availability_follows_a_batch_quantity_change():
    add_batch("warehouse", "LAMP", 10)
    add_batch("shipment", "LAMP", 10, eta=NEXT_WEEK)
    allocate("o1", "LAMP", 4)
    allocate("o2", "LAMP", 5)

    change_quantity("warehouse", 6)  # o2 moves to the shipment

    assert availability("LAMP") == stock(16, 9, 7, 2, NEXT_WEEK, 2)


def test_product_availability_gives_back_a_cancelled_orders_stock():
    add_batch("warehouse", "LAMP", 10)
    place("o1", ("LAMP", 10))
    submit("o1")
    assert availability("LAMP") == stock(10, 10, 0, 0, None, 1)

    cancel("o1")

    assert availability("LAMP") == stock(10, 0, 10, 10, None, 1)


# --- selectors: allocations_for -----------------------------------------------------------


def test_allocations_for_lists_an_orders_allocations_sorted_by_sku():
    add_batch("zebra-1", "ZEBRA", 5)
    add_batch("apple-1", "APPLE", 5, eta=TOMORROW)
    add_batch("mango-1", "MANGO", 5)
    for sku in ("ZEBRA", "APPLE", "MANGO"):
        allocate("o1", sku, 1)
    allocate("o2", "APPLE", 1)

    assert queries.allocations_for("o1") == [
        {"sku": "APPLE", "batchref": "apple-1"},
        {"sku": "MANGO", "batchref": "mango-1"},
        {"sku": "ZEBRA", "batchref": "zebra-1"},
    ]


def test_allocations_for_an_unknown_order_is_empty():
    add_batch("lamps-1", "LAMP", 5)
    allocate("o1", "LAMP", 1)

    assert queries.allocations_for("nope") == []


# --- selectors: orders ------------------------------------------------------------------


@pytest.fixture
def three_orders():
    """widget-1 (Ada, pending), x-2 (Widget Co, submitted), x-3 (Alan Turing, cancelled)."""
    create_product("LAMP", "10.00")
    add_batch("lamps-1", "LAMP", 100)
    place("widget-1", ("LAMP", 1), customer="Ada Lovelace")
    place("x-2", ("LAMP", 3), customer="Widget Co")
    place("x-3", ("LAMP", 2), customer="Alan Turing")
    submit("x-2")
    cancel("x-3")


def references(queryset) -> list[str]:
    return [row.reference for row in queryset]


def test_orders_are_newest_first_by_default(three_orders):
    assert references(queries.orders()) == ["x-3", "x-2", "widget-1"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [("pending", ["widget-1"]), ("submitted", ["x-2"]), ("cancelled", ["x-3"])],
)
def test_orders_filter_by_status(three_orders, status, expected):
    assert references(queries.orders(filters={"status": status})) == expected


def test_orders_filter_by_customer_ignoring_case(three_orders):
    assert references(queries.orders(filters={"customer": "LOVE"})) == ["widget-1"]
    assert references(queries.orders(filters={"customer": "widget-"})) == []  # not the reference


def test_orders_search_matches_the_reference_or_the_customer(three_orders):
    assert references(queries.orders(filters={"search": "WIDGET"})) == ["x-2", "widget-1"]
    assert references(queries.orders(filters={"search": "x-3"})) == ["x-3"]
    assert references(queries.orders(filters={"search": "turing"})) == ["x-3"]


def test_orders_filters_combine(three_orders):
    assert references(queries.orders(filters={"search": "widget", "status": "pending"})) == [
        "widget-1"
    ]


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("created_at", ["widget-1", "x-2", "x-3"]),
        ("-created_at", ["x-3", "x-2", "widget-1"]),
        ("reference", ["widget-1", "x-2", "x-3"]),
        ("-reference", ["x-3", "x-2", "widget-1"]),
        ("customer_name", ["widget-1", "x-3", "x-2"]),
        ("status", ["x-3", "widget-1", "x-2"]),
        ("total_quantity", ["widget-1", "x-3", "x-2"]),
        ("-total_amount", ["x-2", "x-3", "widget-1"]),
    ],
)
def test_orders_ordering(three_orders, ordering, expected):
    assert references(queries.orders(filters={"ordering": ordering})) == expected


@pytest.mark.parametrize("ordering", ["nope", "-nope", "id", "shipping_address"])
def test_orders_refuse_an_ordering_outside_the_list(three_orders, ordering):
    with pytest.raises(queries.InvalidFilters, match="ordering"):
        queries.orders(filters={"ordering": ordering})


def test_orders_without_an_ordering_are_newest_first(three_orders):
    assert references(queries.orders(filters={"ordering": ""})) == ["x-3", "x-2", "widget-1"]


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"search": "x" * 256}, "search"),
        ({"customer": "a\x00b"}, "customer"),
    ],
)
def test_orders_refuse_filter_values_they_cannot_apply(three_orders, filters, field):
    with pytest.raises(queries.InvalidFilters) as refused:
        queries.orders(filters=filters)
    assert list(refused.value.errors) == [field]


@pytest.mark.parametrize(
    ("ordering", "by_id"),
    [
        ("status", "ascending"),
        ("-status", "descending"),
        ("customer_name", "ascending"),
        ("-line_count", "descending"),
        ("total_amount", "ascending"),
    ],
)
def test_orders_with_equal_sort_keys_page_in_a_stable_order(ordering, by_id):
    create_product("LAMP", "1.00")
    placed = ["m-3", "m-1", "m-5", "m-2", "m-4"]  # ids grow in this order
    for reference in placed:
        place(reference, ("LAMP", 1), customer="Same Customer")
    expected = placed if by_id == "ascending" else placed[::-1]

    pages = [
        references(queries.orders(filters={"ordering": ordering})[start : start + 2])
        for start in (0, 2, 4)
    ]

    assert pages == [expected[0:2], expected[2:4], expected[4:6]]


# --- selectors: one order, products, batches -----------------------------------------------


def test_order_is_the_summary_of_one_order_or_none(three_orders):
    found = queries.order("x-2")

    assert (found.reference, found.status, found.total_amount) == (
        "x-2",
        "submitted",
        Decimal("30.00"),
    )
    assert queries.order("nope") is None


def test_order_lines_are_sorted_by_sku_with_their_batches(priced_stock):
    place("o1", ("LAMP", 2), ("CHAIR", 3))
    submit("o1")

    lines = queries.order_lines("o1")

    assert [(line.sku, line.qty, line.amount, line.batchref) for line in lines] == [
        ("CHAIR", 3, Decimal("119.97"), None),
        ("LAMP", 2, Decimal("25.00"), "lamps-1"),
    ]
    assert queries.order_lines("nope") == []


@pytest.fixture
def three_products():
    """LAMP with stock left, CHAIR all allocated, DESK without batches."""
    add_batch("lamps-1", "LAMP", 5)
    add_batch("chairs-1", "CHAIR", 2)
    allocate("o1", "CHAIR", 2)
    create_product("DESK", "99.00")


def skus(queryset) -> list[str]:
    return [row.sku for row in queryset]


def test_products_lists_every_product_by_sku(three_products):
    assert skus(queries.products()) == ["CHAIR", "DESK", "LAMP"]


def test_products_in_stock_are_those_with_available_stock(three_products):
    assert skus(queries.products(filters={"in_stock": "true"})) == ["LAMP"]


def test_products_out_of_stock_include_those_without_batches(three_products):
    assert skus(queries.products(filters={"in_stock": "false"})) == ["CHAIR", "DESK"]


def test_product_is_one_products_availability_or_none(three_products):
    found = queries.product("CHAIR")

    assert (found.sku, found.purchased, found.allocated, found.available) == ("CHAIR", 2, 2, 0)
    assert queries.product("nope") is None
    assert queries.product("chair") is None  # SKUs are case sensitive


def test_batches_of_a_sku_come_earliest_eta_first_ties_by_reference():
    add_batch("ship-late", "LAMP", 1, eta=LATER)
    add_batch("ship-b", "LAMP", 1, eta=TOMORROW)
    add_batch("ship-a", "LAMP", 1, eta=TOMORROW)
    add_batch("chairs-1", "CHAIR", 1, eta=TODAY)

    assert [batch.batchref for batch in queries.batches(sku="LAMP")] == [
        "ship-a",
        "ship-b",
        "ship-late",
    ]
    assert [batch.batchref for batch in queries.batches()] == [
        "chairs-1",
        "ship-a",
        "ship-b",
        "ship-late",
    ]


def test_batches_of_a_sku_come_in_allocation_preference_order():
    add_batch("ship-late", "LAMP", 1, eta=LATER)
    add_batch("ship-b", "LAMP", 1, eta=TOMORROW)
    add_batch("depot-b", "LAMP", 1)
    add_batch("ship-a", "LAMP", 1, eta=TOMORROW)
    add_batch("depot-a", "LAMP", 1)

    assert [batch.batchref for batch in queries.batches(sku="LAMP")] == [
        "depot-a",
        "depot-b",
        "ship-a",
        "ship-b",
        "ship-late",
    ]


def test_batches_show_their_stock():
    add_batch("lamps-1", "LAMP", 10)
    allocate("o1", "LAMP", 4)

    (batch,) = queries.batches(sku="LAMP")

    assert (batch.batchref, batch.eta, batch.purchased, batch.allocated, batch.available) == (
        "lamps-1",
        None,
        10,
        4,
        6,
    )
    assert list(queries.batches(sku="nope")) == []
