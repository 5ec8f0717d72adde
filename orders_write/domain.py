"""The allocation rules on plain values, and the errors that refuse a command.

Nothing here touches the database: services load plain values, ask these functions
(or the ``Product`` aggregate) what to do and which events that implies, and persist
the answer.
"""

from __future__ import annotations

import datetime
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

# Plain dataclasses; the module's only Django import is the Signal they go out on.
from orders_write import events

MAX_TEXT_LENGTH = 255
MAX_QUANTITY = 2_147_483_647  # PostgreSQL integer
MAX_PRICE = Decimal("9999999999.99")  # numeric(12, 2)

MAX_ORDER_LINES = 500  # lines one order may have, on the order form and in the API

# An order's statuses: pending -> submitted, and cancelled from either.
PENDING = "pending"
SUBMITTED = "submitted"
CANCELLED = "cancelled"
STATUS_LABELS = {PENDING: "Pending", SUBMITTED: "Submitted", CANCELLED: "Cancelled"}


class DomainError(Exception):
    """A refused command. ``message`` is what the user is told; ``field`` which input caused it."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """A value the rules do not accept (a broken rule: HTTP 400)."""


class InvalidSku(InvalidInput):
    def __init__(self, sku: str, *, field: str | None = "sku") -> None:
        super().__init__(f"Invalid sku {sku}", field=field)
        self.sku = sku


class InvalidQuantity(InvalidInput):
    pass


class NotFound(DomainError):
    """The command names an order or batch that does not exist (HTTP 404)."""


class Conflict(DomainError):
    """The command would duplicate something that exists (HTTP 409)."""


class Refusals(DomainError):
    """Every refusal one command met, reported together (rule 11).

    ``message`` joins them; ``refusals`` keeps each with its field.
    """

    def __init__(self, refusals: Sequence[DomainError]) -> None:
        self.refusals = tuple(refusals)
        messages = "; ".join(refusal.message for refusal in self.refusals)
        super().__init__(f"{len(self.refusals)} problems: {messages}")

    def __iter__(self) -> Iterator[DomainError]:
        return iter(self.refusals)


def each_refusal(error: DomainError) -> tuple[DomainError, ...]:
    """The refusals in ``error``: itself, or each of several."""
    return error.refusals if isinstance(error, Refusals) else (error,)


class Checks:
    """Runs a command's checks one after another and refuses the command once, with
    every refusal they found (rule 11): ``with checks: check_...(...)`` for each, then
    ``checks.done()``.
    """

    def __init__(self) -> None:
        self.refusals: list[DomainError] = []

    def __enter__(self) -> Checks:
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if isinstance(error, DomainError):
            self.refusals.extend(each_refusal(error))
            return True
        return False

    def refuse(self, error: DomainError) -> None:
        self.refusals.append(error)

    def passed(self, field: str) -> bool:
        """Whether no check so far refused ``field`` (a later check may rely on it)."""
        return all(refusal.field != field for refusal in self.refusals)

    def done(self) -> None:
        """Refuse the command if any check did."""
        if len(self.refusals) == 1:
            raise self.refusals[0]
        if self.refusals:
            raise Refusals(self.refusals)


# --- checks on single values -------------------------------------------------------


def check_quantity(quantity: int, *, field: str = "qty") -> None:
    if quantity <= 0:
        raise InvalidQuantity("Quantity must be positive", field=field)
    if quantity > MAX_QUANTITY:
        raise InvalidQuantity(f"Quantity must be at most {MAX_QUANTITY}", field=field)


def check_name(value: str, *, what: str, field: str) -> None:
    """Names (a product's, a customer's): non-blank, at most 255 characters, no control
    characters."""
    if not value or not value.strip():
        raise InvalidInput(f"{what} must not be blank", field=field)
    if len(value) > MAX_TEXT_LENGTH:
        raise InvalidInput(f"{what} must be at most {MAX_TEXT_LENGTH} characters", field=field)
    if any(unicodedata.category(character) == "Cc" for character in value):
        raise InvalidInput(f"{what} must not contain control characters", field=field)


# Every client resolves "." and ".." path segments away, percent-encoded or not (RFC 3986
# 5.2.4, WHATWG URL), so a key with one could never be reached at its own URL.
_DOT_SEGMENTS = frozenset({".", ".."})


def check_key(value: str, *, what: str, field: str) -> None:
    """SKUs and references, which name things in URLs (/api/products/<sku>,
    /orders/<reference>/, ...): a name, and no "." or ".." between its slashes."""
    check_name(value, what=what, field=field)
    if _DOT_SEGMENTS.intersection(value.split("/")):
        raise InvalidInput(f'{what} must not be "." or "..", alone or between slashes', field=field)


# An order's page is /orders/<reference>/, beside the order form (/orders/new/) and the
# order's actions (/orders/<reference>/submit/, .../cancel/, and the API's likewise): a
# reference that reads like one of those would open another page. A new route under an
# order's URL adds its last part here (tests/pages/test_forms.py checks the URLs).
RESERVED_ORDER_REFERENCES = frozenset({"new"})
RESERVED_ORDER_REFERENCE_ENDINGS = ("submit", "cancel", "history", "lines")
# Routes that go on below an order's URL with a SKU (/orders/<reference>/lines/<sku>/...):
# a reference with such a part after a slash could be read as another order's line, so
# the part is refused anywhere after the reference's first slash.
RESERVED_ORDER_REFERENCE_PARTS = ("lines",)
# A line's URL ends in its SKU, or in the SKU and an action (.../lines/<sku>/remove): a
# SKU ending in an action's name would read as another SKU's action.
RESERVED_SKU_ENDINGS = ("remove",)


def check_order_reference(value: str, *, field: str = "reference") -> None:
    """A new order's reference: a key whose URL is its page's and no other's."""
    check_key(value, what="Order reference", field=field)
    if value in RESERVED_ORDER_REFERENCES:
        raise InvalidInput(f'Order reference must not be "{value}"', field=field)
    order_part, _, ending = value.rpartition("/")
    if order_part and ending in RESERVED_ORDER_REFERENCE_ENDINGS:
        raise InvalidInput(f'Order reference must not end in "/{ending}"', field=field)
    for part in RESERVED_ORDER_REFERENCE_PARTS:
        if part in value.split("/")[1:]:
            raise InvalidInput(f'Order reference must not contain "/{part}/"', field=field)


