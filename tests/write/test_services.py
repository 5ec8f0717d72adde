"""Every command through its service, on real PostgreSQL: what it writes, what it refuses."""

import re
from decimal import Decimal

import pytest

from orders_write import commands, domain, events, services
from orders_write.models import Batch, Event, Order, OrderLine, Product
from tests.database import allocated_quantity, allocation_of, event_names, version
from tests.factories import LATER, TOMORROW, add_batch, place

pytestmark = pytest.mark.django_db


def refused(error_type, message):
    return pytest.raises(error_type, match=f"^{re.escape(message)}$")


# --- CreateProduct -----------------------------------------------------------------


def test_create_product_records_product_and_event():
    result = services.create_product(
        commands.CreateProduct(sku="RED-CHAIR", name="Red chair", price=Decimal("49.90"))
    )

    product = Product.objects.get(sku="RED-CHAIR")
    assert (product.name, product.price, product.version) == ("Red chair", Decimal("49.90"), 0)
    assert event_names() == ["ProductCreated"]
    assert Event.objects.get().payload == {
        "sku": "RED-CHAIR",
        "name": "Red chair",
        "price": "49.90",
    }
    assert result.transaction_id == Event.objects.get().transaction_id


def test_skus_are_case_sensitive():
    services.create_product(commands.CreateProduct(sku="lamp", name="small lamp"))
    services.create_product(commands.CreateProduct(sku="LAMP", name="big lamp"))

    assert Product.objects.count() == 2


def test_duplicate_product_is_a_conflict_and_writes_nothing(unchanged):
    services.create_product(commands.CreateProduct(sku="LAMP", name="Lamp"))
    with unchanged(), refused(domain.Conflict, "Product LAMP already exists"):
        services.create_product(commands.CreateProduct(sku="LAMP", name="Other lamp"))


@pytest.mark.parametrize(
    ("sku", "name", "price", "message"),
    [
        ("", "Lamp", Decimal("1"), "SKU must not be blank"),
        ("   ", "Lamp", Decimal("1"), "SKU must not be blank"),
        ("x" * 256, "Lamp", Decimal("1"), "SKU must be at most 255 characters"),
        ("LAMP", "", Decimal("1"), "Name must not be blank"),
        ("LAMP", "Lamp", Decimal("-0.01"), "Price must not be negative"),
        ("LAMP", "Lamp", Decimal("1.001"), "Price must have at most 2 decimal places"),
    ],
)
def test_invalid_product_is_refused_and_writes_nothing(unchanged, sku, name, price, message):
    with unchanged(), refused(domain.InvalidInput, message):
        services.create_product(commands.CreateProduct(sku=sku, name=name, price=price))


def test_longest_allowed_sku_is_accepted():
    services.create_product(commands.CreateProduct(sku="x" * 255, name="Long"))

    assert Product.objects.filter(sku="x" * 255).exists()


# --- CreateBatch -------------------------------------------------------------------


def test_batch_for_unknown_sku_creates_the_product():
    add_batch("b1", "SMALL-TABLE", 20, TOMORROW)

    product = Product.objects.get(sku="SMALL-TABLE")
    assert (product.name, product.price) == ("SMALL-TABLE", Decimal("0.00"))
    batch = Batch.objects.get(reference="b1")
    assert (batch.product_id, batch.purchased_quantity, batch.eta) == ("SMALL-TABLE", 20, TOMORROW)
    assert event_names() == ["ProductCreated", "BatchCreated"]


def test_batch_for_known_sku_keeps_the_product():
    services.create_product(commands.CreateProduct(sku="LAMP", name="Lamp", price=Decimal("5")))
    add_batch("b1", "LAMP", 5)

    assert Product.objects.get(sku="LAMP").name == "Lamp"
    assert event_names() == ["ProductCreated", "BatchCreated"]


def test_duplicate_batch_reference_is_a_conflict_and_writes_nothing(unchanged):
    add_batch("b1", "LAMP", 5)
    with unchanged(), refused(domain.Conflict, "Batch b1 already exists"):
        add_batch("b1", "OTHER-SKU", 5)
    assert not Product.objects.filter(sku="OTHER-SKU").exists()


