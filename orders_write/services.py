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

import contextlib
import dataclasses
import functools
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

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

    @functools.cached_property  # a page asks it twice: for its message and the level
    def outcomes(self) -> list[domain.LineOutcome]:
        """Where the stock of each order line it touched went."""
        return domain.line_outcomes(self.events)

    @property
    def consistency_token(self) -> str:
        """Give it to a query (X-Consistency-Token) to read this write."""
        return events.consistency_token(self.transaction_id)


C = TypeVar("C", bound=commands.Command)

# Who issues the commands run here: a name, or a function that tells it when an event is
# recorded (a request's user is known only once the API has authenticated it).
SYSTEM = "system"
_actor: ContextVar[str | Callable[[], str]] = ContextVar("actor", default=SYSTEM)


@contextlib.contextmanager
def acting_as(actor: str | Callable[[], str]) -> Iterator[None]:
    """Record the events of the commands run inside as issued by ``actor`` (a username,
    or a function giving it); outside any, they are the operators' (``SYSTEM``)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> str:
    """The user or integration whose commands run now, ``SYSTEM`` for operators'."""
    actor = _actor.get()
    return (actor() if callable(actor) else actor) or SYSTEM


def _order_of(event: events.Event) -> str | None:
    """The reference of the order an event concerns, if any: its history is read by it."""
    return getattr(event, "reference", None) or getattr(event, "orderid", None)


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
    actor = current_actor()
    rows = Event.objects.bulk_create(
        Event(
            name=event.kind,
            payload=event.as_payload(),
            actor=actor,
            order_reference=_order_of(event),
        )
        for event in recorded
    )
    if rows:  # the database gave each its transaction (Event.transaction_id's default)
        transaction_id = rows[0].transaction_id
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()::text::bigint")
            (transaction_id,) = cursor.fetchone()
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


def _batch_stock(sku: str) -> tuple[list[domain.BatchStock], dict[str, int]]:
    """The SKU's batches as the domain sees them, and their ids by reference."""
    batches = Batch.objects.filter(product_id=sku).values_list(
        "id", "reference", "purchased_quantity", "allocated_quantity", "eta"
    )
    stock, ids = [], {}
    for batch_id, *row in batches:
        stock.append(domain.BatchStock(*row))
        ids[stock[-1].reference] = batch_id
    return stock, ids


def _add_to_allocated(quantities: Iterable[tuple[int, int]]) -> None:
    """Add each (batch id, quantity) to the batch's allocated quantity (negative: release)."""
    totals: defaultdict[int, int] = defaultdict(int)
    for batch_id, quantity in quantities:
        totals[batch_id] += quantity
    for batch_id, quantity in sorted(totals.items()):
        Batch.objects.filter(pk=batch_id).update(
            allocated_quantity=F("allocated_quantity") + quantity
        )


def _aggregate(
    product: Product, *, with_batches: bool = True
) -> tuple[domain.Product, dict[str, int]]:
    """The domain's view of a locked product (its batches only when a decision needs
    them), and the ids of those batches by reference."""
    batches, batch_ids = _batch_stock(product.sku) if with_batches else ([], {})
    return domain.Product(product.sku, batches, product.version), batch_ids


def _saved(product: Product, aggregate: domain.Product) -> list[events.Event]:
    """Persist the aggregate's version (the row is locked); return the events it recorded."""
    if aggregate.version != product.version:
        Product.objects.filter(pk=product.pk).update(version=aggregate.version)
        product.version = aggregate.version
    return aggregate.events


def _to_allocate(line: OrderLine) -> domain.HeldLine:
    return domain.HeldLine(line, line.quantity, line.order.reference)


def _held(allocation: Allocation) -> domain.HeldLine:
    return domain.HeldLine(
        allocation,
        allocation.line.quantity,
        allocation.line.order.reference,
        allocation.batch.reference,
    )


def _line_of(held: domain.HeldLine) -> OrderLine:
    """The order line a decision is about: its key, or the line of its old allocation."""
    return held.key.line if isinstance(held.key, Allocation) else held.key


