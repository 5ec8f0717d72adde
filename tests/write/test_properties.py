"""Random sequences of valid and invalid commands through every service.

A Hypothesis state machine sends commands that collide on purpose (three SKUs, now
and then an unknown one, an existing reference or a quantity that is not positive),
expects a refusal exactly where SPEC.md demands one, and checks after every step the
rules that must hold whatever happened: a refused command wrote nothing; no batch is
oversold; allocations sit on batches of their SKU, never on a cancelled order; product
versions only grow, and grow with every change to a product's allocations; every
allocation (and every OutOfStock) followed the preference policy, rule 2, on the stock
of that moment; and the events tell exactly what changed in the stock. Now and then,
and at the end of each example, the read models are rebuilt and compared with their
queries.
"""

import dataclasses
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal

import pytest
from django.db import connection
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from orders_read import rebuilds, refresh, verification
from orders_read.models import RefreshState
from orders_read.read_models import READ_MODELS, parse_counts
from orders_write import commands, domain, events, services
from tests.database import database_state, empty_write_tables
from tests.factories import LATER, TODAY, TOMORROW

pytestmark = pytest.mark.django_db(transaction=True)

# Sized for CI (under 20 s); STATEFUL_EXAMPLES=500 for a deeper search (3 minutes).
EXAMPLES = int(os.environ.get("STATEFUL_EXAMPLES", "40"))
STEPS = 30

SKUS = ("LAMP", "SOFA", "DESK")
UNKNOWN_SKU = "GHOST"
# New references start with a random label, so that their order (which decides ETA
# ties) is random too.
LABELS = st.integers(min_value=10, max_value=99)
ETAS = st.none() | st.sampled_from([TODAY, TOMORROW, LATER])
UNKNOWN_REFERENCE = "nowhere"
CUSTOMER = "Ada Lovelace"
ADDRESS = "12 St James's Square, London"


def mostly(valid: st.SearchStrategy, invalid: st.SearchStrategy, *, one_in: int):
    """Values from ``valid``, and from ``invalid`` about once in ``one_in`` draws.

    (Not on the simplest draw, which Hypothesis makes far more often than 1 in n.)"""
    return st.integers(min_value=1, max_value=one_in).flatmap(
        lambda draw: invalid if draw == one_in else valid
    )


LINE_QUANTITIES = mostly(st.integers(min_value=1, max_value=6), st.sampled_from([0, -1]), one_in=8)
BATCH_QUANTITIES = mostly(
    st.integers(min_value=1, max_value=20), st.sampled_from([0, -3]), one_in=8
)
PRICES = mostly(
    st.sampled_from([Decimal("12.50"), Decimal("0.00"), Decimal("9.99")]),
    st.sampled_from([Decimal("-1"), Decimal("1.005")]),
    one_in=6,
)
# Now and then a command names a batch or order that does not exist, or creates one
# whose reference exists.
UNKNOWN = mostly(st.just(False), st.just(True), one_in=8)
AGAIN = mostly(st.just(False), st.just(True), one_in=8)
LINE_SKUS = mostly(st.sampled_from(SKUS), st.just(UNKNOWN_SKU), one_in=8)
ORDER_LINES = mostly(
    st.lists(
        st.tuples(LINE_SKUS, LINE_QUANTITIES),
        min_size=1,
        max_size=3,
        unique_by=lambda line: line[0],
    ),
    st.just([]),
    one_in=8,
)

# A line command's SKU: mostly one that the order has (or, adding, lacks), to get past
# the refusals (None: pick it so), else any SKU, maybe an unknown one.
LINE_COMMAND_SKUS = mostly(st.none(), LINE_SKUS, one_in=4)

State = dict[str, list[dict]]
# Batch reference -> (SKU, the batch as the allocation policy sees it).
Stock = dict[str, tuple[str, domain.BatchStock]]


# --- reading the write tables (from database_state()) -------------------------------


def stock_of(state: State) -> Stock:
    """Every batch with its purchased and allocated quantities, computed from the rows."""
    line_quantity = {line["id"]: line["quantity"] for line in state["OrderLine"]}
    allocated: Counter[int] = Counter()
    for allocation in state["Allocation"]:
        allocated[allocation["batch_id"]] += line_quantity[allocation["line_id"]]
    return {
        batch["reference"]: (
            batch["product_id"],
            domain.BatchStock(
                batch["reference"],
                batch["purchased_quantity"],
                allocated[batch["id"]],
                batch["eta"],
            ),
        )
        for batch in state["Batch"]
    }