def check_new_sku(value: str, *, field: str = "sku") -> None:
    """A new product's SKU: a key whose URLs are its own and no other SKU's."""
    check_key(value, what="SKU", field=field)
    sku_part, _, ending = value.rpartition("/")
    if sku_part and ending in RESERVED_SKU_ENDINGS:
        raise InvalidInput(f'SKU must not end in "/{ending}"', field=field)


def check_text(
    value: str,
    *,
    what: str,
    field: str,
    max_length: int = MAX_TEXT_LENGTH,
    required: bool = False,
) -> None:
    """Free text (several lines allowed): at most ``max_length`` characters, no NUL."""
    if required and not value.strip():
        raise InvalidInput(f"{what} must not be blank", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"{what} must be at most {max_length} characters", field=field)
    if "\x00" in value:
        raise InvalidInput(f"{what} must not contain NUL characters", field=field)


def check_price(price: Decimal, *, field: str = "price") -> None:
    if not price.is_finite():
        raise InvalidInput("Price must be a number", field=field)
    if price < 0:
        raise InvalidInput("Price must not be negative", field=field)
    if price > MAX_PRICE:
        raise InvalidInput(f"Price must be at most {MAX_PRICE}", field=field)
    if price != price.quantize(Decimal("0.01")):
        raise InvalidInput("Price must have at most 2 decimal places", field=field)


def check_distinct_skus(skus: Iterable[str | None]) -> None:
    """One line per SKU: each line repeating an earlier line's SKU is refused, beside it."""
    checks = Checks()
    seen: set[str] = set()
    for index, sku in enumerate(skus):
        if sku in seen:
            message = f"SKU {sku} appears on more than one line"
            checks.refuse(InvalidInput(message, field=f"lines.{index}.sku"))
        elif sku is not None:
            seen.add(sku)
    checks.done()


# --- orders ----------------------------------------------------------------------


