"""One function per command: lock, load, apply the domain rules, save, record events.

This is the only way data changes. Each service runs in one transaction; its events go
into the event log in that transaction and out as signals after it commits. A refused
command raises a ``domain.DomainError`` and writes nothing.

Locks: the product row is the consistency boundary. A command takes the order's row
first (when it has one), then its products' rows in SKU order, always
``FOR NO KEY UPDATE`` so that inserting lines (which key-share the product) never
waits on it. The same order everywhere means two commands never deadlock.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F

from orders_write import commands, domain, events
from orders_write.models import Allocation, Batch, Event, Order, OrderLine, Product

logger = logging.getLogger(__name__)

# SQLSTATEs worth one more try when the service owns its transaction.
_RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure
_ATTEMPTS = 5


@dataclass(frozen=True)
class CommandResult:
    """What an accepted command did: its events, and the transaction that wrote them."""

    events: tuple[events.Event, ...]
    transaction_id: int
    reference: str | None = None

    @property
    def consistency_token(self) -> str:
        """Give it to a query (X-Consistency-Token) to read this write."""
        return events.consistency_token(self.transaction_id)


C = TypeVar("C", bound=commands.Command)


def _service(func: Callable[[C], CommandResult]) -> Callable[[C], CommandResult]:
    """Run ``func`` in one transaction, retrying a deadlock when it owns the transaction."""

    @functools.wraps(func)
    def run(command: C) -> CommandResult:
        owns_transaction = not connection.in_atomic_block
        attempt = 1
        while True:
            try:
                with transaction.atomic():
                    return func(command)
            except OperationalError as error:
                code = getattr(error.__cause__, "pgcode", None)
                if not owns_transaction or code not in _RETRYABLE or attempt >= _ATTEMPTS:
                    raise
                logger.warning("%s: retrying after %s", func.__name__, code)
                attempt += 1

    return run


def _record(recorded: Sequence[events.Event], *, reference: str | None = None) -> CommandResult:
    """Append the events to the log in this transaction; publish them after commit."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        (transaction_id,) = cursor.fetchone()
    Event.objects.bulk_create(
        Event(name=event.kind, payload=event.as_payload(), transaction_id=transaction_id)
        for event in recorded
    )
    result = CommandResult(tuple(recorded), transaction_id, reference)
    transaction.on_commit(functools.partial(_publish, result))
    return result


def _publish(result: CommandResult) -> None:
    """Send the committed events as signals. A failing receiver never fails the command."""
    for event in result.events:
        for receiver, response in events.event_committed.send_robust(
            sender=type(event), event=event, transaction_id=result.transaction_id
        ):
            if isinstance(response, Exception):
                logger.error("receiver %r failed on %s", receiver, event, exc_info=response)
    for receiver, response in events.events_committed.send_robust(
        sender=CommandResult, events=result.events, transaction_id=result.transaction_id
    ):
        if isinstance(response, Exception):
            logger.error("receiver %r failed", receiver, exc_info=response)


# --- loading and locking -----------------------------------------------------------


def _lock_products(skus: Iterable[str]) -> dict[str, Product]:
    wanted = sorted(set(skus))
    return {
        product.sku: product
        for product in Product.objects.select_for_update(no_key=True)
        .filter(sku__in=wanted)
        .order_by("sku")
    }


def _lock_order(reference: str, *, field: str = "reference") -> Order:
    try:
        return Order.objects.select_for_update(no_key=True).get(reference=reference)
    except Order.DoesNotExist:
        raise domain.NotFound(f"Unknown order {reference}", field=field) from None


def _batch_stock(sku: str) -> list[domain.BatchStock]:
    batches = Batch.objects.filter(product_id=sku).values_list(
        "reference", "purchased_quantity", "allocated_quantity", "eta"
    )
    return [domain.BatchStock(*row) for row in batches]


def _add_to_allocated(quantities: Iterable[tuple[int, int]]) -> None:
    """Add each (batch id, quantity) to the batch's allocated quantity (negative: release)."""
    totals: defaultdict[int, int] = defaultdict(int)
    for batch_id, quantity in quantities:
        totals[batch_id] += quantity
    for batch_id, quantity in sorted(totals.items()):
        Batch.objects.filter(pk=batch_id).update(
            allocated_quantity=F("allocated_quantity") + quantity
        )


