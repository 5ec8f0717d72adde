"""Unit tests of the allocation rules in orders_write.domain: plain values, no database."""

import datetime
from decimal import Decimal

import pytest

from orders_write.domain import (
    ALLOCATED,
    CANCELLED,
    MAX_PRICE,
    MAX_QUANTITY,
    MAX_TEXT_LENGTH,
    OUT_OF_STOCK,
    PENDING,
    RELEASED,
    SUBMITTED,
    BatchStock,
    Checks,
    DomainError,
    HeldLine,
    InvalidInput,
    InvalidQuantity,
    InvalidSku,
    LineOutcome,
    Product,
    Refusals,
    allocate_lines,
    cancel_order,
    check_accepts_commands,
    check_can_submit,
    check_distinct_skus,
    check_key,
    check_name,
    check_order_reference,
    check_price,
    check_quantity,
    check_text,
    choose_batch,
    each_refusal,
    line_outcomes,
    lines_to_release,
    submit_order,
)
from orders_write.events import (
    Allocated,
    BatchQuantityChanged,
    Deallocated,
    OrderCancelled,
    OrderSubmitted,
    OutOfStock,
)

TODAY = datetime.date(2024, 5, 1)
TOMORROW = TODAY + datetime.timedelta(days=1)
LATER = TODAY + datetime.timedelta(days=10)


def batch(
    reference: str,
    purchased: int = 100,
    allocated: int = 0,
    eta: datetime.date | None = None,
) -> BatchStock:
    return BatchStock(
        reference=reference, purchased_quantity=purchased, allocated_quantity=allocated, eta=eta
    )


def chosen_reference(batches: list[BatchStock], quantity: int) -> str | None:
    chosen = choose_batch(batches, quantity)
    return None if chosen is None else chosen.reference


# --- available quantity ------------------------------------------------------------


def test_available_quantity_is_purchased_minus_allocated():
    assert batch("b1", purchased=20, allocated=7).available_quantity == 13


def test_batch_with_nothing_allocated_has_all_it_purchased_available():
    assert batch("b1", purchased=20).available_quantity == 20


@pytest.mark.parametrize(
    ("quantity", "fits"),
    [(12, True), (13, True), (14, False)],
)
def test_batch_holds_a_line_only_up_to_its_available_quantity(quantity, fits):
    assert batch("b1", purchased=20, allocated=7).can_hold(quantity) is fits


def test_with_allocated_adds_to_the_allocated_quantity_and_keeps_the_rest():
    original = batch("b1", purchased=20, allocated=7, eta=TOMORROW)

    updated = original.with_allocated(5)

    assert updated == batch("b1", purchased=20, allocated=12, eta=TOMORROW)
    assert updated.available_quantity == 8
    assert original.allocated_quantity == 7


# --- choose_batch: preference --------------------------------------------------------


def test_prefers_warehouse_stock_to_shipments():
    batches = [batch("a-shipment", eta=TODAY), batch("z-warehouse", eta=None)]

    assert chosen_reference(batches, 10) == "z-warehouse"


def test_prefers_the_earliest_eta_among_shipments():
    batches = [
        batch("a-later", eta=LATER),
        batch("b-tomorrow", eta=TOMORROW),
        batch("c-today", eta=TODAY),
    ]

    assert chosen_reference(batches, 10) == "c-today"


def test_same_eta_goes_to_the_smaller_reference():
    batches = [batch("batch-2", eta=TODAY), batch("batch-1", eta=TODAY)]

    assert chosen_reference(batches, 10) == "batch-1"


def test_warehouse_stock_tie_goes_to_the_smaller_reference():
    batches = [batch("w-b"), batch("w-a"), batch("w-c")]

    assert chosen_reference(batches, 10) == "w-a"


def test_skips_a_preferred_batch_too_small_for_the_whole_line():
    batches = [batch("warehouse", purchased=5), batch("shipment", purchased=50, eta=TODAY)]

    assert chosen_reference(batches, 10) == "shipment"