def check_accepts_commands(reference: str, status: str, *, field: str = "reference") -> None:
    """A cancelled order accepts no further command (rule 7)."""
    if status == CANCELLED:
        raise InvalidInput(f"Order {reference} is cancelled", field=field)


def check_can_submit(reference: str, status: str, line_count: int) -> None:
    check_accepts_commands(reference, status)
    if status == SUBMITTED:
        raise InvalidInput(f"Order {reference} is already submitted", field="reference")
    if line_count == 0:
        raise InvalidInput("Cannot submit empty order", field="lines")


# --- allocation ------------------------------------------------------------------


@dataclass(frozen=True)
class BatchStock:
    """A batch as the allocation policy sees it."""

    reference: str
    purchased_quantity: int
    allocated_quantity: int
    eta: datetime.date | None

    @property
    def available_quantity(self) -> int:
        return self.purchased_quantity - self.allocated_quantity

    def can_hold(self, quantity: int) -> bool:
        return self.available_quantity >= quantity

    def with_allocated(self, quantity: int) -> BatchStock:
        return BatchStock(
            self.reference, self.purchased_quantity, self.allocated_quantity + quantity, self.eta
        )


def preference(batch: BatchStock) -> tuple[bool, datetime.date, str]:
    """Warehouse stock (no ETA) first, then the earliest ETA, ties by the smaller reference."""
    return (batch.eta is not None, batch.eta or datetime.date.min, batch.reference)


def choose_batch(batches: Iterable[BatchStock], quantity: int) -> BatchStock | None:
    """The preferred batch that can hold the whole quantity, or None: out of stock."""
    for batch in sorted(batches, key=preference):
        if batch.can_hold(quantity):
            return batch
    return None


@dataclass(frozen=True)
class HeldLine:
    """An order line as the policy sees it: ``key`` is the caller's handle on it; an
    allocated line names its batch."""

    key: object
    quantity: int
    orderid: str = ""
    batchref: str = ""


def lines_to_release(purchased_quantity: int, held_lines: Sequence[HeldLine]) -> list[HeldLine]:
    """Lines to take off a batch whose quantity became ``purchased_quantity`` (rule 6).

    The most recent allocations go first, until the rest fits.
    """
    allocated = sum(line.quantity for line in held_lines)
    released: list[HeldLine] = []
    for line in reversed(held_lines):
        if allocated <= purchased_quantity:
            break
        released.append(line)
        allocated -= line.quantity
    return released


def allocate_lines(
    batches: Iterable[BatchStock], lines: Sequence[HeldLine]
) -> list[tuple[HeldLine, BatchStock | None]]:
    """Allocate several lines of one SKU in order; each sees the stock the earlier took."""
    stock = {batch.reference: batch for batch in batches}
    decisions: list[tuple[HeldLine, BatchStock | None]] = []
    for line in lines:
        chosen = choose_batch(stock.values(), line.quantity)
        if chosen is not None:
            stock[chosen.reference] = chosen.with_allocated(line.quantity)
        decisions.append((line, chosen))
    return decisions


# --- the product: the consistency boundary ---------------------------------------