def _bump_version(product: Product) -> None:
    Product.objects.filter(pk=product.pk).update(version=F("version") + 1)
    product.version += 1


def _allocate_lines(product: Product, lines: Sequence[OrderLine]) -> list[events.Event]:
    """Allocate unallocated lines of one (locked) product by the domain's policy."""
    if not lines:
        return []
    decisions = domain.allocate_lines(
        _batch_stock(product.sku), [domain.HeldLine(line, line.quantity) for line in lines]
    )
    chosen_refs = {batch.reference for _, batch in decisions if batch is not None}
    batch_ids = dict(Batch.objects.filter(reference__in=chosen_refs).values_list("reference", "id"))
    new_allocations = []
    recorded: list[events.Event] = []
    for held, batch in decisions:
        line: OrderLine = held.key
        if batch is None:
            recorded.append(events.OutOfStock(product.sku, line.order.reference, line.quantity))
        else:
            new_allocations.append(Allocation(line=line, batch_id=batch_ids[batch.reference]))
            recorded.append(
                events.Allocated(line.order.reference, product.sku, line.quantity, batch.reference)
            )
    if new_allocations:
        Allocation.objects.bulk_create(new_allocations)
        _add_to_allocated(
            (allocation.batch_id, allocation.line.quantity) for allocation in new_allocations
        )
        _bump_version(product)
    return recorded


def _release(allocations: Sequence[Allocation]) -> list[events.Event]:
    """Delete allocations (their products locked by the caller)."""
    if not allocations:
        return []
    Allocation.objects.filter(pk__in=[allocation.pk for allocation in allocations]).delete()
    _add_to_allocated(
        (allocation.batch_id, -allocation.line.quantity) for allocation in allocations
    )
    return [
        events.Deallocated(
            allocation.line.order.reference,
            allocation.line.product_id,
            allocation.line.quantity,
            allocation.batch.reference,
        )
        for allocation in allocations
    ]


def _insert(instance: Product | Batch | Order, conflict: domain.Conflict) -> None:
    """Insert a row whose key must be new; a concurrent twin becomes ``conflict``."""
    try:
        with transaction.atomic():
            instance.save(force_insert=True)
    except IntegrityError:
        raise conflict from None


def _get_or_create_product(sku: str) -> list[events.Event]:
    """A batch for an unknown SKU creates its product (name = SKU, price 0)."""
    if Product.objects.filter(sku=sku).exists():
        return []
    try:
        with transaction.atomic():
            Product.objects.create(sku=sku, name=sku)
    except IntegrityError:
        return []  # created meanwhile by another command
    return [events.ProductCreated(sku, sku, Decimal("0.00"))]


# --- the services ------------------------------------------------------------------


@_service
def create_product(command: commands.CreateProduct) -> CommandResult:
    domain.check_key(command.sku, what="SKU", field="sku")
    domain.check_name(command.name, what="Name", field="name")
    domain.check_price(command.price)
    if Product.objects.filter(sku=command.sku).exists():
        raise domain.Conflict(f"Product {command.sku} already exists", field="sku")
    product = Product(sku=command.sku, name=command.name, price=command.price)
    _insert(product, domain.Conflict(f"Product {command.sku} already exists", field="sku"))
    return _record([events.ProductCreated(product.sku, product.name, product.price)])


@_service
def create_batch(command: commands.CreateBatch) -> CommandResult:
    domain.check_key(command.ref, what="Batch reference", field="ref")
    domain.check_key(command.sku, what="SKU", field="sku")
    domain.check_quantity(command.qty)
    conflict = domain.Conflict(f"Batch {command.ref} already exists", field="ref")
    if Batch.objects.filter(reference=command.ref).exists():
        raise conflict
    recorded = _get_or_create_product(command.sku)
    _lock_products([command.sku])
    batch = Batch(
        reference=command.ref,
        product_id=command.sku,
        purchased_quantity=command.qty,
        eta=command.eta,
    )
    _insert(batch, conflict)
    recorded.append(events.BatchCreated(command.ref, command.sku, command.qty, command.eta))
    return _record(recorded)