def products_of(state: State) -> dict[str, dict]:
    return {product["sku"]: product for product in state["Product"]}


def orders_of(state: State) -> dict[str, dict]:
    return {order["reference"]: order for order in state["Order"]}


def lines_of(state: State, order_id: int) -> dict[str, dict]:
    """The order's lines by SKU."""
    return {line["product_id"]: line for line in state["OrderLine"] if line["order_id"] == order_id}


def allocated_line_ids(state: State) -> set[int]:
    return {allocation["line_id"] for allocation in state["Allocation"]}


def waiting_lines(state: State, sku: str) -> list[tuple[str, int]]:
    """(order reference, quantity) of the SKU's waiting lines: unallocated lines of
    submitted orders."""
    submitted = {
        order["id"]: order["reference"]
        for order in state["Order"]
        if order["status"] == domain.SUBMITTED
    }
    held = allocated_line_ids(state)
    return [
        (submitted[line["order_id"]], line["quantity"])
        for line in state["OrderLine"]
        if line["product_id"] == sku and line["order_id"] in submitted and line["id"] not in held
    ]


def assert_back_orders_filled(before: State, after: State, sku: str, result) -> None:
    """Rule 10, after stock was added to ``sku``: each new allocation is of a line that
    was waiting, and no line still waiting fits in any of the SKU's batches."""
    was_waiting = {orderid for orderid, _ in waiting_lines(before, sku)}
    filled = [event for event in result.events if isinstance(event, events.Allocated)]
    assert {event.orderid for event in filled} <= was_waiting
    batches = [batch for product, batch in stock_of(after).values() if product == sku]
    for orderid, quantity in waiting_lines(after, sku):
        assert not any(batch.can_hold(quantity) for batch in batches), (orderid, quantity)


def allocation_ids_by_sku(state: State) -> dict[str, set[int]]:
    sku_of_line = {line["id"]: line["product_id"] for line in state["OrderLine"]}
    by_sku: dict[str, set[int]] = {}
    for allocation in state["Allocation"]:
        by_sku.setdefault(sku_of_line[allocation["line_id"]], set()).add(allocation["id"])
    return by_sku


def preferred_batch(batches: Iterable[domain.BatchStock], quantity: int) -> str | None:
    """Rule 2 written out again, apart from the domain's code: among the batches that
    can hold the whole line, warehouse stock first, then the earliest ETA, then the
    smaller reference. None: out of stock."""
    holding = [
        batch
        for batch in batches
        if batch.purchased_quantity - batch.allocated_quantity >= quantity
    ]
    if not holding:
        return None
    in_warehouse = [batch.reference for batch in holding if batch.eta is None]
    if in_warehouse:
        return min(in_warehouse)
    earliest = min(batch.eta for batch in holding)
    return min(batch.reference for batch in holding if batch.eta == earliest)


def replay(stock: Stock, recorded: Iterable[events.Event]) -> Stock:
    """Apply a command's events, in order, to the stock before it; check every
    allocation decision against the policy on the stock at that moment."""
    stock = dict(stock)

    def batches_of(sku: str) -> list[domain.BatchStock]:
        return [batch for batch_sku, batch in stock.values() if batch_sku == sku]

    for event in recorded:
        if isinstance(event, events.BatchCreated):
            assert event.ref not in stock
            stock[event.ref] = (event.sku, domain.BatchStock(event.ref, event.qty, 0, event.eta))
        elif isinstance(event, events.BatchQuantityChanged):
            sku, batch = stock[event.ref]
            assert (sku, batch.purchased_quantity) == (event.sku, event.previous_qty)
            stock[event.ref] = (sku, dataclasses.replace(batch, purchased_quantity=event.qty))
        elif isinstance(event, events.Deallocated):
            sku, batch = stock[event.batchref]
            assert sku == event.sku
            stock[event.batchref] = (sku, batch.with_allocated(-event.qty))
        elif isinstance(event, events.Allocated):
            expected = preferred_batch(batches_of(event.sku), event.qty)
            chosen = domain.choose_batch(batches_of(event.sku), event.qty)
            assert (chosen and chosen.reference) == expected, "choose_batch breaks rule 2"
            assert event.batchref == expected, (
                f"{event} chose {event.batchref}, the policy prefers {expected} among "
                f"{sorted(batches_of(event.sku), key=lambda batch: batch.reference)}"
            )
            sku, batch = stock[event.batchref]
            stock[event.batchref] = (sku, batch.with_allocated(event.qty))
        elif isinstance(event, events.OutOfStock):
            holder = preferred_batch(batches_of(event.sku), event.qty)
            assert holder is None, f"{event} although {holder} could hold it"
    return stock