@pytest.mark.parametrize("qty", [0, -1])
def test_batch_quantity_must_be_positive(unchanged, qty):
    with unchanged(), refused(domain.InvalidQuantity, "Quantity must be positive"):
        add_batch("b1", "LAMP", qty)


# --- PlaceOrder --------------------------------------------------------------------


def test_place_order_is_pending_with_prices_copied():
    services.create_product(commands.CreateProduct(sku="LAMP", name="Lamp", price=Decimal("5.50")))
    add_batch("b1", "CHAIR", 10)
    result = place("o1", ("LAMP", 2), ("CHAIR", 3))

    order = Order.objects.get(reference="o1")
    assert (order.status, order.customer_name) == ("pending", "Ada Lovelace")
    lines = {line.product_id: (line.quantity, line.unit_price) for line in order.lines.all()}
    assert lines == {"LAMP": (2, Decimal("5.50")), "CHAIR": (3, Decimal("0.00"))}
    assert result.reference == "o1"
    assert event_names()[-1] == "OrderPlaced"
    assert allocation_of("o1", "LAMP") is None  # placing allocates nothing


def test_line_price_does_not_follow_later_price_changes():
    services.create_product(commands.CreateProduct(sku="LAMP", name="Lamp", price=Decimal("5")))
    place("o1", ("LAMP", 1))
    Product.objects.filter(sku="LAMP").update(price=Decimal("7"))

    assert OrderLine.objects.get(order__reference="o1").unit_price == Decimal("5.00")


def test_a_shipping_address_may_have_several_lines():
    add_batch("b1", "LAMP", 10)
    services.place_order(
        commands.PlaceOrder(
            customer="Ada", shipping_address="12 St James's Square\r\nLondon", reference="o1"
        )
    )

    assert Order.objects.get(reference="o1").shipping_address == "12 St James's Square\r\nLondon"


def test_place_order_without_reference_generates_one():
    add_batch("b1", "LAMP", 10)
    result = services.place_order(
        commands.PlaceOrder(
            customer="Ada", shipping_address="London", lines=(commands.OrderLineInput("LAMP", 1),)
        )
    )

    assert result.reference.startswith("ORD-")
    assert Order.objects.filter(reference=result.reference).exists()


def test_unknown_sku_on_an_order_is_refused_and_writes_nothing(unchanged):
    add_batch("b1", "LAMP", 10)
    with unchanged(), refused(domain.InvalidSku, "Invalid sku NOPE"):
        place("o1", ("LAMP", 1), ("NOPE", 1))


@pytest.mark.parametrize("qty", [0, -5])
def test_order_line_quantity_must_be_positive(unchanged, qty):
    add_batch("b1", "LAMP", 10)
    with unchanged(), refused(domain.InvalidQuantity, "Quantity must be positive"):
        place("o1", ("LAMP", qty))


def test_duplicate_order_reference_is_a_conflict_and_writes_nothing(unchanged):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 1))
    with unchanged(), refused(domain.Conflict, "Order o1 already exists"):
        place("o1", ("LAMP", 2))


def test_one_line_per_sku_per_order(unchanged):
    add_batch("b1", "LAMP", 10)
    with unchanged(), refused(domain.InvalidInput, "SKU LAMP appears on more than one line"):
        place("o1", ("LAMP", 1), ("LAMP", 2))


@pytest.mark.parametrize(
    ("customer", "address", "message"),
    [
        ("", "London", "Customer must not be blank"),
        ("Ada", " ", "Shipping address must not be blank"),
    ],
)
def test_order_needs_customer_and_address(unchanged, customer, address, message):
    with unchanged(), refused(domain.InvalidInput, message):
        services.place_order(commands.PlaceOrder(customer=customer, shipping_address=address))


# --- SubmitOrder -------------------------------------------------------------------


def test_submitting_allocates_every_line():
    add_batch("lamps", "LAMP", 10)
    add_batch("chairs", "CHAIR", 10, TOMORROW)
    place("o1", ("LAMP", 2), ("CHAIR", 3))

    services.submit_order(commands.SubmitOrder(reference="o1"))

    assert Order.objects.get(reference="o1").status == "submitted"
    assert (allocation_of("o1", "LAMP"), allocation_of("o1", "CHAIR")) == ("lamps", "chairs")
    assert (version("LAMP"), version("CHAIR")) == (1, 1)
    assert event_names()[-3:] == ["OrderSubmitted", "Allocated", "Allocated"]