def test_skips_a_preferred_batch_whose_stock_is_already_taken():
    batches = [
        batch("warehouse", purchased=20, allocated=15),
        batch("shipment", purchased=20, eta=TODAY),
    ]

    assert chosen_reference(batches, 6) == "shipment"


def test_never_splits_a_line_across_batches():
    batches = [batch("b1", purchased=6), batch("b2", purchased=6, eta=TODAY)]

    assert chosen_reference(batches, 10) is None


def test_a_line_may_take_exactly_what_is_available():
    batches = [batch("b1", purchased=20, allocated=10)]

    assert chosen_reference(batches, 10) == "b1"


def test_returns_none_when_no_batch_can_hold_the_line():
    batches = [batch("b1", purchased=5), batch("b2", purchased=9, eta=TODAY)]

    assert choose_batch(batches, 10) is None


def test_returns_none_when_there_are_no_batches():
    assert choose_batch([], 1) is None


def test_returns_the_batch_itself():
    warehouse = batch("b1", purchased=20, allocated=3)

    assert choose_batch([warehouse], 5) is warehouse


def test_choose_batch_accepts_any_iterable():
    batches = (b for b in [batch("b2", eta=TODAY), batch("b1", eta=TOMORROW)])

    assert chosen_reference(batches, 1) == "b2"


# --- allocate_lines ------------------------------------------------------------------


def test_later_lines_see_the_stock_earlier_lines_took():
    batches = [batch("warehouse", purchased=10), batch("shipment", purchased=10, eta=TODAY)]
    first, second = HeldLine("order-1", 6), HeldLine("order-2", 6)

    decisions = allocate_lines(batches, [first, second])

    assert [(line, chosen.reference) for line, chosen in decisions] == [
        (first, "warehouse"),
        (second, "shipment"),
    ]


def test_lines_that_still_fit_keep_going_to_the_preferred_batch():
    batches = [batch("warehouse", purchased=10), batch("shipment", purchased=10, eta=TODAY)]
    lines = [HeldLine("order-1", 4), HeldLine("order-2", 6)]

    decisions = allocate_lines(batches, lines)

    assert [chosen.reference for _, chosen in decisions] == ["warehouse", "warehouse"]


def test_lines_that_do_not_fit_get_none_and_take_nothing():
    batches = [batch("warehouse", purchased=10)]
    lines = [HeldLine("order-1", 8), HeldLine("order-2", 5), HeldLine("order-3", 2)]

    decisions = allocate_lines(batches, lines)

    chosen_references = [None if chosen is None else chosen.reference for _, chosen in decisions]
    assert chosen_references == ["warehouse", None, "warehouse"]


def test_allocate_lines_keeps_the_order_of_the_lines():
    lines = [HeldLine(key, 1) for key in ["c", "a", "b"]]

    decisions = allocate_lines([batch("b1")], lines)

    assert [line for line, _ in decisions] == lines


def test_allocate_lines_with_no_batches_leaves_every_line_out_of_stock():
    lines = [HeldLine("order-1", 1), HeldLine("order-2", 1)]

    assert allocate_lines([], lines) == [(lines[0], None), (lines[1], None)]


def test_allocate_lines_with_no_lines_decides_nothing():
    assert allocate_lines([batch("b1")], []) == []


def test_allocate_lines_does_not_change_the_batches_it_is_given():
    warehouse = batch("warehouse", purchased=10)

    allocate_lines([warehouse], [HeldLine("order-1", 4)])

    assert warehouse.allocated_quantity == 0


# --- lines_to_release ---------------------------------------------------------------


def test_releases_nothing_when_the_lines_already_fit():
    held = [HeldLine("old", 3), HeldLine("new", 4)]

    assert lines_to_release(7, held) == []


def test_releases_nothing_from_a_batch_with_no_lines():
    assert lines_to_release(0, []) == []