@_service
def change_batch_quantity(command: commands.ChangeBatchQuantity) -> CommandResult:
    domain.check_quantity(command.qty)
    sku = Batch.objects.filter(reference=command.ref).values_list("product_id", flat=True).first()
    if sku is None:
        raise domain.NotFound(f"Unknown batch {command.ref}", field="ref")
    product = _lock_products([sku])[sku]
    batch = Batch.objects.get(reference=command.ref)
    previous_quantity = batch.purchased_quantity
    batch.purchased_quantity = command.qty
    batch.save(update_fields=["purchased_quantity"])
    recorded: list[events.Event] = [
        events.BatchQuantityChanged(batch.reference, sku, command.qty, previous_quantity)
    ]
    held = list(
        batch.allocations.select_related("line__order", "batch").order_by("allocated_at", "id")
    )
    released = domain.lines_to_release(
        command.qty, [domain.HeldLine(allocation, allocation.line.quantity) for allocation in held]
    )
    if released:
        allocations = [line.key for line in released]
        recorded += _release(allocations)
        _bump_version(product)
        # Freed lines go back through the policy, the oldest allocation first.
        recorded += _allocate_lines(
            product, [allocation.line for allocation in reversed(allocations)]
        )
    return _record(recorded)


def _new_order_reference() -> str:
    return f"ORD-{secrets.token_hex(6).upper()}"


@_service
def place_order(command: commands.PlaceOrder) -> CommandResult:
    if command.reference is not None:
        domain.check_order_reference(command.reference)
    domain.check_name(command.customer, what="Customer", field="customer")
    domain.check_text(
        command.shipping_address,
        what="Shipping address",
        field="shipping_address",
        max_length=2000,
        required=True,
    )
    for index, line in enumerate(command.lines):
        domain.check_key(line.sku, what="SKU", field=f"lines.{index}.sku")
        domain.check_quantity(line.qty, field=f"lines.{index}.qty")
    domain.check_distinct_skus(line.sku for line in command.lines)
    prices = dict(
        Product.objects.filter(sku__in=[line.sku for line in command.lines]).values_list(
            "sku", "price"
        )
    )
    for index, line in enumerate(command.lines):
        if line.sku not in prices:
            raise domain.InvalidSku(line.sku, field=f"lines.{index}.sku")

    reference = command.reference or _new_order_reference()
    conflict = domain.Conflict(f"Order {reference} already exists", field="reference")
    if Order.objects.filter(reference=reference).exists():
        raise conflict
    order = Order(
        reference=reference,
        customer_name=command.customer,
        shipping_address=command.shipping_address,
        status=Order.Status.PENDING,
    )
    _insert(order, conflict)
    OrderLine.objects.bulk_create(
        OrderLine(order=order, product_id=line.sku, quantity=line.qty, unit_price=prices[line.sku])
        for line in sorted(command.lines, key=lambda line: line.sku)
    )
    placed = events.OrderPlaced(
        reference, command.customer, tuple(line.sku for line in command.lines), order.status
    )
    return _record([placed], reference=reference)


def _lines_by_sku(lines: Iterable[OrderLine]) -> dict[str, list[OrderLine]]:
    grouped: dict[str, list[OrderLine]] = defaultdict(list)
    for line in lines:
        grouped[line.product_id].append(line)
    return grouped


@_service
def submit_order(command: commands.SubmitOrder) -> CommandResult:
    order = _lock_order(command.reference)
    domain.check_can_submit(order.reference, order.status, order.lines.count())
    order.status = Order.Status.SUBMITTED
    order.save(update_fields=["status"])
    recorded: list[events.Event] = [events.OrderSubmitted(order.reference)]
    unallocated = _lines_by_sku(
        order.lines.select_related("order").filter(allocation__isnull=True).order_by("product_id")
    )
    products = _lock_products(unallocated)
    for sku in sorted(unallocated):
        recorded += _allocate_lines(products[sku], unallocated[sku])
    return _record(recorded, reference=order.reference)


