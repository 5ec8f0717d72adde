"""Unit tests of correcting a placed order's lines (orders_write.domain): plain values,
no database."""

import datetime
from decimal import Decimal

import pytest

from orders_write.domain import (
    CANCELLED,
    PENDING,
    SUBMITTED,
    BatchStock,
    Conflict,
    DomainError,
    HeldLine,
    InvalidInput,
    OrderLines,
    Product,
    Refusals,
    add_line,
    change_line_quantity,
    check_can_add_line,
    check_can_change_line,
    check_new_sku,
    check_order_reference,
    remove_line,
)
from orders_write.events import (
    Allocated,
    Deallocated,
    LineAdded,
    LineQuantityChanged,
    LineRemoved,
    OutOfStock,
)

TOMORROW = datetime.date.today() + datetime.timedelta(days=1)


def order(status=PENDING, **lines: HeldLine) -> OrderLines:
    return OrderLines("o1", status, dict(lines))


def lamp(quantity=2, batchref="") -> HeldLine:
    return HeldLine("line", quantity, "o1", batchref)


def product(*batches: BatchStock, version=3) -> Product:
    return Product("LAMP", list(batches), version)


# --- adding ------------------------------------------------------------------------


def test_adding_a_line_to_a_pending_order_allocates_nothing():
    aggregate = product(BatchStock("depot", 10, 0, None))

    decision = add_line(order(), "LAMP", 2, Decimal("9.50"), aggregate)

    assert decision.events == [LineAdded("o1", "LAMP", 2, Decimal("9.50"))]
    assert decision.placed is None
    assert aggregate.version == 3


def test_adding_a_line_to_a_submitted_order_allocates_it_by_the_policy():
    aggregate = product(BatchStock("ship", 10, 0, TOMORROW), BatchStock("depot", 10, 0, None))

    decision = add_line(order(SUBMITTED, CHAIR=lamp()), "LAMP", 2, Decimal("1"), aggregate)

    assert decision.events == [
        LineAdded("o1", "LAMP", 2, Decimal("1")),
        Allocated("o1", "LAMP", 2, "depot"),
    ]
    assert decision.placed[1].reference == "depot"
    assert aggregate.version == 4


def test_adding_a_line_that_fits_nowhere_to_a_submitted_order_is_out_of_stock():
    aggregate = product(BatchStock("depot", 1, 0, None))

    decision = add_line(order(SUBMITTED), "LAMP", 2, Decimal("1"), aggregate)

    assert decision.events == [
        LineAdded("o1", "LAMP", 2, Decimal("1")),
        OutOfStock("LAMP", "o1", 2),
    ]
    assert decision.placed[1] is None
    assert aggregate.version == 3


def test_adding_a_second_line_for_a_sku_is_a_conflict_that_says_to_change_it():
    with pytest.raises(
        Conflict, match=r"^Order o1 already has a line for LAMP: change its quantity"
    ):
        check_can_add_line(order(LAMP=lamp()), "LAMP")


def test_adding_to_a_cancelled_order_with_a_line_for_the_sku_reports_both():
    with pytest.raises(Refusals) as refused:
        check_can_add_line(order(CANCELLED, LAMP=lamp()), "LAMP")

    assert [refusal.message for refusal in refused.value] == [
        "Order o1 is cancelled",
        "Order o1 already has a line for LAMP: change its quantity instead",
    ]


# --- changing a quantity --------------------------------------------------------------


def test_changing_a_pending_orders_unallocated_line_only_changes_its_quantity():
    aggregate = product(BatchStock("depot", 10, 0, None))

    decision = change_line_quantity(order(LAMP=lamp(2)), "LAMP", 5, aggregate)

    assert decision.events == [LineQuantityChanged("o1", "LAMP", 5, 2)]
    assert (decision.released, decision.placed) == (None, None)
    assert aggregate.version == 3


def test_changing_an_allocated_line_releases_it_then_allocates_it_again():
    aggregate = product(BatchStock("depot", 10, 2, None), BatchStock("ship", 10, 0, TOMORROW))

    decision = change_line_quantity(order(SUBMITTED, LAMP=lamp(2, "depot")), "LAMP", 9, aggregate)

    assert decision.events == [
        Deallocated("o1", "LAMP", 2, "depot"),
        LineQuantityChanged("o1", "LAMP", 9, 2),
        Allocated("o1", "LAMP", 9, "depot"),  # its own 2 were freed first
    ]
    assert decision.released == lamp(2, "depot")
    assert decision.placed[0].quantity == 9
    assert aggregate.version == 5  # released, then allocated