def _save_allocations(
    decisions: Sequence[tuple[domain.HeldLine, domain.BatchStock | None]],
    batch_ids: dict[str, int],
) -> None:
    """Insert the allocations the domain decided (lines with no batch stay unallocated)."""
    new_allocations = [
        Allocation(line=_line_of(held), batch_id=batch_ids[batch.reference])
        for held, batch in decisions
        if batch is not None
    ]
    Allocation.objects.bulk_create(new_allocations)
    _add_to_allocated(
        (allocation.batch_id, allocation.line.quantity) for allocation in new_allocations
    )


def _allocate_lines(product: Product, lines: Sequence[OrderLine]) -> list[events.Event]:
    """Allocate unallocated lines of one (locked) product by the domain's policy."""
    if not lines:
        return []
    aggregate, batch_ids = _aggregate(product)
    _save_allocations(aggregate.allocate([_to_allocate(line) for line in lines]), batch_ids)
    return _saved(product, aggregate)


def _fill_waiting(aggregate: domain.Product, batch_ids: dict[str, int]) -> None:
    """Stock was added to the (locked) product: allocate its waiting lines, unallocated
    lines of submitted orders, in the order the orders were submitted (rule 10)."""
    waiting = (
        OrderLine.objects.filter(
            product_id=aggregate.sku,
            order__status=Order.Status.SUBMITTED,
            allocation__isnull=True,
        )
        .select_related("order")
        .order_by(F("order__submitted_at").asc(nulls_last=True), "order_id", "id")
    )
    _save_allocations(aggregate.fill_waiting([_to_allocate(line) for line in waiting]), batch_ids)


def _delete_allocations(released: Sequence[domain.HeldLine]) -> None:
    """Delete released allocations (their products locked by the caller)."""
    if not released:
        return
    allocations: list[Allocation] = [held.key for held in released]
    Allocation.objects.filter(pk__in=[allocation.pk for allocation in allocations]).delete()
    _add_to_allocated(
        (allocation.batch_id, -allocation.line.quantity) for allocation in allocations
    )


def _release(product: Product, allocations: Sequence[Allocation]) -> list[events.Event]:
    """Release a (locked) product's allocations."""
    if not allocations:
        return []
    aggregate, _ = _aggregate(product, with_batches=False)
    released = [_held(allocation) for allocation in allocations]
    aggregate.release(released)
    _delete_allocations(released)
    return _saved(product, aggregate)


def _insert(instance: Product | Batch | Order, conflict: domain.Conflict) -> None:
    """Insert a row whose key must be new; a concurrent twin becomes ``conflict``."""
    try:
        with transaction.atomic():
            instance.save(force_insert=True)
    except IntegrityError:
        raise conflict from None


def _get_or_create_product(sku: str, new_product: commands.NewProduct | None) -> list[events.Event]:
    """A batch for an unknown SKU creates its product: ``new_product``, or (name = SKU,
    price 0)."""
    if Product.objects.filter(sku=sku).exists():
        return []
    name, price = (new_product.name, new_product.price) if new_product else (sku, Decimal("0.00"))
    try:
        with transaction.atomic():
            Product.objects.create(sku=sku, name=name, price=price)
    except IntegrityError:
        return []  # created meanwhile by another command
    return [events.ProductCreated(sku, name, price)]


# --- the checks: every refusal of a command found before anything is written ---------
#
# Each command's checker runs all its checks and returns what they refused (rule 11).
# Its service refuses the command with all of it (``checks.done()``) before writing.
# ``refusals()`` lets a form that could not read some fields (None, which no check
# looks at) report the rules' refusals of the others beside its own errors.


def _check(checks: domain.Checks, value: object, check: Callable[..., None], **kwargs) -> None:
    """Run ``check`` on a value that was given (not None), collecting its refusal."""
    if value is not None:
        with checks:
            check(value, **kwargs)


def _check_known_skus(checks: domain.Checks, skus: dict[str, str | None]) -> dict[str, Decimal]:
    """Refuse each field's SKU that names no product; return the known ones' prices.

    ``skus`` maps fields to SKUs; only those whose field passed its checks are looked up.
    """
    wanted = {field: sku for field, sku in skus.items() if sku is not None and checks.passed(field)}
    if not wanted:
        return {}
    prices = dict(Product.objects.filter(sku__in=set(wanted.values())).values_list("sku", "price"))
    for field, sku in wanted.items():
        if sku not in prices:
            checks.refuse(domain.InvalidSku(sku, field=field))
    return prices