# --- the machine -------------------------------------------------------------------


class CommandMachine(RuleBasedStateMachine):
    batches = Bundle("batches")
    orders = Bundle("orders")

    # Tallies for the report that the test prints (pytest -s).
    examples = 0
    steps = 0  # steps after which the invariants were checked
    commands_sent = 0
    read_model_checks = 0
    outcomes: Counter[str] = Counter()  # "PlaceOrder accepted": 12, ...
    events_replayed: Counter[str] = Counter()  # "Allocated": 140, ...

    def __init__(self) -> None:
        super().__init__()
        empty_write_tables()  # each example starts from nothing,
        rebuilds.rebuild(READ_MODELS, timeout=0)  # its read models too (TRUNCATE leaves no keys)
        # The step being checked: the state before its first command, its commands'
        # events, and the state after. (An initialize step sends several commands.)
        self.before: State = database_state()
        self.state: State = self.before
        self.step_events: list[events.Event] = []
        self.step_checked = False
        self.versions: dict[str, int] = {}
        self.commands_since_rebuild = 0
        self.references_made = 0
        CommandMachine.examples += 1

    # --- running a command ---------------------------------------------------------

    def execute(
        self,
        service: Callable[..., services.CommandResult],
        command: commands.Command,
        before: State,
        *,
        refused_because: str | None = None,
    ) -> services.CommandResult | None:
        """Run one command. A refused one must have written nothing; ``refused_because``
        says why the rules demand that this one be refused."""
        CommandMachine.commands_sent += 1
        self.commands_since_rebuild += 1
        name = type(command).__name__
        try:
            result = service(command)
        except domain.DomainError as error:
            after = database_state()
            assert after == before, f"{command} was refused ({error.message}) but wrote"
            CommandMachine.outcomes[f"{name} refused"] += 1
            self.remember(before, after, ())
            return None
        assert refused_because is None, f"{command} was accepted although {refused_because}"
        CommandMachine.outcomes[f"{name} accepted"] += 1
        self.remember(before, database_state(), result.events)
        return result

    def new_reference(self, prefix: str, label: int) -> str:
        self.references_made += 1
        return f"{prefix}{label}-{self.references_made}"

    @staticmethod
    def existing_reference(references: Iterable[str], label: int) -> str | None:
        """One of ``references`` (picked by ``label``), or None when there is none."""
        references = sorted(references)
        return references[label % len(references)] if references else None

    def remember(self, before: State, after: State, recorded: Iterable[events.Event]) -> None:
        if self.step_checked:  # the first command of a new step
            self.before, self.step_events, self.step_checked = before, [], False
        self.state = after
        self.step_events += recorded

    # --- rules ---------------------------------------------------------------------

    @initialize(
        target=orders,
        missing=mostly(st.none(), st.sampled_from(SKUS), one_in=4),
        prices=st.tuples(*(PRICES for _ in SKUS)),
        again=st.booleans(),
        orders=st.lists(st.tuples(LABELS, ORDER_LINES), max_size=3),
    )
    def products_and_orders_exist(self, missing, prices, again, orders):
        """Most examples start with every product and a few orders, so that lines get
        allocated; a SKU left out (or refused for its price) is created later, maybe by
        its first batch."""
        for sku, price in zip(SKUS, prices, strict=True):
            if sku != missing:
                self.create_product(sku, price)
        if again:
            self.create_product(SKUS[0], Decimal("1.00"))
        return multiple(*filter(None, (self.place(*order) for order in orders)))

    @precondition(lambda self: len(self.state["Product"]) < len(SKUS))
    @rule(sku=st.sampled_from(SKUS), price=PRICES)
    def create_product(self, sku, price):
        """While some SKU has no product (else it would crowd out the other rules)."""
        before = database_state()
        reasons = []
        if sku in products_of(before):
            reasons.append("the product exists")
        if price < 0 or price != price.quantize(Decimal("0.01")):
            reasons.append("the price is invalid")
        self.execute(
            services.create_product,
            commands.CreateProduct(sku=sku, name=sku.title(), price=price),
            before,
            refused_because=" and ".join(reasons) or None,
        )

    @initialize(
        target=batches,
        arrivals=st.lists(
            st.tuples(LABELS, st.sampled_from(SKUS), BATCH_QUANTITIES, ETAS), max_size=5
        ),
    )
    def stock_arrives(self, arrivals):
        """Most examples start with some stock, so that lines get allocated."""
        return multiple(*filter(None, (self.receive_batch(*arrival) for arrival in arrivals)))

    @rule(
        target=batches,
        label=LABELS,
        sku=st.sampled_from(SKUS),
        qty=BATCH_QUANTITIES,
        eta=ETAS,
        again=AGAIN,
    )
    def create_batch(self, label, sku, qty, eta, again):
        ref = self.receive_batch(label, sku, qty, eta, again=again)
        return multiple() if ref is None else ref

    def receive_batch(self, label, sku, qty, eta, *, again=False) -> str | None:
        """CreateBatch of a new reference (``again``: of an existing one, if any); the
        reference when accepted."""
        before = database_state()
        existing = self.existing_reference(stock_of(before), label) if again else None
        ref = existing or self.new_reference("b", label)
        reasons = []
        if ref in stock_of(before):
            reasons.append("the batch exists")
        if qty <= 0:
            reasons.append("the quantity is not positive")
        result = self.execute(
            services.create_batch,
            commands.CreateBatch(ref=ref, sku=sku, qty=qty, eta=eta),
            before,
            refused_because=" and ".join(reasons) or None,
        )
        if result is None:
            return None
        assert_back_orders_filled(before, self.state, sku, result)
        if sku not in products_of(before):
            # A batch for an unknown SKU creates the product (name = SKU, price 0).
            product = products_of(self.state)[sku]
            assert (product["name"], product["price"]) == (sku, Decimal("0.00"))
            assert events.ProductCreated(sku, sku, Decimal("0.00")) in result.events
        return ref

    @rule(ref=batches, qty=BATCH_QUANTITIES, below_allocated=st.booleans(), unknown=UNKNOWN)
    def change_batch_quantity(self, ref, qty, below_allocated, unknown):
        ref = UNKNOWN_REFERENCE if unknown else ref
        before = database_state()
        batch_before = None if unknown else stock_of(before)[ref][1]
        if below_allocated and batch_before and batch_before.allocated_quantity and qty > 0:
            # Rule 6's case: less than is allocated (0 when only 1 is: refused).
            qty = min(qty, batch_before.allocated_quantity - 1)
        reasons = []
        if qty <= 0:
            reasons.append("the quantity is not positive")
        if unknown:
            reasons.append("the batch is unknown")
        result = self.execute(
            services.change_batch_quantity,
            commands.ChangeBatchQuantity(ref=ref, qty=qty),
            before,
            refused_because=" and ".join(reasons) or None,
        )
        if result is None:
            return
        _, batch = stock_of(self.state)[ref]
        assert batch.purchased_quantity == qty
        # Rule 6: lines come off this batch only until the rest fits, and each freed
        # line is allocated again or reported out of stock.
        released = [event for event in result.events if isinstance(event, events.Deallocated)]
        assert {event.batchref for event in released} <= {ref}
        if released:
            still_held = batch_before.allocated_quantity - sum(event.qty for event in released)
            assert still_held <= qty < still_held + released[-1].qty
        else:
            assert batch_before.allocated_quantity <= qty
        if qty > batch_before.purchased_quantity:
            # Rule 10: stock was added, and went to the lines waiting for it.
            assert released == []
            assert_back_orders_filled(before, self.state, stock_of(before)[ref][0], result)
            return
        decided = [
            (event.orderid, event.sku)
            for event in result.events
            if isinstance(event, events.Allocated | events.OutOfStock)
        ]
        assert sorted(decided) == sorted((event.orderid, event.sku) for event in released)

    @rule(
        target=orders,
        label=mostly(st.none(), LABELS, one_in=3),  # None: the service makes the reference
        lines=ORDER_LINES,
        duplicate_sku=mostly(st.just(False), st.just(True), one_in=8),
        again=AGAIN,
    )
    def place_order(self, label, lines, duplicate_sku, again):
        reference = self.place(label, lines, duplicate_sku=duplicate_sku, again=again)
        return multiple() if reference is None else reference

    def place(self, label, lines, *, duplicate_sku=False, again=False) -> str | None:
        """PlaceOrder; its reference when accepted."""
        before = database_state()
        if again:
            reference = self.existing_reference(orders_of(before), label or 0)
        elif label is not None:
            reference = self.new_reference("o", label)
        else:
            reference = None
        if lines and duplicate_sku:
            lines = [*lines, (lines[0][0], lines[0][1] + 1)]
        skus = [sku for sku, _ in lines]
        reasons = []
        if reference in orders_of(before):
            reasons.append("the reference exists")
        if any(qty <= 0 for _, qty in lines):
            reasons.append("a quantity is not positive")
        if len(set(skus)) < len(skus):
            reasons.append("a SKU is on two lines")
        if set(skus) - set(products_of(before)):
            reasons.append("a SKU is unknown")
        result = self.execute(
            services.place_order,
            commands.PlaceOrder(
                customer=CUSTOMER,
                shipping_address=ADDRESS,
                lines=tuple(commands.OrderLineInput(sku=sku, qty=qty) for sku, qty in lines),
                reference=reference,
            ),
            before,
            refused_because=" and ".join(reasons) or None,
        )
        if result is None:
            return None
        order = orders_of(self.state)[result.reference]
        assert order["status"] == domain.PENDING
        # Each line with its quantity, at the product's price of the moment.
        prices = {sku: product["price"] for sku, product in products_of(before).items()}
        placed = lines_of(self.state, order["id"])
        assert {sku: (line["quantity"], line["unit_price"]) for sku, line in placed.items()} == {
            sku: (qty, prices[sku]) for sku, qty in lines
        }
        return result.reference

    @rule(reference=orders, unknown=UNKNOWN)
    def submit_order(self, reference, unknown):
        if unknown:
            self.refuse_unknown_order(commands.SubmitOrder(reference=UNKNOWN_REFERENCE))
            return
        before = database_state()
        order = orders_of(before)[reference]
        lines = lines_of(before, order["id"])
        reasons = []
        if order["status"] != domain.PENDING:
            reasons.append(f"the order is {order['status']}")
        if not lines:
            reasons.append("the order is empty")
        result = self.execute(
            services.submit_order,
            commands.SubmitOrder(reference=reference),
            before,
            refused_because=" and ".join(reasons) or None,
        )
        if result is None:
            return
        assert orders_of(self.state)[reference]["status"] == domain.SUBMITTED
        # Submitting allocates every line not yet allocated: each one is either
        # allocated or reported out of stock, exactly once.
        unallocated = sorted(
            sku for sku, line in lines.items() if line["id"] not in allocated_line_ids(before)
        )
        decided = sorted(
            event.sku
            for event in result.events
            if isinstance(event, events.Allocated | events.OutOfStock)
        )
        assert decided == unallocated

    @rule(reference=orders, unknown=UNKNOWN)
    def cancel_order(self, reference, unknown):
        if unknown:
            self.refuse_unknown_order(commands.CancelOrder(reference=UNKNOWN_REFERENCE))
            return
        before = database_state()
        status = orders_of(before)[reference]["status"]
        result = self.execute(
            services.cancel_order,
            commands.CancelOrder(reference=reference),
            before,
            refused_because="the order is cancelled" if status == domain.CANCELLED else None,
        )
        if result is not None:
            assert orders_of(self.state)[reference]["status"] == domain.CANCELLED

    def allocate(self, orderid, sku, qty, same_quantity) -> bool:
        """Allocate; True when it created the order."""
        before = database_state()
        order = orders_of(before).get(orderid)
        line = lines_of(before, order["id"]).get(sku) if order else None
        if line is not None and same_quantity:
            qty = line["quantity"]
        reasons = []
        if qty <= 0:
            reasons.append("the quantity is not positive")
        if sku not in products_of(before):
            reasons.append("the SKU is unknown")
        if order and order["status"] == domain.CANCELLED:
            reasons.append("the order is cancelled")
        if line is not None and line["quantity"] != qty:
            reasons.append(f"the order has a line of {line['quantity']}")
        result = self.execute(
            services.allocate,
            commands.Allocate(orderid=orderid, sku=sku, qty=qty),
            before,
            refused_because=" and ".join(reasons) or None,
        )
        if result is None:
            return False
        if line is not None and line["id"] in allocated_line_ids(before):
            # Rule 3: allocating an allocated line changes nothing.
            assert self.state == before
            return False
        order_after = orders_of(self.state)[orderid]
        if order is None:
            assert (order_after["status"], order_after["customer_name"]) == (domain.SUBMITTED, "")
        line_after = lines_of(self.state, order_after["id"])[sku]
        assert line_after["quantity"] == qty
        if line is None:
            assert line_after["unit_price"] == products_of(before)[sku]["price"]
        decisions = [
            event
            for event in result.events
            if isinstance(event, events.Allocated | events.OutOfStock)
        ]
        assert len(decisions) == 1
        is_allocated = line_after["id"] in allocated_line_ids(self.state)
        assert is_allocated == isinstance(decisions[0], events.Allocated)
        return order is None

    @rule(
        orderid=orders,
        sku=LINE_SKUS,
        qty=LINE_QUANTITIES,
        same_quantity=st.booleans(),
    )
    def allocate_to_existing_order(self, orderid, sku, qty, same_quantity):
        self.allocate(orderid, sku, qty, same_quantity)

    @rule(
        target=orders,
        label=LABELS,
        sku=LINE_SKUS,
        qty=LINE_QUANTITIES,
        same_quantity=st.booleans(),
    )
    def allocate_to_new_order(self, label, sku, qty, same_quantity):
        """Allocate then creates a submitted order without customer."""
        orderid = self.new_reference("o", label)
        return orderid if self.allocate(orderid, sku, qty, same_quantity) else multiple()

    @rule(orderid=orders, sku=LINE_SKUS, unknown=UNKNOWN)
    def deallocate(self, orderid, sku, unknown):
        if unknown:
            self.refuse_unknown_order(commands.Deallocate(orderid=UNKNOWN_REFERENCE, sku=sku))
            return
        before = database_state()
        order = orders_of(before)[orderid]
        line = lines_of(before, order["id"]).get(sku)
        reasons = []
        if sku not in products_of(before):
            reasons.append("the SKU is unknown")
        if order["status"] == domain.CANCELLED:
            reasons.append("the order is cancelled")
        if line is None:
            reasons.append("the order has no line for the SKU")
        result = self.execute(
            services.deallocate,
            commands.Deallocate(orderid=orderid, sku=sku),
            before,
            refused_because=" and ".join(reasons) or None,
        )
        if result is None:
            return
        assert line["id"] not in allocated_line_ids(self.state)
        was_allocated = line["id"] in allocated_line_ids(before)
        assert [event.kind for event in result.events] == (["Deallocated"] if was_allocated else [])

    @staticmethod
    def line_sku(state: State, order: dict, sku: str | None, label: int, *, on_it: bool) -> str:
        """``sku``, or (None) one the order has a line for (``on_it``) or has none for."""
        if sku is not None:
            return sku
        lines = lines_of(state, order["id"])
        skus = sorted(lines) if on_it else sorted(set(SKUS) - set(lines))
        return skus[label % len(skus)] if skus else SKUS[label % len(SKUS)]

    @rule(
        reference=orders, sku=LINE_COMMAND_SKUS, label=LABELS, qty=LINE_QUANTITIES, unknown=UNKNOWN
    )
    def add_line(self, reference, sku, label, qty, unknown):
        if unknown:
            self.refuse_unknown_order(commands.AddLine(UNKNOWN_REFERENCE, sku or "LAMP", qty))
            return
        before = database_state()
        order = orders_of(before)[reference]
        sku = self.line_sku(before, order, sku, label, on_it=False)
        reasons = []
        if qty <= 0:
            reasons.append("the quantity is not positive")
        if sku not in products_of(before):
            reasons.append("the SKU is unknown")
        if order["status"] == domain.CANCELLED:
            reasons.append("the order is cancelled")
        if sku in lines_of(before, order["id"]):
            reasons.append("the order has a line for the SKU")
        result = self.execute(
            services.add_line,
            commands.AddLine(reference, sku, qty),
            before,
            refused_because=" and ".join(reasons) or None,
        )
        if result is None:
            return
        line = lines_of(self.state, order["id"])[sku]
        assert (line["quantity"], line["unit_price"]) == (qty, products_of(before)[sku]["price"])
        decisions = [
            event
            for event in result.events
            if isinstance(event, events.Allocated | events.OutOfStock)
        ]
        is_allocated = line["id"] in allocated_line_ids(self.state)
        if order["status"] == domain.SUBMITTED:
            # A submitted order's new line is allocated at once, or out of stock.
            assert len(decisions) == 1
            assert is_allocated == isinstance(decisions[0], events.Allocated)
        else:
            assert (decisions, is_allocated) == ([], False)

    @rule(
        reference=orders,
        sku=LINE_COMMAND_SKUS,
        label=LABELS,
        qty=LINE_QUANTITIES,
        same_quantity=mostly(st.just(False), st.just(True), one_in=5),
        unknown=UNKNOWN,
    )
    def change_line_quantity(self, reference, sku, label, qty, same_quantity, unknown):
        if unknown:
            command = commands.ChangeLineQuantity(UNKNOWN_REFERENCE, sku or "LAMP", qty)
            self.refuse_unknown_order(command)
            return
        before = database_state()
        order = orders_of(before)[reference]
        sku = self.line_sku(before, order, sku, label, on_it=True)
        line = lines_of(before, order["id"]).get(sku)
        if line is not None and same_quantity:
            qty = line["quantity"]
        reasons = []
        if qty <= 0:
            reasons.append("the quantity is not positive")
        if sku not in products_of(before):
            reasons.append("the SKU is unknown")
        if order["status"] == domain.CANCELLED:
            reasons.append("the order is cancelled")
        if line is None:
            reasons.append("the order has no line for the SKU")
        result = self.execute(
            services.change_line_quantity,
            commands.ChangeLineQuantity(reference, sku, qty),
            before,
            refused_because=" and ".join(reasons) or None,
        )
        if result is None:
            return
        if qty == line["quantity"]:
            assert (result.events, self.state) == ((), before)  # nothing changes
            return
        assert lines_of(self.state, order["id"])[sku]["quantity"] == qty
        was_allocated = line["id"] in allocated_line_ids(before)
        is_allocated = line["id"] in allocated_line_ids(self.state)
        decisions = [
            event
            for event in result.events
            if isinstance(event, events.Allocated | events.OutOfStock)
        ]
        if was_allocated or order["status"] == domain.SUBMITTED:
            # Reallocated: released (when it was allocated), then placed by the policy.
            assert len(decisions) == 1
            assert is_allocated == isinstance(decisions[0], events.Allocated)
        else:
            assert (decisions, is_allocated) == ([], False)
        released = [event for event in result.events if isinstance(event, events.Deallocated)]
        assert len(released) == was_allocated

    @rule(reference=orders, sku=LINE_COMMAND_SKUS, label=LABELS, unknown=UNKNOWN)
    def remove_line(self, reference, sku, label, unknown):
        if unknown:
            self.refuse_unknown_order(commands.RemoveLine(UNKNOWN_REFERENCE, sku or "LAMP"))
            return
        before = database_state()
        order = orders_of(before)[reference]
        sku = self.line_sku(before, order, sku, label, on_it=True)
        lines = lines_of(before, order["id"])
        reasons = []
        if sku not in products_of(before):
            reasons.append("the SKU is unknown")
        if order["status"] == domain.CANCELLED:
            reasons.append("the order is cancelled")
        if sku not in lines:
            reasons.append("the order has no line for the SKU")
        elif order["status"] == domain.SUBMITTED and len(lines) == 1:
            reasons.append("it is the submitted order's last line")
        result = self.execute(
            services.remove_line,
            commands.RemoveLine(reference, sku),
            before,
            refused_because=" and ".join(reasons) or None,
        )
        if result is None:
            return
        assert sku not in lines_of(self.state, order["id"])
        was_allocated = lines[sku]["id"] in allocated_line_ids(before)
        assert [event.kind for event in result.events] == (
            ["Deallocated", "LineRemoved"] if was_allocated else ["LineRemoved"]
        )

    def refuse_unknown_order(self, command: commands.Command) -> None:
        self.execute(
            services.handle, command, database_state(), refused_because="the order is unknown"
        )

    @precondition(lambda self: self.commands_since_rebuild >= 20)
    @rule(compact=st.booleans())
    def bring_read_models_up_to_date(self, compact: bool):
        self.remember(self.state, self.state, ())
        self.check_read_models(compact=compact)

    def check_read_models(self, *, compact: bool = False) -> None:
        """Refresh the read models as the watcher does (the writes since the last refresh,
        key by key) or compact them (rebuild the bases, rewrite the deltas), then compare
        them with their queries, and the rows each state counts with the rows readers see."""
        if compact:
            outcomes = rebuilds.compact(READ_MODELS, wait=True)
        else:
            outcomes = refresh.refresh(READ_MODELS, timeout=0)
        assert [outcome for outcome in outcomes if outcome.error] == []
        differences = [check for check in verification.check_all() if not check.ok]
        assert differences == [], "a view differs from its query"
        for unit, row_count, value_counts in RefreshState.objects.values_list(
            "unit", "row_count", "value_counts"
        ):
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(unit)}")
                assert (unit, row_count) == (unit, cursor.fetchone()[0])
                if READ_MODELS[unit].counted_by:
                    # The counts per value the list answers with: those of the view.
                    cursor.execute(READ_MODELS[unit].value_counts(unit))
                    assert (unit, value_counts) == (unit, parse_counts(cursor.fetchone()[0]))
        CommandMachine.read_model_checks += 1
        self.commands_since_rebuild = 0

    def teardown(self) -> None:
        self.check_read_models()

    # --- invariants (after every step) ---------------------------------------------

    @invariant()
    def no_batch_is_allocated_more_than_it_holds(self):
        for _, batch in stock_of(self.state).values():
            assert 0 <= batch.allocated_quantity <= batch.purchased_quantity, batch
            assert batch.purchased_quantity > 0, batch

    @invariant()
    def each_batch_counts_exactly_the_lines_it_holds(self):
        quantity_of_line = {line["id"]: line["quantity"] for line in self.state["OrderLine"]}
        held: Counter[int] = Counter()
        for allocation in self.state["Allocation"]:
            held[allocation["batch_id"]] += quantity_of_line[allocation["line_id"]]
        for batch in self.state["Batch"]:
            assert batch["allocated_quantity"] == held[batch["id"]], batch

    @invariant()
    def allocations_sit_on_batches_of_their_sku(self):
        sku_of_batch = {batch["id"]: batch["product_id"] for batch in self.state["Batch"]}
        sku_of_line = {line["id"]: line["product_id"] for line in self.state["OrderLine"]}
        for allocation in self.state["Allocation"]:
            assert sku_of_batch[allocation["batch_id"]] == sku_of_line[allocation["line_id"]]

    @invariant()
    def cancelled_orders_hold_no_allocation(self):
        # Pending orders may hold allocations: Allocate on a pending order allocates.
        status = {order["id"]: order["status"] for order in self.state["Order"]}
        order_of_line = {line["id"]: line["order_id"] for line in self.state["OrderLine"]}
        for allocation in self.state["Allocation"]:
            assert status[order_of_line[allocation["line_id"]]] != domain.CANCELLED, allocation

    @invariant()
    def order_lines_are_positive_and_one_per_sku(self):
        for line in self.state["OrderLine"]:
            assert line["quantity"] > 0, line
        keys = [(line["order_id"], line["product_id"]) for line in self.state["OrderLine"]]
        assert len(keys) == len(set(keys))

    @invariant()
    def product_versions_never_decrease(self):
        before = {sku: product["version"] for sku, product in products_of(self.before).items()}
        after = {sku: product["version"] for sku, product in products_of(self.state).items()}
        for sku, version in after.items():
            assert version >= self.versions.get(sku, 0), (sku, self.versions.get(sku), version)
        # Rule 8: the version grows with every change to the product's allocations.
        allocations_before = allocation_ids_by_sku(self.before)
        allocations_after = allocation_ids_by_sku(self.state)
        for sku in set(allocations_before) | set(allocations_after):
            if allocations_before.get(sku, set()) != allocations_after.get(sku, set()):
                assert after[sku] > before.get(sku, 0), (
                    f"{sku}'s allocations changed, not its version"
                )
        self.versions = after

    @invariant()
    def allocations_follow_the_policy_and_events_tell_the_change(self):
        replayed = replay(stock_of(self.before), self.step_events)
        assert replayed == stock_of(self.state), "the events do not account for the stock"
        CommandMachine.events_replayed.update(event.kind for event in self.step_events)
        # The next command starts a new step. (The order of the invariants is no
        # matter: no command runs between them.)
        self.step_checked = True
        CommandMachine.steps += 1


def test_random_commands_keep_the_rules(settings):
    # Commands only announce their writes; the machine rebuilds them itself before comparing.
    settings.READ_MODEL_REFRESH = "async"
    CommandMachine.examples = CommandMachine.steps = CommandMachine.commands_sent = 0
    CommandMachine.read_model_checks = 0
    CommandMachine.outcomes.clear()
    CommandMachine.events_replayed.clear()
    started = time.monotonic()

    run_state_machine_as_test(
        CommandMachine,
        settings=hypothesis_settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )

    elapsed = time.monotonic() - started
    refused = sum(count for key, count in CommandMachine.outcomes.items() if "refused" in key)
    print(
        f"\nstate machine: {CommandMachine.examples} examples, {CommandMachine.steps} steps"
        f" checked, {CommandMachine.commands_sent} commands ({refused} refused),"
        f" {CommandMachine.read_model_checks} read-model refreshes or compactions compared,"
        f" in {elapsed:.1f} s"
    )
    print("commands:", ", ".join(f"{k} {n}" for k, n in sorted(CommandMachine.outcomes.items())))
    print(
        "events replayed and checked:",
        ", ".join(f"{k} {n}" for k, n in sorted(CommandMachine.events_replayed.items())),
    )