def test_releases_the_most_recent_allocation_first():
    held = [HeldLine("oldest", 3), HeldLine("middle", 3), HeldLine("newest", 3)]

    assert lines_to_release(6, held) == [HeldLine("newest", 3)]


def test_releases_recent_allocations_until_the_rest_fits():
    held = [HeldLine("oldest", 3), HeldLine("middle", 3), HeldLine("newest", 1)]

    released = lines_to_release(4, held)

    assert released == [HeldLine("newest", 1), HeldLine("middle", 3)]


def test_stops_releasing_as_soon_as_the_rest_fits():
    held = [HeldLine("oldest", 2), HeldLine("middle", 2), HeldLine("newest", 2)]

    assert [line.key for line in lines_to_release(5, held)] == ["newest"]


def test_releases_a_recent_large_line_even_if_an_older_small_one_would_do():
    held = [HeldLine("old-small", 1), HeldLine("new-large", 8)]

    assert lines_to_release(8, held) == [HeldLine("new-large", 8)]


def test_releases_everything_when_the_batch_is_reduced_below_every_line():
    held = [HeldLine("oldest", 5), HeldLine("middle", 6), HeldLine("newest", 7)]

    released = lines_to_release(4, held)

    assert released == [HeldLine("newest", 7), HeldLine("middle", 6), HeldLine("oldest", 5)]


def test_releases_everything_when_the_batch_is_reduced_to_zero():
    held = [HeldLine("oldest", 1), HeldLine("newest", 1)]

    assert [line.key for line in lines_to_release(0, held)] == ["newest", "oldest"]


# --- errors ----------------------------------------------------------------------------


def test_domain_error_carries_its_message_and_field():
    error = DomainError("Something is wrong", field="qty")

    assert error.message == "Something is wrong"
    assert str(error) == "Something is wrong"
    assert error.field == "qty"


def test_invalid_sku_message_names_the_sku():
    error = InvalidSku("RED-CHAIR")

    assert error.message == "Invalid sku RED-CHAIR"
    assert str(error) == "Invalid sku RED-CHAIR"
    assert error.field == "sku"


def test_invalid_sku_field_can_be_overridden():
    assert InvalidSku("RED-CHAIR", field="lines").field == "lines"


def test_invalid_sku_and_invalid_quantity_are_domain_errors():
    assert issubclass(InvalidSku, InvalidInput)
    assert issubclass(InvalidQuantity, InvalidInput)
    assert issubclass(InvalidInput, DomainError)


# --- check_quantity -------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [0, -1, -100])
def test_refuses_a_quantity_that_is_not_positive(quantity):
    with pytest.raises(InvalidQuantity) as raised:
        check_quantity(quantity)

    assert raised.value.message == "Quantity must be positive"
    assert str(raised.value) == "Quantity must be positive"
    assert raised.value.field == "qty"
    assert isinstance(raised.value, DomainError)


def test_quantity_error_names_the_field_it_is_given():
    with pytest.raises(InvalidQuantity) as raised:
        check_quantity(0, field="lines-0-qty")

    assert raised.value.field == "lines-0-qty"


def test_refuses_a_quantity_too_large_for_the_database():
    with pytest.raises(InvalidQuantity) as raised:
        check_quantity(MAX_QUANTITY + 1)

    assert raised.value.message == "Quantity must be at most 2147483647"


@pytest.mark.parametrize("quantity", [1, 10, MAX_QUANTITY])
def test_accepts_a_positive_quantity(quantity):
    assert check_quantity(quantity) is None


# --- check_key -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", " ", "   ", "\t", " \n "])
def test_refuses_a_blank_key(value):
    with pytest.raises(InvalidInput) as raised:
        check_key(value, what="SKU", field="sku")

    assert raised.value.message == "SKU must not be blank"
    assert raised.value.field == "sku"