def _refuse_existing(
    checks: domain.Checks, model: type[Product | Batch | Order], field: str, key: str | None
) -> None:
    """Refuse a new key that exists (409), once its field passed its checks."""
    lookup = "sku" if model is Product else "reference"
    if key is not None and checks.passed(field) and model.objects.filter(**{lookup: key}).exists():
        what = {Product: "Product", Batch: "Batch", Order: "Order"}[model]
        checks.refuse(domain.Conflict(f"{what} {key} already exists", field=field))


def _checks_create_product(command: commands.CreateProduct) -> domain.Checks:
    checks = domain.Checks()
    _check(checks, command.sku, domain.check_new_sku)
    _check(checks, command.name, domain.check_name, what="Name", field="name")
    _check(checks, command.price, domain.check_price)
    _refuse_existing(checks, Product, "sku", command.sku)
    return checks


def _checks_create_batch(command: commands.CreateBatch) -> domain.Checks:
    checks = domain.Checks()
    _check(checks, command.ref, domain.check_key, what="Batch reference", field="ref")
    _check(checks, command.sku, domain.check_key, what="SKU", field="sku")
    if command.sku is not None and checks.passed("sku"):
        # A SKU that would be a new product's must be reachable at its URLs.
        as_new = domain.Checks()
        _check(as_new, command.sku, domain.check_new_sku)
        if as_new.refusals and not Product.objects.filter(sku=command.sku).exists():
            checks.refusals.extend(as_new.refusals)
    _check(checks, command.qty, domain.check_quantity)
    if command.new_product is not None:
        _check(checks, command.new_product.name, domain.check_name, what="Name", field="name")
        _check(checks, command.new_product.price, domain.check_price)
    _refuse_existing(checks, Batch, "ref", command.ref)
    if command.new_product is not None:
        _refuse_existing(checks, Product, "sku", command.sku)
    elif command.known_sku_only:
        _check_known_skus(checks, {"sku": command.sku})
    return checks


def _checks_change_batch_quantity(command: commands.ChangeBatchQuantity) -> domain.Checks:
    checks = domain.Checks()
    _check(checks, command.qty, domain.check_quantity)
    if command.ref is not None and not Batch.objects.filter(reference=command.ref).exists():
        checks.refuse(domain.NotFound(f"Unknown batch {command.ref}", field="ref"))
    return checks


def _checks_place_order(command: commands.PlaceOrder) -> tuple[domain.Checks, dict[str, Decimal]]:
    """The checks, and the prices of the lines' products."""
    checks = domain.Checks()
    _check(checks, command.reference, domain.check_order_reference)
    _check(checks, command.customer, domain.check_name, what="Customer", field="customer")
    _check(
        checks,
        command.shipping_address,
        domain.check_text,
        what="Shipping address",
        field="shipping_address",
        max_length=2000,
        required=True,
    )
    for index, line in enumerate(command.lines):
        _check(checks, line.sku, domain.check_key, what="SKU", field=f"lines.{index}.sku")
        _check(checks, line.qty, domain.check_quantity, field=f"lines.{index}.qty")
    with checks:
        domain.check_distinct_skus(line.sku for line in command.lines)
    prices = _check_known_skus(
        checks, {f"lines.{index}.sku": line.sku for index, line in enumerate(command.lines)}
    )
    _refuse_existing(checks, Order, "reference", command.reference)
    return checks, prices


def _checks_allocate(command: commands.Allocate) -> domain.Checks:
    """The checks of the values; when they refuse (or a form could not read one), the
    lookups too, so that every refusal is reported at once. An accepted command makes its
    lookups under the locks (``allocate``)."""
    checks = domain.Checks()
    # It may create the order: a new order's reference.
    _check(checks, command.orderid, domain.check_order_reference, field="orderid")
    _check(checks, command.sku, domain.check_key, what="SKU", field="sku")
    _check(checks, command.qty, domain.check_quantity)
    if checks.refusals or None in (command.orderid, command.sku, command.qty):
        _check_known_skus(checks, {"sku": command.sku})
        if (
            command.existing_order_only
            and command.orderid is not None
            and checks.passed("orderid")
            and not Order.objects.filter(reference=command.orderid).exists()
        ):
            checks.refuse(domain.NotFound(f"Unknown order {command.orderid}", field="orderid"))
    return checks


