"""Correcting a placed order's lines through the services, on real PostgreSQL: what
AddLine, ChangeLineQuantity and RemoveLine write, and what they refuse."""

import re
from decimal import Decimal

import pytest

from orders_write import commands, domain, services
from orders_write.models import Batch, OrderLine, Product
from tests.database import allocated_quantity, allocation_of, event_names, version
from tests.factories import TOMORROW, add_batch, place

pytestmark = pytest.mark.django_db


def refused(error_type, message):
    return pytest.raises(error_type, match=f"^{re.escape(message)}$")


def submitted(reference, *lines):
    place(reference, *lines)
    services.submit_order(commands.SubmitOrder(reference))


def line_of(reference, sku) -> OrderLine | None:
    return OrderLine.objects.filter(order__reference=reference, product_id=sku).first()


def batch_allocated(ref: str) -> int:
    """What the batch row says it holds: must always equal its lines' sum."""
    return Batch.objects.get(reference=ref).allocated_quantity


def set_price(sku, price):
    Product.objects.filter(sku=sku).update(price=price)


# --- AddLine ---------------------------------------------------------------------------


def test_adding_a_line_to_a_pending_order_copies_the_price_and_allocates_nothing():
    add_batch("lamps", "LAMP", 10)
    add_batch("chairs", "CHAIR", 10)
    set_price("CHAIR", Decimal("49.90"))
    place("o1", ("LAMP", 1))

    result = services.add_line(commands.AddLine(reference="o1", sku="CHAIR", qty=3))

    line = line_of("o1", "CHAIR")
    assert (line.quantity, line.unit_price) == (3, Decimal("49.90"))
    assert [event.kind for event in result.events] == ["LineAdded"]
    assert result.events[0].as_payload() == {
        "reference": "o1",
        "sku": "CHAIR",
        "qty": 3,
        "unit_price": "49.90",
    }
    assert allocation_of("o1", "CHAIR") is None
    assert result.reference == "o1"


def test_adding_a_line_to_a_submitted_order_allocates_it():
    add_batch("ship", "CHAIR", 10, eta=TOMORROW)
    add_batch("depot", "CHAIR", 10)
    add_batch("lamps", "LAMP", 10)
    submitted("o1", ("LAMP", 1))
    before = version("CHAIR")

    result = services.add_line(commands.AddLine(reference="o1", sku="CHAIR", qty=4))

    assert [event.kind for event in result.events] == ["LineAdded", "Allocated"]
    assert allocation_of("o1", "CHAIR") == "depot"
    assert batch_allocated("depot") == allocated_quantity("depot") == 4
    assert version("CHAIR") == before + 1


def test_adding_a_line_out_of_stock_to_a_submitted_order_still_succeeds():
    add_batch("depot", "CHAIR", 2)
    add_batch("lamps", "LAMP", 10)
    submitted("o1", ("LAMP", 1))

    result = services.add_line(commands.AddLine(reference="o1", sku="CHAIR", qty=4))

    assert [event.kind for event in result.events] == ["LineAdded", "OutOfStock"]
    assert line_of("o1", "CHAIR").quantity == 4
    assert allocation_of("o1", "CHAIR") is None


@pytest.mark.parametrize(
    ("command", "error", "message"),
    [
        (commands.AddLine("nope", "CHAIR", 1), domain.NotFound, "Unknown order nope"),
        (commands.AddLine("o1", "NOPE", 1), domain.InvalidSku, "Invalid sku NOPE"),
        (commands.AddLine("o1", "CHAIR", 0), domain.InvalidQuantity, "Quantity must be positive"),
        (
            commands.AddLine("o1", "LAMP", 2),
            domain.Conflict,
            "Order o1 already has a line for LAMP: change its quantity instead",
        ),
        (commands.AddLine("gone", "CHAIR", 1), domain.InvalidInput, "Order gone is cancelled"),
    ],
)
def test_add_line_refusals_write_nothing(unchanged, command, error, message):
    add_batch("lamps", "LAMP", 10)
    add_batch("chairs", "CHAIR", 10)
    place("o1", ("LAMP", 1))
    place("gone", ("LAMP", 1))
    services.cancel_order(commands.CancelOrder("gone"))
    with unchanged(), refused(error, message):
        services.add_line(command)