def test_refuses_a_key_longer_than_255_characters():
    with pytest.raises(InvalidInput) as raised:
        check_key("x" * (MAX_TEXT_LENGTH + 1), what="Reference", field="ref")

    assert raised.value.message == "Reference must be at most 255 characters"
    assert raised.value.field == "ref"


@pytest.mark.parametrize(
    "value",
    ["RED\x00CHAIR", "RED\tCHAIR", "RED\nCHAIR", "RED\rCHAIR", "RED\x1fCHAIR", "RED\x7fCHAIR"],
)
def test_refuses_a_key_with_control_characters(value):
    with pytest.raises(InvalidInput) as raised:
        check_key(value, what="SKU", field="sku")

    assert raised.value.message == "SKU must not contain control characters"


@pytest.mark.parametrize(
    "value",
    ["RED-CHAIR", "red-chair", "a", "x" * MAX_TEXT_LENGTH, "CHAISE-ÉTÉ", "ref with spaces"],
)
def test_accepts_a_key(value):
    assert check_key(value, what="SKU", field="sku") is None


@pytest.mark.parametrize(
    "value", [".", "..", "./a", "a/.", "../a", "a/..", "a/./b", "a/../b", "/../"]
)
def test_refuses_a_key_with_a_dot_segment_that_no_url_could_reach(value):
    with pytest.raises(InvalidInput) as raised:
        check_key(value, what="SKU", field="sku")

    assert raised.value.message == 'SKU must not be "." or "..", alone or between slashes'
    assert raised.value.field == "sku"


@pytest.mark.parametrize(
    "value", ["...", ".a", "a.", "a..b", "a/b", "a/.b", "2026/07", "a?b", "a#b", "100%", "a//b"]
)
def test_accepts_a_key_with_dots_that_are_not_a_segment_of_their_own(value):
    assert check_key(value, what="SKU", field="sku") is None


@pytest.mark.parametrize("value", [".", "..", "new", "a/b"])
def test_a_name_may_be_what_a_key_may_not(value):
    assert check_name(value, what="Customer", field="customer") is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("new", 'Order reference must not be "new"'),
        ("o1/submit", 'Order reference must not end in "/submit"'),
        ("a/b/cancel", 'Order reference must not end in "/cancel"'),
        ("..", 'Order reference must not be "." or "..", alone or between slashes'),
        (" ", "Order reference must not be blank"),
    ],
)
def test_refuses_an_order_reference_whose_page_would_be_another_page(value, message):
    with pytest.raises(InvalidInput) as raised:
        check_order_reference(value, field="orderid")

    assert raised.value.message == message
    assert raised.value.field == "orderid"


@pytest.mark.parametrize(
    "value", ["submit", "cancel", "NEW", "new/x", "renew", "o1/submit/", "/cancel", "x/new"]
)
def test_accepts_an_order_reference_whose_page_is_its_own(value):
    assert check_order_reference(value) is None


# --- check_text ------------------------------------------------------------------------


def test_accepts_empty_text():
    assert check_text("", what="Customer", field="customer") is None


def test_refuses_text_longer_than_its_limit():
    with pytest.raises(InvalidInput) as raised:
        check_text("x" * 11, what="Customer", field="customer", max_length=10)

    assert raised.value.message == "Customer must be at most 10 characters"
    assert raised.value.field == "customer"


def test_refuses_text_with_a_nul_character():
    with pytest.raises(InvalidInput) as raised:
        check_text("12 Main St\x00", what="Address", field="shipping_address")

    assert raised.value.message == "Address must not contain NUL characters"


def test_accepts_multiline_text():
    assert check_text("12 Main St\nSpringfield", what="Address", field="address") is None


# --- check_price -----------------------------------------------------------------------


@pytest.mark.parametrize("price", ["-0.01", "-1", "-1000.00"])
def test_refuses_a_negative_price(price):
    with pytest.raises(InvalidInput) as raised:
        check_price(Decimal(price))

    assert raised.value.message == "Price must not be negative"
    assert raised.value.field == "price"