def _checks_deallocate(command: commands.Deallocate) -> domain.Checks:
    checks = domain.Checks()
    _check(checks, command.orderid, domain.check_key, what="Order reference", field="orderid")
    _check(checks, command.sku, domain.check_key, what="SKU", field="sku")
    _check_known_skus(checks, {"sku": command.sku})
    return checks


def _checks_line(
    command: commands.AddLine | commands.ChangeLineQuantity | commands.RemoveLine,
) -> domain.Checks:
    """The values of a command on an order's line; the order's state is checked under its
    lock (``_order_lines``)."""
    checks = domain.Checks()
    _check(checks, command.reference, domain.check_key, what="Order reference", field="reference")
    _check(checks, command.sku, domain.check_key, what="SKU", field="sku")
    if not isinstance(command, commands.RemoveLine):
        _check(checks, command.qty, domain.check_quantity)
    _check_known_skus(checks, {"sku": command.sku})
    return checks


def _checks_of_order_state(command: commands.Command) -> domain.Checks:
    return domain.Checks()  # the order's state is checked under its lock


CHECKERS: dict[type[commands.Command], Callable[..., domain.Checks]] = {
    commands.CreateProduct: _checks_create_product,
    commands.CreateBatch: _checks_create_batch,
    commands.ChangeBatchQuantity: _checks_change_batch_quantity,
    commands.PlaceOrder: lambda command: _checks_place_order(command)[0],
    commands.SubmitOrder: _checks_of_order_state,
    commands.CancelOrder: _checks_of_order_state,
    commands.Allocate: _checks_allocate,
    commands.Deallocate: _checks_deallocate,
    commands.AddLine: _checks_line,
    commands.ChangeLineQuantity: _checks_line,
    commands.RemoveLine: _checks_line,
}


def refusals(command: commands.Command) -> list[domain.DomainError]:
    """What ``command``'s checks refuse, without running it."""
    return CHECKERS[type(command)](command).refusals


# --- the services ------------------------------------------------------------------


@_service
def create_product(command: commands.CreateProduct) -> CommandResult:
    _checks_create_product(command).done()
    product = Product(sku=command.sku, name=command.name, price=command.price)
    _insert(product, domain.Conflict(f"Product {command.sku} already exists", field="sku"))
    return _record([events.ProductCreated(product.sku, product.name, product.price)])


@_service
def create_batch(command: commands.CreateBatch) -> CommandResult:
    _checks_create_batch(command).done()
    conflict = domain.Conflict(f"Batch {command.ref} already exists", field="ref")
    recorded = _get_or_create_product(command.sku, command.new_product)
    product = _lock_products([command.sku])[command.sku]
    batch = Batch(
        reference=command.ref,
        product_id=command.sku,
        purchased_quantity=command.qty,
        eta=command.eta,
    )
    _insert(batch, conflict)
    recorded.append(events.BatchCreated(command.ref, command.sku, command.qty, command.eta))
    aggregate, batch_ids = _aggregate(product)
    _fill_waiting(aggregate, batch_ids)
    return _record(recorded + _saved(product, aggregate))


@_service
def change_batch_quantity(command: commands.ChangeBatchQuantity) -> CommandResult:
    _checks_change_batch_quantity(command).done()
    sku = Batch.objects.filter(reference=command.ref).values_list("product_id", flat=True).get()
    product = _lock_products([sku])[sku]
    batch = Batch.objects.get(reference=command.ref)
    held = batch.allocations.select_related("line__order", "batch").order_by("allocated_at", "id")
    aggregate, batch_ids = _aggregate(product)
    released, decisions = aggregate.change_batch_quantity(
        command.ref, command.qty, [_held(allocation) for allocation in held]
    )
    raised = command.qty > batch.purchased_quantity
    batch.purchased_quantity = command.qty
    batch.save(update_fields=["purchased_quantity"])
    _delete_allocations(released)
    _save_allocations(decisions, batch_ids)
    if raised:
        _fill_waiting(aggregate, batch_ids)
    recorded = _saved(product, aggregate)
    return _record(recorded)