def test_add_line_reports_every_refusal_at_once(unchanged):
    add_batch("lamps", "LAMP", 10)
    place("gone", ("LAMP", 1))
    services.cancel_order(commands.CancelOrder("gone"))
    with unchanged(), pytest.raises(domain.Refusals) as refusals:
        services.add_line(commands.AddLine("gone", "LAMP", -1))
    assert {(refusal.field, refusal.message) for refusal in refusals.value} == {
        ("qty", "Quantity must be positive"),
        ("reference", "Order gone is cancelled"),
        ("sku", "Order gone already has a line for LAMP: change its quantity instead"),
    }


# --- ChangeLineQuantity ------------------------------------------------------------------


def test_changing_a_pending_orders_line_changes_only_its_quantity():
    add_batch("lamps", "LAMP", 10)
    place("o1", ("LAMP", 1))

    result = services.change_line_quantity(commands.ChangeLineQuantity("o1", "LAMP", 5))

    assert line_of("o1", "LAMP").quantity == 5
    assert [event.kind for event in result.events] == ["LineQuantityChanged"]
    assert result.events[0].previous_qty == 1


def test_changing_a_submitted_orders_line_reallocates_it():
    add_batch("depot", "LAMP", 10)
    add_batch("ship", "LAMP", 20, eta=TOMORROW)
    submitted("o1", ("LAMP", 4))
    before = version("LAMP")

    result = services.change_line_quantity(commands.ChangeLineQuantity("o1", "LAMP", 12))

    assert [event.kind for event in result.events] == [
        "Deallocated",
        "LineQuantityChanged",
        "Allocated",
    ]
    assert allocation_of("o1", "LAMP") == "ship"
    assert (batch_allocated("depot"), batch_allocated("ship")) == (0, 12)
    assert allocated_quantity("ship") == 12
    assert version("LAMP") == before + 2


def test_lowering_an_allocated_line_keeps_it_on_its_batch_with_the_new_quantity():
    add_batch("depot", "LAMP", 10)
    submitted("o1", ("LAMP", 8))

    services.change_line_quantity(commands.ChangeLineQuantity("o1", "LAMP", 3))

    assert allocation_of("o1", "LAMP") == "depot"
    assert batch_allocated("depot") == allocated_quantity("depot") == 3


def test_raising_a_line_beyond_the_stock_leaves_it_waiting():
    add_batch("depot", "LAMP", 10)
    submitted("o1", ("LAMP", 8))

    result = services.change_line_quantity(commands.ChangeLineQuantity("o1", "LAMP", 11))

    assert result.events[-1].kind == "OutOfStock"
    assert allocation_of("o1", "LAMP") is None
    assert batch_allocated("depot") == 0


def test_releasing_stock_by_a_lower_quantity_does_not_fill_waiting_lines():
    # Like cancelling: waiting lines are filled when stock is added (rule 10).
    add_batch("depot", "LAMP", 10)
    submitted("o1", ("LAMP", 8))
    submitted("o2", ("LAMP", 5))

    services.change_line_quantity(commands.ChangeLineQuantity("o1", "LAMP", 2))

    assert allocation_of("o2", "LAMP") is None


def test_changing_a_line_to_its_own_quantity_writes_nothing(unchanged):
    add_batch("depot", "LAMP", 10)
    submitted("o1", ("LAMP", 8))
    with unchanged():
        result = services.change_line_quantity(commands.ChangeLineQuantity("o1", "LAMP", 8))
    assert result.events == ()