def test_submitting_records_out_of_stock_and_still_succeeds():
    add_batch("lamps", "LAMP", 1)
    place("o1", ("LAMP", 2))

    services.submit_order(commands.SubmitOrder(reference="o1"))

    assert Order.objects.get(reference="o1").status == "submitted"
    assert allocation_of("o1", "LAMP") is None
    assert event_names()[-2:] == ["OrderSubmitted", "OutOfStock"]
    assert Event.objects.last().payload == {"sku": "LAMP", "orderid": "o1", "qty": 2}
    assert version("LAMP") == 0


def test_submitting_an_empty_order_is_refused_and_writes_nothing(unchanged):
    services.place_order(commands.PlaceOrder(customer="Ada", shipping_address="x", reference="o1"))
    with unchanged(), refused(domain.InvalidInput, "Cannot submit empty order"):
        services.submit_order(commands.SubmitOrder(reference="o1"))


def test_submitting_twice_is_refused(unchanged):
    add_batch("lamps", "LAMP", 10)
    place("o1", ("LAMP", 1))
    services.submit_order(commands.SubmitOrder(reference="o1"))
    with unchanged(), refused(domain.InvalidInput, "Order o1 is already submitted"):
        services.submit_order(commands.SubmitOrder(reference="o1"))


def test_submitting_an_unknown_order_is_not_found(unchanged):
    with unchanged(), refused(domain.NotFound, "Unknown order nope"):
        services.submit_order(commands.SubmitOrder(reference="nope"))


# --- CancelOrder -------------------------------------------------------------------


def test_cancelling_releases_every_allocation():
    add_batch("lamps", "LAMP", 10)
    add_batch("chairs", "CHAIR", 10)
    place("o1", ("LAMP", 2), ("CHAIR", 3))
    services.submit_order(commands.SubmitOrder(reference="o1"))

    services.cancel_order(commands.CancelOrder(reference="o1"))

    assert Order.objects.get(reference="o1").status == "cancelled"
    assert (allocated_quantity("lamps"), allocated_quantity("chairs")) == (0, 0)
    assert (version("LAMP"), version("CHAIR")) == (2, 2)
    assert event_names()[-3:] == ["OrderCancelled", "Deallocated", "Deallocated"]


def test_a_pending_order_can_be_cancelled():
    add_batch("lamps", "LAMP", 10)
    place("o1", ("LAMP", 2))

    services.cancel_order(commands.CancelOrder(reference="o1"))

    assert Order.objects.get(reference="o1").status == "cancelled"
    assert version("LAMP") == 0


@pytest.mark.parametrize(
    "command",
    [
        commands.SubmitOrder(reference="o1"),
        commands.CancelOrder(reference="o1"),
        commands.Allocate(orderid="o1", sku="LAMP", qty=1),
        commands.Allocate(orderid="o1", sku="CHAIR", qty=1),
        commands.Deallocate(orderid="o1", sku="LAMP"),
    ],
    ids=lambda command: type(command).__name__,
)
def test_a_cancelled_order_accepts_no_further_command(unchanged, command):
    add_batch("lamps", "LAMP", 10)
    add_batch("chairs", "CHAIR", 10)
    place("o1", ("LAMP", 1))
    services.cancel_order(commands.CancelOrder(reference="o1"))
    with unchanged(), refused(domain.InvalidInput, "Order o1 is cancelled"):
        services.handle(command)


# --- Allocate ----------------------------------------------------------------------


def test_allocate_creates_a_submitted_order_without_customer():
    add_batch("lamps", "LAMP", 10)

    result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=3))

    order = Order.objects.get(reference="o1")
    assert (order.status, order.customer_name) == ("submitted", "")
    assert allocation_of("o1", "LAMP") == "lamps"
    assert allocated_quantity("lamps") == 3
    assert [event.kind for event in result.events] == ["OrderPlaced", "Allocated"]
    assert version("LAMP") == 1


def test_allocate_prefers_warehouse_stock_to_shipments():
    add_batch("shipment", "LAMP", 10, TOMORROW)
    add_batch("warehouse", "LAMP", 10)

    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=3))

    assert allocation_of("o1", "LAMP") == "warehouse"