def test_raising_a_line_beyond_its_batch_moves_it_to_the_next_preferred_batch():
    aggregate = product(BatchStock("depot", 10, 8, None), BatchStock("ship", 20, 0, TOMORROW))

    decision = change_line_quantity(order(SUBMITTED, LAMP=lamp(2, "depot")), "LAMP", 12, aggregate)

    assert decision.events[-1] == Allocated("o1", "LAMP", 12, "ship")


def test_raising_a_line_beyond_all_stock_leaves_it_out_of_stock():
    aggregate = product(BatchStock("depot", 10, 2, None))

    decision = change_line_quantity(order(SUBMITTED, LAMP=lamp(2, "depot")), "LAMP", 11, aggregate)

    assert decision.events == [
        Deallocated("o1", "LAMP", 2, "depot"),
        LineQuantityChanged("o1", "LAMP", 11, 2),
        OutOfStock("LAMP", "o1", 11),
    ]
    assert decision.placed[1] is None


def test_changing_a_submitted_orders_waiting_line_allocates_it_when_it_now_fits():
    aggregate = product(BatchStock("depot", 3, 0, None))

    decision = change_line_quantity(order(SUBMITTED, LAMP=lamp(5)), "LAMP", 3, aggregate)

    assert decision.events == [
        LineQuantityChanged("o1", "LAMP", 3, 5),
        Allocated("o1", "LAMP", 3, "depot"),
    ]
    assert decision.released is None


def test_changing_a_line_to_its_own_quantity_changes_nothing():
    aggregate = product(BatchStock("depot", 10, 2, None))

    decision = change_line_quantity(order(SUBMITTED, LAMP=lamp(2, "depot")), "LAMP", 2, aggregate)

    assert decision.events == []
    assert (decision.released, decision.placed, aggregate.version) == (None, None, 3)


def test_changing_a_line_the_order_does_not_have_is_refused():
    with pytest.raises(InvalidInput, match=r"^Order o1 has no line for LAMP$"):
        check_can_change_line(order(CHAIR=lamp()), "LAMP")


def test_changing_a_line_of_a_cancelled_order_is_refused():
    with pytest.raises(InvalidInput, match=r"^Order o1 is cancelled$"):
        change_line_quantity(order(CANCELLED, LAMP=lamp()), "LAMP", 3, product())


# --- removing --------------------------------------------------------------------------


def test_removing_an_allocated_line_releases_it_first():
    aggregate = product(BatchStock("depot", 10, 2, None))

    decision = remove_line(order(SUBMITTED, LAMP=lamp(2, "depot"), CHAIR=lamp()), "LAMP", aggregate)

    assert decision.events == [Deallocated("o1", "LAMP", 2, "depot"), LineRemoved("o1", "LAMP", 2)]
    assert decision.released == lamp(2, "depot")
    assert aggregate.version == 4


def test_removing_an_unallocated_line_releases_nothing():
    aggregate = product()

    decision = remove_line(order(LAMP=lamp(2)), "LAMP", aggregate)

    assert decision.events == [LineRemoved("o1", "LAMP", 2)]
    assert (decision.released, aggregate.version) == (None, 3)


def test_a_pending_order_may_lose_its_last_line():
    assert remove_line(order(LAMP=lamp()), "LAMP", product()).events == [
        LineRemoved("o1", "LAMP", 2)
    ]


def test_removing_the_last_line_of_a_submitted_order_is_refused():
    with pytest.raises(InvalidInput, match=r"cancel the order instead$"):
        remove_line(order(SUBMITTED, LAMP=lamp()), "LAMP", product())


def test_removing_a_line_the_order_does_not_have_is_refused():
    with pytest.raises(DomainError, match=r"^Order o1 has no line for LAMP$"):
        remove_line(order(SUBMITTED, CHAIR=lamp()), "LAMP", product())


# --- the URLs of lines --------------------------------------------------------------


@pytest.mark.parametrize("reference", ["o1/lines", "o1/lines/LAMP", "a/lines/b/c"])
def test_an_order_reference_that_reads_as_a_line_url_is_refused(reference):
    with pytest.raises(InvalidInput, match="lines"):
        check_order_reference(reference)


@pytest.mark.parametrize("reference", ["lines", "lines/o1", "o1/linesman", "o1-lines"])
def test_order_references_may_mention_lines_elsewhere(reference):
    check_order_reference(reference)


def test_a_new_sku_ending_in_a_line_action_is_refused():
    with pytest.raises(InvalidInput, match=r'^SKU must not end in "/remove"$'):
        check_new_sku("LAMP/remove")


@pytest.mark.parametrize("sku", ["remove", "LAMP/removed", "a/b"])
def test_new_skus_may_mention_remove_elsewhere(sku):
    check_new_sku(sku)