@_service
def cancel_order(command: commands.CancelOrder) -> CommandResult:
    order = _lock_order(command.reference)
    domain.check_accepts_commands(order.reference, order.status)
    order.status = Order.Status.CANCELLED
    order.save(update_fields=["status"])
    recorded: list[events.Event] = [events.OrderCancelled(order.reference)]
    skus = order.lines.values_list("product_id", flat=True)
    products = _lock_products(skus)
    # Read the allocations only once their products are locked: they cannot move now.
    allocations = list(
        Allocation.objects.filter(line__order=order)
        .select_related("line__order", "batch")
        .order_by("line__product_id")
    )
    recorded += _release(allocations)
    for sku in sorted({allocation.line.product_id for allocation in allocations}):
        _bump_version(products[sku])
    return _record(recorded, reference=order.reference)


def _lock_or_create_submitted_order(reference: str) -> tuple[Order, list[events.Event]]:
    """Allocate's order: the existing one, or a new submitted order without customer."""
    try:
        return _lock_order(reference, field="orderid"), []
    except domain.NotFound:
        pass
    order = Order(reference=reference, status=Order.Status.SUBMITTED)
    try:
        with transaction.atomic():
            order.save(force_insert=True)
    except IntegrityError:
        # Another command created it meanwhile: use theirs.
        return _lock_order(reference, field="orderid"), []
    return order, [events.OrderPlaced(reference, "", (), order.status)]


@_service
def allocate(command: commands.Allocate) -> CommandResult:
    domain.check_order_reference(command.orderid, field="orderid")  # it may create the order
    domain.check_key(command.sku, what="SKU", field="sku")
    domain.check_quantity(command.qty)
    if not Product.objects.filter(sku=command.sku).exists():
        raise domain.InvalidSku(command.sku)
    order, recorded = _lock_or_create_submitted_order(command.orderid)
    domain.check_accepts_commands(order.reference, order.status, field="orderid")
    product = _lock_products([command.sku])[command.sku]
    line = OrderLine.objects.filter(order=order, product=product).first()
    if line is None:
        line = OrderLine.objects.create(
            order=order, product=product, quantity=command.qty, unit_price=product.price
        )
    elif line.quantity != command.qty:
        raise domain.Conflict(
            f"Order {order.reference} already has a line of {line.quantity} {command.sku}",
            field="qty",
        )
    elif Allocation.objects.filter(line=line).exists():
        return _record(recorded, reference=order.reference)  # rule 3: nothing changes
    line.order = order
    recorded += _allocate_lines(product, [line])
    return _record(recorded, reference=order.reference)


@_service
def deallocate(command: commands.Deallocate) -> CommandResult:
    domain.check_key(command.orderid, what="Order reference", field="orderid")
    domain.check_key(command.sku, what="SKU", field="sku")
    if not Product.objects.filter(sku=command.sku).exists():
        raise domain.InvalidSku(command.sku)
    order = _lock_order(command.orderid, field="orderid")
    domain.check_accepts_commands(order.reference, order.status, field="orderid")
    line = OrderLine.objects.filter(order=order, product_id=command.sku).first()
    if line is None:
        raise domain.InvalidInput(
            f"Order {order.reference} has no line for {command.sku}", field="sku"
        )
    product = _lock_products([command.sku])[command.sku]
    allocations = list(Allocation.objects.filter(line=line).select_related("line__order", "batch"))
    recorded = _release(allocations)
    if allocations:
        _bump_version(product)
    return _record(recorded, reference=order.reference)


HANDLERS: dict[type[commands.Command], Callable[..., CommandResult]] = {
    commands.CreateProduct: create_product,
    commands.CreateBatch: create_batch,
    commands.ChangeBatchQuantity: change_batch_quantity,
    commands.PlaceOrder: place_order,
    commands.SubmitOrder: submit_order,
    commands.CancelOrder: cancel_order,
    commands.Allocate: allocate,
    commands.Deallocate: deallocate,
}


def handle(command: commands.Command) -> CommandResult:
    """Run the service for ``command``."""
    return HANDLERS[type(command)](command)