def _new_order_reference() -> str:
    return f"ORD-{secrets.token_hex(6).upper()}"


@_service
def place_order(command: commands.PlaceOrder) -> CommandResult:
    checks, prices = _checks_place_order(command)
    checks.done()
    reference = command.reference or _new_order_reference()
    conflict = domain.Conflict(f"Order {reference} already exists", field="reference")
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
    order.status, recorded = domain.submit_order(order.reference, order.status, order.lines.count())
    order.submitted_at = timezone.now()
    order.save(update_fields=["status", "submitted_at"])
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
    order.status, recorded = domain.cancel_order(order.reference, order.status)
    order.save(update_fields=["status"])
    skus = order.lines.values_list("product_id", flat=True)
    products = _lock_products(skus)
    # Read the allocations only once their products are locked: they cannot move now.
    allocations = list(
        Allocation.objects.filter(line__order=order)
        .select_related("line__order", "batch")
        .order_by("line__product_id")
    )
    by_sku: dict[str, list[Allocation]] = defaultdict(list)
    for allocation in allocations:
        by_sku[allocation.line.product_id].append(allocation)
    for sku in sorted(by_sku):
        recorded += _release(products[sku], by_sku[sku])
    return _record(recorded, reference=order.reference)


def _lock_or_create_submitted_order(
    reference: str, *, existing_only: bool
) -> tuple[Order, list[events.Event]]:
    """Allocate's order: the existing one, or a new submitted order without customer."""
    try:
        return _lock_order(reference, field="orderid"), []
    except domain.NotFound:
        if existing_only:
            raise
    order = Order(reference=reference, status=Order.Status.SUBMITTED, submitted_at=timezone.now())
    try:
        with transaction.atomic():
            order.save(force_insert=True)
    except IntegrityError:
        # Another command created it meanwhile: use theirs.
        return _lock_order(reference, field="orderid"), []
    return order, [events.OrderPlaced(reference, "", (), order.status)]


@_service
def allocate(command: commands.Allocate) -> CommandResult:
    _checks_allocate(command).done()
    checks = domain.Checks()
    order, recorded = None, []
    with checks:
        order, recorded = _lock_or_create_submitted_order(
            command.orderid, existing_only=command.existing_order_only
        )
    # Locked after the order, as every command does; an unknown SKU undoes a new order.
    product = _lock_products([command.sku]).get(command.sku)
    if product is None:
        checks.refuse(domain.InvalidSku(command.sku))
    if order is not None:
        with checks:
            domain.check_accepts_commands(order.reference, order.status, field="orderid")
    checks.done()
    # A new order (it recorded OrderPlaced) has no line yet.
    line = None if recorded else OrderLine.objects.filter(order=order, product=product).first()
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
    checks = _checks_deallocate(command)
    order = None
    if checks.passed("orderid"):
        with checks:
            order = _lock_order(command.orderid, field="orderid")
    if order is not None:
        with checks:
            domain.check_accepts_commands(order.reference, order.status, field="orderid")
    checks.done()
    line = OrderLine.objects.filter(order=order, product_id=command.sku).first()
    if line is None:
        raise domain.InvalidInput(
            f"Order {order.reference} has no line for {command.sku}", field="sku"
        )
    product = _lock_products([command.sku])[command.sku]
    allocations = list(Allocation.objects.filter(line=line).select_related("line__order", "batch"))
    return _record(_release(product, allocations), reference=order.reference)


def _order_lines(
    command: commands.AddLine | commands.ChangeLineQuantity | commands.RemoveLine,
    check: Callable[[domain.OrderLines, str], None],
) -> tuple[Order, dict[str, OrderLine]]:
    """A command on a line, checked (its values, then the order's lines by the domain's
    ``check``, every refusal at once): the order (locked) and its lines by SKU."""
    checks = _checks_line(command)
    order, lines = None, {}
    if checks.passed("reference"):
        with checks:
            order = _lock_order(command.reference)
    if order is not None:
        # An order's lines change only under its lock, which is held now.
        lines = {line.product_id: line for line in order.lines.all()}
        if checks.passed("sku"):
            with checks:
                check(_domain_order(order, lines), command.sku)
    checks.done()
    return order, lines