def test_allocate_prefers_the_earliest_shipment_then_the_smaller_reference():
    add_batch("late", "LAMP", 10, LATER)
    add_batch("soon-b", "LAMP", 10, TOMORROW)
    add_batch("soon-a", "LAMP", 10, TOMORROW)

    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=3))

    assert allocation_of("o1", "LAMP") == "soon-a"


def test_allocate_skips_a_batch_that_cannot_hold_the_whole_line():
    add_batch("warehouse", "LAMP", 2)
    add_batch("shipment", "LAMP", 10, TOMORROW)

    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=3))

    assert allocation_of("o1", "LAMP") == "shipment"
    assert allocated_quantity("warehouse") == 0


def test_allocate_adds_a_line_to_an_existing_order():
    add_batch("lamps", "LAMP", 10)
    add_batch("chairs", "CHAIR", 10)
    place("o1", ("LAMP", 1))

    services.allocate(commands.Allocate(orderid="o1", sku="CHAIR", qty=2))

    order = Order.objects.get(reference="o1")
    assert order.customer_name == "Ada Lovelace"
    assert sorted(order.lines.values_list("product_id", "quantity")) == [("CHAIR", 2), ("LAMP", 1)]
    assert allocation_of("o1", "CHAIR") == "chairs"


def test_allocating_an_allocated_line_changes_nothing(unchanged):
    add_batch("lamps", "LAMP", 10)
    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=3))

    with unchanged():
        result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=3))

    assert result.events == ()
    assert allocated_quantity("lamps") == 3


def test_allocate_out_of_stock_keeps_the_line_and_succeeds():
    add_batch("lamps", "LAMP", 2)

    result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=3))

    assert [event.kind for event in result.events] == ["OrderPlaced", "OutOfStock"]
    assert OrderLine.objects.filter(order__reference="o1", product_id="LAMP").exists()
    assert allocation_of("o1", "LAMP") is None
    assert version("LAMP") == 0


def test_allocating_an_unallocated_line_again_allocates_it_once_stock_arrives():
    add_batch("small", "LAMP", 2)
    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=3))
    add_batch("big", "LAMP", 10, TOMORROW)

    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=3))

    assert allocation_of("o1", "LAMP") == "big"


def test_allocate_with_another_quantity_than_the_line_is_a_conflict(unchanged):
    add_batch("lamps", "LAMP", 10)
    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=3))
    with unchanged(), refused(domain.Conflict, "Order o1 already has a line of 3 LAMP"):
        services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=4))


def test_allocate_unknown_sku_is_refused_and_creates_no_order(unchanged):
    add_batch("lamps", "LAMP", 10)
    with unchanged(), refused(domain.InvalidSku, "Invalid sku NOPE"):
        services.allocate(commands.Allocate(orderid="o1", sku="NOPE", qty=1))
    assert not Order.objects.filter(reference="o1").exists()


@pytest.mark.parametrize("qty", [0, -1])
def test_allocate_quantity_must_be_positive(unchanged, qty):
    add_batch("lamps", "LAMP", 10)
    with unchanged(), refused(domain.InvalidQuantity, "Quantity must be positive"):
        services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=qty))


# --- Deallocate --------------------------------------------------------------------


def test_deallocate_frees_the_batch_and_keeps_the_line():
    add_batch("lamps", "LAMP", 10)
    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=3))

    result = services.deallocate(commands.Deallocate(orderid="o1", sku="LAMP"))

    assert allocated_quantity("lamps") == 0
    assert allocation_of("o1", "LAMP") is None
    assert OrderLine.objects.filter(order__reference="o1").count() == 1
    assert [event.kind for event in result.events] == ["Deallocated"]
    assert result.events[0].batchref == "lamps"
    assert version("LAMP") == 2


def test_deallocating_an_unallocated_line_changes_nothing(unchanged):
    add_batch("lamps", "LAMP", 10)
    place("o1", ("LAMP", 1))
    with unchanged():
        result = services.deallocate(commands.Deallocate(orderid="o1", sku="LAMP"))
    assert result.events == ()