@dataclass
class Product:
    """A SKU's batches as one aggregate (Cosmic Python's ``Product``).

    Each method decides what a command does to the product's allocations and records
    the events that implies in ``events``; every change to its allocations increments
    ``version``. The services load it under the product's lock and persist what it
    decided, its version and its events.
    """

    sku: str
    batches: list[BatchStock] = field(default_factory=list)
    version: int = 0
    events: list[events.Event] = field(default_factory=list)

    def _add_to_allocated(self, reference: str, quantity: int) -> None:
        self.batches = [
            batch.with_allocated(quantity) if batch.reference == reference else batch
            for batch in self.batches
        ]

    def allocate(self, lines: Sequence[HeldLine]) -> list[tuple[HeldLine, BatchStock | None]]:
        """Allocate unallocated lines in order by the policy (rules 1, 2 and 4): an
        ``Allocated`` event per line placed, an ``OutOfStock`` per line that fits nowhere."""
        return self._place(lines, out_of_stock_events=True)

    def fill_waiting(self, lines: Sequence[HeldLine]) -> list[tuple[HeldLine, BatchStock]]:
        """Stock was added (rule 10): allocate the waiting lines, in the order given (their
        orders' submission), each where the policy puts it; one that still fits nowhere
        keeps waiting, with no new event. An ``Allocated`` event per line placed."""
        decisions = self._place(lines, out_of_stock_events=False)
        return [(line, batch) for line, batch in decisions if batch is not None]

    def _place(
        self, lines: Sequence[HeldLine], *, out_of_stock_events: bool
    ) -> list[tuple[HeldLine, BatchStock | None]]:
        decisions = allocate_lines(self.batches, lines)
        for line, batch in decisions:
            if batch is None:
                if out_of_stock_events:
                    self.events.append(events.OutOfStock(self.sku, line.orderid, line.quantity))
            else:
                self._add_to_allocated(batch.reference, line.quantity)
                self.events.append(
                    events.Allocated(line.orderid, self.sku, line.quantity, batch.reference)
                )
        if any(batch is not None for _, batch in decisions):
            self.version += 1
        return decisions

    def release(self, lines: Sequence[HeldLine]) -> None:
        """Take allocated lines off their batches: a ``Deallocated`` event each."""
        for line in lines:
            self._add_to_allocated(line.batchref, -line.quantity)
            self.events.append(
                events.Deallocated(line.orderid, self.sku, line.quantity, line.batchref)
            )
        if lines:
            self.version += 1

    def change_batch_quantity(
        self, reference: str, quantity: int, held_lines: Sequence[HeldLine]
    ) -> tuple[list[HeldLine], list[tuple[HeldLine, BatchStock | None]]]:
        """Set a batch's quantity (rule 6): release its newest allocations until the rest
        fits, then allocate each freed line again, the oldest allocation first.

        ``held_lines`` are the batch's allocated lines, oldest allocation first.
        Returns the released lines and the new decisions for them.
        """
        batch = next(batch for batch in self.batches if batch.reference == reference)
        self.events.append(
            events.BatchQuantityChanged(reference, self.sku, quantity, batch.purchased_quantity)
        )
        changed = BatchStock(reference, quantity, batch.allocated_quantity, batch.eta)
        self.batches = [changed if each is batch else each for each in self.batches]
        released = lines_to_release(quantity, held_lines)
        if not released:
            return [], []
        self.release(released)
        return released, self.allocate(list(reversed(released)))


# --- what a command did to order lines' stock ------------------------------------

ALLOCATED = "allocated"
OUT_OF_STOCK = "out_of_stock"
RELEASED = "released"


@dataclass(frozen=True)
class LineOutcome:
    """Where an order line's stock went: allocated to ``to_batch`` (moved if it came
    ``from_batch``), out of stock (taken off ``from_batch``, if any, and placed nowhere),
    or released (taken off ``from_batch``: the order was cancelled or the line freed)."""

    orderid: str
    sku: str
    qty: int
    outcome: str
    from_batch: str | None = None
    to_batch: str | None = None


def line_outcomes(recorded: Iterable[events.Event]) -> list[LineOutcome]:
    """The lines a command's events moved, one outcome each, in the events' order: a
    ``Deallocated`` line followed by its ``Allocated`` or ``OutOfStock`` moved or lost its
    stock; alone it was released."""
    outcomes: list[LineOutcome] = []
    released: dict[tuple[str, str], events.Deallocated] = {}
    for event in recorded:
        if isinstance(event, events.Deallocated):
            released[(event.orderid, event.sku)] = event
        elif isinstance(event, (events.Allocated, events.OutOfStock)):
            before = released.pop((event.orderid, event.sku), None)
            placed = isinstance(event, events.Allocated)
            outcomes.append(
                LineOutcome(
                    event.orderid,
                    event.sku,
                    event.qty,
                    ALLOCATED if placed else OUT_OF_STOCK,
                    before.batchref if before else None,
                    event.batchref if placed else None,
                )
            )
    outcomes.extend(
        LineOutcome(event.orderid, event.sku, event.qty, RELEASED, event.batchref)
        for event in released.values()
    )
    return outcomes


# --- orders: what a command does to an order's status ----------------------------


def submit_order(reference: str, status: str, line_count: int) -> tuple[str, list[events.Event]]:
    """Submitting (rule 7): the new status and its event; the lines are allocated next."""
    check_can_submit(reference, status, line_count)
    return SUBMITTED, [events.OrderSubmitted(reference)]