def _domain_order(
    order: Order, lines: dict[str, OrderLine], allocation: Allocation | None = None
) -> domain.OrderLines:
    """The domain's view of the order's lines: ``allocation`` is the (locked) product's
    line's, when it has one."""
    held = {
        sku: domain.HeldLine(line, line.quantity, order.reference) for sku, line in lines.items()
    }
    if allocation is not None:
        sku = allocation.line.product_id
        held[sku] = domain.HeldLine(
            allocation, allocation.line.quantity, order.reference, allocation.batch.reference
        )
    return domain.OrderLines(order.reference, order.status, held)


def _line_allocation(line: OrderLine | None) -> Allocation | None:
    """A line's allocation, read once its product is locked: it cannot move now."""
    if line is None:
        return None
    return Allocation.objects.filter(line=line).select_related("line__order", "batch").first()


def _save_line_decision(
    product: Product,
    aggregate: domain.Product,
    decision: domain.LineDecision,
    batch_ids: dict[str, int],
) -> list[events.Event]:
    """Persist what the domain decided about a line's allocation, and the product's version."""
    if decision.released is not None:
        _delete_allocations([decision.released])
    if decision.placed is not None:
        _save_allocations([decision.placed], batch_ids)
    _saved(product, aggregate)
    return decision.events


@_service
def add_line(command: commands.AddLine) -> CommandResult:
    order, lines = _order_lines(command, domain.check_can_add_line)
    product = _lock_products([command.sku])[command.sku]
    aggregate, batch_ids = _aggregate(product, with_batches=order.status == Order.Status.SUBMITTED)
    decision = domain.add_line(
        _domain_order(order, lines), command.sku, command.qty, product.price, aggregate
    )
    line = OrderLine.objects.create(
        order=order, product=product, quantity=command.qty, unit_price=product.price
    )
    if decision.placed is not None:
        held, batch = decision.placed
        line.order = order
        decision = dataclasses.replace(
            decision, placed=(dataclasses.replace(held, key=line), batch)
        )
    return _record(
        _save_line_decision(product, aggregate, decision, batch_ids), reference=order.reference
    )


@_service
def change_line_quantity(command: commands.ChangeLineQuantity) -> CommandResult:
    order, lines = _order_lines(command, domain.check_can_change_line)
    line = lines[command.sku]
    product = _lock_products([command.sku])[command.sku]
    allocation = _line_allocation(line)
    aggregate, batch_ids = _aggregate(product)
    decision = domain.change_line_quantity(
        _domain_order(order, lines, allocation), command.sku, command.qty, aggregate
    )
    if not decision.events:
        return _record([], reference=order.reference)  # the same quantity: nothing changes
    # Released at its old quantity (the allocation's line is the one loaded before).
    recorded = _save_line_decision(
        product, aggregate, dataclasses.replace(decision, placed=None), batch_ids
    )
    line.quantity = command.qty
    line.save(update_fields=["quantity"])
    if decision.placed is not None:
        held, batch = decision.placed
        line.order = order
        _save_allocations([(dataclasses.replace(held, key=line), batch)], batch_ids)
    return _record(recorded, reference=order.reference)


@_service
def remove_line(command: commands.RemoveLine) -> CommandResult:
    removable = functools.partial(domain.check_can_change_line, removing=True)
    order, lines = _order_lines(command, removable)
    line = lines[command.sku]
    product = _lock_products([command.sku])[command.sku]
    allocation = _line_allocation(line)
    aggregate, batch_ids = _aggregate(product, with_batches=False)
    decision = domain.remove_line(_domain_order(order, lines, allocation), command.sku, aggregate)
    recorded = _save_line_decision(product, aggregate, decision, batch_ids)
    line.delete()
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
    commands.AddLine: add_line,
    commands.ChangeLineQuantity: change_line_quantity,
    commands.RemoveLine: remove_line,
}


def handle(command: commands.Command) -> CommandResult:
    """Run the service for ``command``."""
    return HANDLERS[type(command)](command)