@pytest.mark.parametrize(
    ("command", "error", "message"),
    [
        (commands.Deallocate(orderid="nope", sku="LAMP"), domain.NotFound, "Unknown order nope"),
        (commands.Deallocate(orderid="o1", sku="NOPE"), domain.InvalidSku, "Invalid sku NOPE"),
        (
            commands.Deallocate(orderid="o1", sku="CHAIR"),
            domain.InvalidInput,
            "Order o1 has no line for CHAIR",
        ),
    ],
)
def test_deallocate_refusals_write_nothing(unchanged, command, error, message):
    add_batch("lamps", "LAMP", 10)
    add_batch("chairs", "CHAIR", 10)
    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=1))
    with unchanged(), refused(error, message):
        services.deallocate(command)


# --- ChangeBatchQuantity -----------------------------------------------------------


def test_reducing_a_batch_that_still_fits_moves_nothing():
    add_batch("lamps", "LAMP", 10)
    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=3))

    result = services.change_batch_quantity(commands.ChangeBatchQuantity(ref="lamps", qty=3))

    assert Batch.objects.get(reference="lamps").purchased_quantity == 3
    assert allocation_of("o1", "LAMP") == "lamps"
    assert [event.kind for event in result.events] == ["BatchQuantityChanged"]
    assert version("LAMP") == 1


def test_reducing_a_batch_reallocates_the_latest_lines_elsewhere():
    add_batch("warehouse", "LAMP", 10)
    add_batch("shipment", "LAMP", 10, TOMORROW)
    for orderid in ("o1", "o2", "o3"):
        services.allocate(commands.Allocate(orderid=orderid, sku="LAMP", qty=3))

    result = services.change_batch_quantity(commands.ChangeBatchQuantity(ref="warehouse", qty=4))

    # 9 allocated, 4 left: the newest lines (o3, then o2) leave until 3 fits in 4.
    assert allocation_of("o1", "LAMP") == "warehouse"
    assert (allocation_of("o2", "LAMP"), allocation_of("o3", "LAMP")) == ("shipment", "shipment")
    assert allocated_quantity("warehouse") == 3
    assert [event.kind for event in result.events] == [
        "BatchQuantityChanged",
        "Deallocated",
        "Deallocated",
        "Allocated",
        "Allocated",
    ]
    assert version("LAMP") == 5  # three allocations, one release, one reallocation


def test_reducing_a_batch_with_nowhere_else_to_go_leaves_lines_out_of_stock():
    add_batch("warehouse", "LAMP", 10)
    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=6))
    services.allocate(commands.Allocate(orderid="o2", sku="LAMP", qty=4))

    result = services.change_batch_quantity(commands.ChangeBatchQuantity(ref="warehouse", qty=5))

    assert allocation_of("o1", "LAMP") is None
    assert allocation_of("o2", "LAMP") == "warehouse"
    assert [event.kind for event in result.events] == [
        "BatchQuantityChanged",
        "Deallocated",
        "Deallocated",
        "OutOfStock",
        "Allocated",
    ]


def test_changing_an_unknown_batch_is_not_found(unchanged):
    with unchanged(), refused(domain.NotFound, "Unknown batch nope"):
        services.change_batch_quantity(commands.ChangeBatchQuantity(ref="nope", qty=3))


@pytest.mark.parametrize("qty", [0, -3])
def test_changed_batch_quantity_must_be_positive(unchanged, qty):
    add_batch("lamps", "LAMP", 10)
    with unchanged(), refused(domain.InvalidQuantity, "Quantity must be positive"):
        services.change_batch_quantity(commands.ChangeBatchQuantity(ref="lamps", qty=qty))


# --- the event log -----------------------------------------------------------------


def test_event_log_holds_each_commands_events_in_order():
    add_batch("lamps", "LAMP", 1)
    place("o1", ("LAMP", 1))
    services.submit_order(commands.SubmitOrder(reference="o1"))
    services.allocate(commands.Allocate(orderid="o2", sku="LAMP", qty=1))

    log = list(Event.objects.order_by("id").values_list("name", "payload"))

    assert log == [
        ("ProductCreated", {"sku": "LAMP", "name": "LAMP", "price": "0.00"}),
        ("BatchCreated", {"ref": "lamps", "sku": "LAMP", "qty": 1, "eta": None}),
        (
            "OrderPlaced",
            {"reference": "o1", "customer": "Ada Lovelace", "skus": ["LAMP"], "status": "pending"},
        ),
        ("OrderSubmitted", {"reference": "o1"}),
        ("Allocated", {"orderid": "o1", "sku": "LAMP", "qty": 1, "batchref": "lamps"}),
        ("OrderPlaced", {"reference": "o2", "customer": "", "skus": [], "status": "submitted"}),
        ("OutOfStock", {"sku": "LAMP", "orderid": "o2", "qty": 1}),
    ]