def cancel_order(reference: str, status: str) -> tuple[str, list[events.Event]]:
    """Cancelling (rule 7): the new status and its event; the allocations are released next."""
    check_accepts_commands(reference, status)
    return CANCELLED, [events.OrderCancelled(reference)]


# --- orders: correcting a placed order's lines ----------------------------------------


@dataclass(frozen=True)
class OrderLines:
    """An order as the commands on its lines see it: its lines by SKU, each a
    ``HeldLine`` that names its batch when allocated."""

    reference: str
    status: str
    lines: dict[str, HeldLine] = field(default_factory=dict)


@dataclass(frozen=True)
class LineDecision:
    """What a command on a line decided: its events in order, the allocation to take off
    its batch (``released``), and where the line goes now (``placed``: the line and its
    batch, or None for out of stock), when it is allocated again."""

    events: list[events.Event]
    released: HeldLine | None = None
    placed: tuple[HeldLine, BatchStock | None] | None = None


def check_can_add_line(order: OrderLines, sku: str) -> None:
    """A line may be added to a pending or submitted order that has none for its SKU."""
    checks = Checks()
    with checks:
        check_accepts_commands(order.reference, order.status)
    if sku in order.lines:
        message = (
            f"Order {order.reference} already has a line for {sku}: change its quantity instead"
        )
        checks.refuse(Conflict(message, field="sku"))
    checks.done()


def check_can_change_line(order: OrderLines, sku: str, *, removing: bool = False) -> None:
    """A line of a pending or submitted order may change; the last line of a submitted
    order stays (a submitted order is never empty: cancel it instead)."""
    checks = Checks()
    with checks:
        check_accepts_commands(order.reference, order.status)
    if sku not in order.lines:
        message = f"Order {order.reference} has no line for {sku}"
        checks.refuse(InvalidInput(message, field="sku"))
    elif removing and order.status == SUBMITTED and len(order.lines) == 1:
        message = (
            f"Cannot remove the last line of submitted order {order.reference}:"
            " cancel the order instead"
        )
        checks.refuse(InvalidInput(message, field="sku"))
    checks.done()


def add_line(
    order: OrderLines, sku: str, quantity: int, unit_price: Decimal, product: Product
) -> LineDecision:
    """Add a line (its unit price the product's now); a submitted order's is allocated
    (rule 7), or out of stock (rule 4)."""
    check_can_add_line(order, sku)
    added = events.LineAdded(order.reference, sku, quantity, unit_price)
    if order.status != SUBMITTED:
        return LineDecision([added])
    [placed] = product.allocate([HeldLine(None, quantity, order.reference)])
    return LineDecision([added, *product.events], placed=placed)


def change_line_quantity(
    order: OrderLines, sku: str, quantity: int, product: Product
) -> LineDecision:
    """Change a line's quantity. An allocated line is released and allocated again by
    the policy (it may stay on its batch); a submitted order's waiting line is allocated
    now if it fits. The same quantity changes nothing."""
    check_can_change_line(order, sku)
    line = order.lines[sku]
    if quantity == line.quantity:
        return LineDecision([])
    released = line if line.batchref else None
    if released is not None:
        product.release([released])
    recorded = [
        *product.events,
        events.LineQuantityChanged(order.reference, sku, quantity, line.quantity),
    ]
    if released is None and order.status != SUBMITTED:
        return LineDecision(recorded)
    product.events.clear()
    [placed] = product.allocate([HeldLine(line.key, quantity, order.reference)])
    return LineDecision([*recorded, *product.events], released=released, placed=placed)


def remove_line(order: OrderLines, sku: str, product: Product) -> LineDecision:
    """Remove a line; its allocation, if any, is released first. Like cancelling, the
    stock it frees waits for the next command that allocates: waiting lines are filled
    when stock is added (rule 10), not when it is released."""
    check_can_change_line(order, sku, removing=True)
    line = order.lines[sku]
    released = line if line.batchref else None
    if released is not None:
        product.release([released])
    removed = events.LineRemoved(order.reference, sku, line.quantity)
    return LineDecision([*product.events, removed], released=released)