@pytest.mark.parametrize(
    ("command", "error", "message"),
    [
        (commands.ChangeLineQuantity("nope", "LAMP", 1), domain.NotFound, "Unknown order nope"),
        (commands.ChangeLineQuantity("o1", "NOPE", 1), domain.InvalidSku, "Invalid sku NOPE"),
        (
            commands.ChangeLineQuantity("o1", "LAMP", -3),
            domain.InvalidQuantity,
            "Quantity must be positive",
        ),
        (
            commands.ChangeLineQuantity("o1", "CHAIR", 2),
            domain.InvalidInput,
            "Order o1 has no line for CHAIR",
        ),
        (
            commands.ChangeLineQuantity("gone", "LAMP", 2),
            domain.InvalidInput,
            "Order gone is cancelled",
        ),
    ],
)
def test_change_line_quantity_refusals_write_nothing(unchanged, command, error, message):
    add_batch("lamps", "LAMP", 10)
    add_batch("chairs", "CHAIR", 10)
    submitted("o1", ("LAMP", 1))
    place("gone", ("LAMP", 1))
    services.cancel_order(commands.CancelOrder("gone"))
    with unchanged(), refused(error, message):
        services.change_line_quantity(command)


# --- RemoveLine ----------------------------------------------------------------------------


def test_removing_an_allocated_line_releases_its_stock():
    add_batch("depot", "LAMP", 10)
    add_batch("chairs", "CHAIR", 10)
    submitted("o1", ("LAMP", 4), ("CHAIR", 1))
    before = version("LAMP")

    result = services.remove_line(commands.RemoveLine("o1", "LAMP"))

    assert line_of("o1", "LAMP") is None
    assert [event.kind for event in result.events] == ["Deallocated", "LineRemoved"]
    assert batch_allocated("depot") == 0
    assert version("LAMP") == before + 1
    assert event_names()[-2:] == ["Deallocated", "LineRemoved"]


def test_a_pending_order_may_lose_every_line():
    add_batch("depot", "LAMP", 10)
    place("o1", ("LAMP", 4))

    result = services.remove_line(commands.RemoveLine("o1", "LAMP"))

    assert [event.kind for event in result.events] == ["LineRemoved"]
    assert not OrderLine.objects.filter(order__reference="o1").exists()


@pytest.mark.parametrize(
    ("command", "error", "message"),
    [
        (commands.RemoveLine("nope", "LAMP"), domain.NotFound, "Unknown order nope"),
        (commands.RemoveLine("o1", "NOPE"), domain.InvalidSku, "Invalid sku NOPE"),
        (commands.RemoveLine("o1", "CHAIR"), domain.InvalidInput, "Order o1 has no line for CHAIR"),
        (
            commands.RemoveLine("o1", "LAMP"),
            domain.InvalidInput,
            "Cannot remove the last line of submitted order o1: cancel the order instead",
        ),
        (commands.RemoveLine("gone", "LAMP"), domain.InvalidInput, "Order gone is cancelled"),
    ],
)
def test_remove_line_refusals_write_nothing(unchanged, command, error, message):
    add_batch("lamps", "LAMP", 10)
    add_batch("chairs", "CHAIR", 10)
    submitted("o1", ("LAMP", 1))
    place("gone", ("LAMP", 1))
    services.cancel_order(commands.CancelOrder("gone"))
    with unchanged(), refused(error, message):
        services.remove_line(command)


# --- keys that line URLs could not reach ------------------------------------------------


def test_a_new_product_whose_sku_ends_in_remove_is_refused(unchanged):
    with unchanged(), refused(domain.InvalidInput, 'SKU must not end in "/remove"'):
        services.create_batch(commands.CreateBatch(ref="b1", sku="LAMP/remove", qty=1))


def test_an_order_whose_reference_holds_a_lines_part_is_refused(unchanged):
    add_batch("lamps", "LAMP", 10)
    with unchanged(), refused(domain.InvalidInput, 'Order reference must not contain "/lines/"'):
        place("o1/lines/LAMP", ("LAMP", 1))