@pytest.mark.parametrize("price", ["0.001", "1.999", "10.005"])
def test_refuses_a_price_with_more_than_two_decimal_places(price):
    with pytest.raises(InvalidInput) as raised:
        check_price(Decimal(price))

    assert raised.value.message == "Price must have at most 2 decimal places"


@pytest.mark.parametrize("price", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_refuses_a_price_that_is_not_a_number(price):
    with pytest.raises(InvalidInput) as raised:
        check_price(Decimal(price))

    assert raised.value.message == "Price must be a number"


@pytest.mark.parametrize("price", ["10000000000", "9999999999.991", "1E+20"])
def test_refuses_a_price_too_large_for_the_database(price):
    with pytest.raises(InvalidInput) as raised:
        check_price(Decimal(price))

    assert raised.value.message == "Price must be at most 9999999999.99"


@pytest.mark.parametrize("price", ["0", "0.00", "-0", "1", "9.9", "19.99", "1.500", str(MAX_PRICE)])
def test_accepts_a_price(price):
    assert check_price(Decimal(price)) is None


def test_price_error_names_the_field_it_is_given():
    with pytest.raises(InvalidInput) as raised:
        check_price(Decimal("-1"), field="unit_price")

    assert raised.value.field == "unit_price"


# --- check_distinct_skus ---------------------------------------------------------------


def test_refuses_the_same_sku_on_two_lines():
    with pytest.raises(InvalidInput) as raised:
        check_distinct_skus(["RED-CHAIR", "BLUE-TABLE", "RED-CHAIR"])

    assert raised.value.message == "SKU RED-CHAIR appears on more than one line"
    assert raised.value.field == "lines.2.sku"


@pytest.mark.parametrize(
    "skus",
    [[], ["RED-CHAIR"], ["RED-CHAIR", "BLUE-TABLE"], ["red-chair", "RED-CHAIR"]],
)
def test_accepts_distinct_skus(skus):
    assert check_distinct_skus(skus) is None


# --- orders ---------------------------------------------------------------------------


def test_refuses_to_submit_an_empty_order():
    with pytest.raises(InvalidInput) as raised:
        check_can_submit("order-1", PENDING, line_count=0)

    assert raised.value.message == "Cannot submit empty order"
    assert raised.value.field == "lines"


def test_refuses_to_submit_an_order_already_submitted():
    with pytest.raises(InvalidInput) as raised:
        check_can_submit("order-1", SUBMITTED, line_count=2)

    assert raised.value.message == "Order order-1 is already submitted"
    assert raised.value.field == "reference"


@pytest.mark.parametrize("line_count", [0, 3])
def test_refuses_to_submit_a_cancelled_order(line_count):
    with pytest.raises(InvalidInput) as raised:
        check_can_submit("order-1", CANCELLED, line_count=line_count)

    assert raised.value.message == "Order order-1 is cancelled"
    assert raised.value.field == "reference"


def test_submits_a_pending_order_with_lines():
    assert check_can_submit("order-1", PENDING, line_count=1) is None


def test_a_cancelled_order_accepts_no_command():
    with pytest.raises(InvalidInput) as raised:
        check_accepts_commands("order-7", CANCELLED)

    assert raised.value.message == "Order order-7 is cancelled"
    assert raised.value.field == "reference"


@pytest.mark.parametrize("status", [PENDING, SUBMITTED])
def test_an_order_that_is_not_cancelled_accepts_commands(status):
    assert check_accepts_commands("order-7", status) is None


@pytest.mark.parametrize("value", ["A\x85B", "A\x9bB", "A\x00B"])
def test_refuses_a_key_with_unicode_control_characters(value):
    with pytest.raises(InvalidInput, match=r"^SKU must not contain control characters$"):
        check_key(value, what="SKU", field="sku")


# --- the events each decision implies ----------------------------------------------


def line(orderid: str, quantity: int, batchref: str = "") -> HeldLine:
    return HeldLine(key=orderid, quantity=quantity, orderid=orderid, batchref=batchref)


def test_allocating_records_allocated_and_increments_the_version():
    product = Product("LAMP", [batch("ship", eta=LATER), batch("warehouse")], version=3)

    decisions = product.allocate([line("o1", 10)])

    assert [(held.orderid, chosen.reference) for held, chosen in decisions] == [("o1", "warehouse")]
    assert product.events == [Allocated("o1", "LAMP", 10, "warehouse")]
    assert product.version == 4
    assert {each.reference: each.allocated_quantity for each in product.batches} == {
        "ship": 0,
        "warehouse": 10,
    }


def test_allocating_several_lines_increments_the_version_once():
    product = Product("LAMP", [batch("warehouse", purchased=5)])

    product.allocate([line("o1", 3), line("o2", 2)])

    assert product.events == [
        Allocated("o1", "LAMP", 3, "warehouse"),
        Allocated("o2", "LAMP", 2, "warehouse"),
    ]
    assert product.version == 1


def test_a_line_that_fits_nowhere_records_out_of_stock_and_keeps_the_version():
    product = Product("LAMP", [batch("warehouse", purchased=5)])

    decisions = product.allocate([line("o1", 6)])

    assert decisions[0][1] is None
    assert product.events == [OutOfStock("LAMP", "o1", 6)]
    assert product.version == 0


def test_waiting_lines_are_filled_in_the_order_given_by_the_policy():
    product = Product("LAMP", [batch("ship", purchased=4, eta=LATER), batch("warehouse", 5)])

    placed = product.fill_waiting([line("first", 4), line("second", 3), line("third", 2)])

    # The first two take the warehouse's 5 in turn as far as they fit; the rest ships.
    assert [(held.orderid, chosen.reference) for held, chosen in placed] == [
        ("first", "warehouse"),
        ("second", "ship"),
    ]
    assert product.events == [
        Allocated("first", "LAMP", 4, "warehouse"),
        Allocated("second", "LAMP", 3, "ship"),
    ]
    assert product.version == 1


def test_a_waiting_line_that_still_fits_nowhere_keeps_waiting_without_an_event():
    product = Product("LAMP", [batch("warehouse", purchased=5)], version=7)

    placed = product.fill_waiting([line("big", 6), line("small", 2)])

    # A later, smaller line is not held back by an earlier one that does not fit.
    assert [held.orderid for held, _ in placed] == ["small"]
    assert product.events == [Allocated("small", "LAMP", 2, "warehouse")]
    assert product.version == 8


def test_no_waiting_line_records_nothing():
    product = Product("LAMP", [batch("warehouse")])

    assert product.fill_waiting([]) == []
    assert (product.events, product.version) == ([], 0)


def test_releasing_records_deallocated_and_increments_the_version_once():
    product = Product("LAMP", [batch("warehouse", allocated=5)], version=2)

    product.release([line("o1", 3, "warehouse"), line("o2", 2, "warehouse")])

    assert product.events == [
        Deallocated("o1", "LAMP", 3, "warehouse"),
        Deallocated("o2", "LAMP", 2, "warehouse"),
    ]
    assert product.version == 3
    assert product.batches[0].allocated_quantity == 0


def test_releasing_nothing_records_nothing():
    product = Product("LAMP", [batch("warehouse")])

    product.release([])

    assert (product.events, product.version) == ([], 0)


def test_a_batch_quantity_that_still_fits_records_only_the_change():
    product = Product("LAMP", [batch("warehouse", purchased=10, allocated=4)])

    released, decisions = product.change_batch_quantity(
        "warehouse", 4, [line("o1", 4, "warehouse")]
    )

    assert (released, decisions) == ([], [])
    assert product.events == [BatchQuantityChanged("warehouse", "LAMP", 4, 10)]
    assert product.version == 0


def test_reducing_a_batch_releases_its_newest_lines_and_allocates_them_again():
    product = Product(
        "LAMP", [batch("warehouse", purchased=10, allocated=9), batch("ship", eta=LATER)]
    )
    held = [line("o1", 4, "warehouse"), line("o2", 3, "warehouse"), line("o3", 2, "warehouse")]

    released, decisions = product.change_batch_quantity("warehouse", 5, held)

    assert [each.orderid for each in released] == ["o3", "o2"]
    # Freed lines go back through the policy, the oldest allocation first; beside o1 the
    # warehouse keeps 1, so both go to the ship.
    assert product.events == [
        BatchQuantityChanged("warehouse", "LAMP", 5, 10),
        Deallocated("o3", "LAMP", 2, "warehouse"),
        Deallocated("o2", "LAMP", 3, "warehouse"),
        Allocated("o2", "LAMP", 3, "ship"),
        Allocated("o3", "LAMP", 2, "ship"),
    ]
    assert [(each.orderid, chosen.reference) for each, chosen in decisions] == [
        ("o2", "ship"),
        ("o3", "ship"),
    ]
    assert product.version == 2  # once released, once allocated again


def test_submitting_an_order_implies_order_submitted():
    assert submit_order("o1", PENDING, line_count=2) == (SUBMITTED, [OrderSubmitted("o1")])


def test_cancelling_an_order_implies_order_cancelled():
    assert cancel_order("o1", SUBMITTED) == (CANCELLED, [OrderCancelled("o1")])


def test_cancelling_a_cancelled_order_is_refused():
    with pytest.raises(InvalidInput, match=r"^Order o1 is cancelled$"):
        cancel_order("o1", CANCELLED)


# --- every refusal at once (rule 11) -------------------------------------------------


def test_checks_refuse_with_every_refusal_they_found():
    checks = Checks()
    with checks:
        check_quantity(0, field="lines.0.qty")
    with checks:
        check_name("", what="Customer", field="customer")
    with checks:
        check_quantity(3)

    with pytest.raises(Refusals) as raised:
        checks.done()

    assert [(refusal.field, refusal.message) for refusal in raised.value] == [
        ("lines.0.qty", "Quantity must be positive"),
        ("customer", "Customer must not be blank"),
    ]
    assert raised.value.message == (
        "2 problems: Quantity must be positive; Customer must not be blank"
    )


def test_checks_with_one_refusal_raise_it_alone():
    checks = Checks()
    with checks:
        check_quantity(-1)

    with pytest.raises(InvalidInput) as raised:
        checks.done()

    assert (raised.value.field, raised.value.message) == ("qty", "Quantity must be positive")


def test_each_repeated_sku_is_refused_beside_its_own_line():
    with pytest.raises(DomainError) as raised:
        check_distinct_skus(["LAMP", "CHAIR", "LAMP", "CHAIR"])

    assert [refusal.field for refusal in each_refusal(raised.value)] == [
        "lines.2.sku",
        "lines.3.sku",
    ]


# --- where a command's stock went ----------------------------------------------------


def test_line_outcomes_tell_moved_lost_allocated_and_released_lines():
    recorded = [
        BatchQuantityChanged("depot", "LAMP", 1, 10),
        Deallocated("o2", "LAMP", 5, "depot"),
        Deallocated("o1", "LAMP", 3, "depot"),
        Allocated("o1", "LAMP", 3, "ship"),
        OutOfStock("LAMP", "o2", 5),
        Allocated("o3", "LAMP", 1, "ship"),
        Deallocated("o4", "CHAIR", 2, "shelf"),
    ]

    assert line_outcomes(recorded) == [
        LineOutcome("o1", "LAMP", 3, ALLOCATED, "depot", "ship"),
        LineOutcome("o2", "LAMP", 5, OUT_OF_STOCK, "depot", None),
        LineOutcome("o3", "LAMP", 1, ALLOCATED, None, "ship"),
        LineOutcome("o4", "CHAIR", 2, RELEASED, "shelf", None),
    ]