# --- Back-orders (rule 10) ---------------------------------------------------------


def waiting_for_lamps() -> None:
    """Submitted o1 (3 LAMP) then o2 (2 LAMP), with no stock: both wait; pending o3 and
    cancelled o4 want lamps too."""
    services.create_product(commands.CreateProduct(sku="LAMP", name="Lamp"))
    for reference, qty in (("o1", 3), ("o2", 2), ("o3", 1), ("o4", 1)):
        place(reference, ("LAMP", qty))
    for reference in ("o1", "o2", "o4"):
        services.submit_order(commands.SubmitOrder(reference=reference))
    services.cancel_order(commands.CancelOrder(reference="o4"))
    assert [allocation_of(reference, "LAMP") for reference in ("o1", "o2")] == [None, None]


def test_a_new_batch_fills_the_waiting_lines_in_the_order_they_were_submitted():
    waiting_for_lamps()

    result = services.create_batch(commands.CreateBatch(ref="arrived", sku="LAMP", qty=4))

    # o1 (3 of the 4) first; o2's 2 no longer fit, so it keeps waiting, with no new event.
    assert [event.kind for event in result.events] == ["BatchCreated", "Allocated"]
    assert result.events[1] == events.Allocated("o1", "LAMP", 3, "arrived")
    assert allocation_of("o1", "LAMP") == "arrived"
    assert allocation_of("o2", "LAMP") is None
    # Lines of a pending and of a cancelled order do not wait for stock.
    assert (allocation_of("o3", "LAMP"), allocation_of("o4", "LAMP")) == (None, None)
    assert allocated_quantity("arrived") == 3
    assert version("LAMP") == 1


def test_a_raised_batch_quantity_fills_the_waiting_lines_too():
    waiting_for_lamps()
    services.create_batch(commands.CreateBatch(ref="arrived", sku="LAMP", qty=4))

    result = services.change_batch_quantity(commands.ChangeBatchQuantity(ref="arrived", qty=5))

    assert [event.kind for event in result.events] == ["BatchQuantityChanged", "Allocated"]
    assert allocation_of("o2", "LAMP") == "arrived"
    assert allocated_quantity("arrived") == 5


def test_waiting_lines_go_by_submission_not_by_placing():
    services.create_product(commands.CreateProduct(sku="LAMP", name="Lamp"))
    place("placed-first", ("LAMP", 2))
    place("placed-second", ("LAMP", 2))
    services.submit_order(commands.SubmitOrder(reference="placed-second"))
    services.submit_order(commands.SubmitOrder(reference="placed-first"))

    services.create_batch(commands.CreateBatch(ref="arrived", sku="LAMP", qty=2))

    assert allocation_of("placed-second", "LAMP") == "arrived"
    assert allocation_of("placed-first", "LAMP") is None


def test_a_lowered_batch_quantity_adds_no_stock_and_fills_nothing():
    waiting_for_lamps()
    services.create_batch(commands.CreateBatch(ref="arrived", sku="LAMP", qty=4))

    result = services.change_batch_quantity(commands.ChangeBatchQuantity(ref="arrived", qty=3))

    assert [event.kind for event in result.events] == ["BatchQuantityChanged"]
    assert allocation_of("o2", "LAMP") is None


def test_an_order_allocate_creates_waits_like_a_submitted_one():
    services.create_product(commands.CreateProduct(sku="LAMP", name="Lamp"))
    services.allocate(commands.Allocate(orderid="shop-1", sku="LAMP", qty=2))  # no stock

    services.create_batch(commands.CreateBatch(ref="arrived", sku="LAMP", qty=2))

    assert allocation_of("shop-1", "LAMP") == "arrived"
