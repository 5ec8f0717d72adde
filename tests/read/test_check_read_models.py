"""``check_read_models`` and ``refresh_views`` as an operator runs them: the check passes
on fresh views after any history of commands, names each difference of a stale view,
and ``refresh_views`` repairs what it finds."""

import datetime
import random
from collections import Counter
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orders_read.read_models import READ_MODELS
from orders_write import commands, domain, services
from orders_write.models import Allocation, Event
from tests.factories import TODAY, add_batch

pytestmark = pytest.mark.django_db(transaction=True)

VIEWS = sorted(READ_MODELS)
KNOWN = (
    "allocations_view, batch_availability, line_days, order_lines_view, order_summary,"
    " product_availability, waiting_lines"
)


def check(*views: str) -> str:
    """Run the check; its output (raises CommandError when a view differs)."""
    out = StringIO()
    call_command("check_read_models", *views, stdout=out)
    return out.getvalue()


def failed_check(*views: str) -> tuple[str, str]:
    """Run a check that must fail; (its output, the error's message)."""
    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("check_read_models", *views, stdout=out)
    return out.getvalue(), str(failure.value)


def lines_about(output: str, label: str, needle: str) -> list[str]:
    return [
        line for line in output.splitlines() if line.strip().startswith(label) and needle in line
    ]


def allocate(orderid: str, sku: str, qty: int):
    return services.allocate(commands.Allocate(orderid=orderid, sku=sku, qty=qty))


def deallocate(orderid: str, sku: str):
    return services.deallocate(commands.Deallocate(orderid=orderid, sku=sku))


# --- a long random history --------------------------------------------------------------

SKUS = ("LAMP", "CHAIR", "TABLE", "DESK", "RUG")
UNKNOWN_SKU = "GHOST"
KINDS = (
    "product",
    "batch",
    "quantity",
    "place",
    "submit",
    "cancel",
    "allocate",
    "deallocate",
    "add_line",
    "change_line",
    "remove_line",
)
# Fewer cancels than the rest, so that orders live long enough to matter.
WEIGHTS = (1, 3, 2, 3, 2, 1, 4, 2, 2, 2, 1)


class RandomHistory:
    """Draws every command with inputs that are now and then refused: unknown or
    duplicate references, unknown SKUs, zero quantities, cancelled orders."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.orders: list[str] = []
        self.batches: list[str] = []
        self.skus = list(SKUS)  # grows with the products CreateProduct adds
        self.lines: list[tuple[str, str]] = []  # (order, SKU) of accepted lines

    def sku(self) -> str:
        return UNKNOWN_SKU if self.rng.random() < 0.05 else self.rng.choice(self.skus)

    def qty(self, high: int = 8) -> int:
        return 0 if self.rng.random() < 0.04 else self.rng.randint(1, high)

    def existing(self, references: list[str], prefix: str) -> str:
        """Mostly a reference used before; sometimes a new one."""
        if references and self.rng.random() < 0.9:
            return self.rng.choice(references)
        return self.new(references, prefix)

    def new(self, references: list[str], prefix: str) -> str:
        """Mostly a new reference; sometimes a duplicate."""
        if references and self.rng.random() < 0.1:
            return self.rng.choice(references)
        reference = f"{prefix}{len(references) + 1}"
        references.append(reference)
        return reference

    def accepted(self, command: commands.Command) -> None:
        if isinstance(command, commands.PlaceOrder):
            self.lines += [(command.reference, line.sku) for line in command.lines]
        elif isinstance(command, commands.Allocate):
            self.lines.append((command.orderid, command.sku))
        elif isinstance(command, commands.AddLine):
            self.lines.append((command.reference, command.sku))
        elif isinstance(command, commands.RemoveLine):
            self.lines.remove((command.reference, command.sku))

    def line(self) -> tuple[str, str]:
        """Mostly a line an order has; sometimes one it has not."""
        if self.lines and self.rng.random() < 0.8:
            return self.rng.choice(self.lines)
        return self.existing(self.orders, "o"), self.sku()

    def command(self) -> commands.Command:
        rng = self.rng
        (kind,) = rng.choices(KINDS, weights=WEIGHTS)
        if kind == "product":
            price = Decimal(rng.randint(0, 9999)) / 100
            return commands.CreateProduct(sku=self.new(self.skus, "P"), name="Thing", price=price)
        if kind == "batch":
            eta = rng.choice([None, None, TODAY + datetime.timedelta(days=rng.randint(1, 30))])
            ref = self.new(self.batches, "b")
            sku = rng.choice(self.skus)
            return commands.CreateBatch(ref=ref, sku=sku, qty=self.qty(30), eta=eta)
        if kind == "quantity":
            return commands.ChangeBatchQuantity(
                ref=self.existing(self.batches, "b"), qty=self.qty(30)
            )
        if kind == "place":
            skus = rng.sample(self.skus, rng.randint(0, 3))
            if rng.random() < 0.05:
                skus.append(UNKNOWN_SKU)
            return commands.PlaceOrder(
                customer=rng.choice(("Ada Lovelace", "Grace Hopper", "Alan Turing")),
                shipping_address="1 Main Street",
                lines=tuple(commands.OrderLineInput(sku=sku, qty=self.qty()) for sku in skus),
                reference=self.new(self.orders, "o"),
            )
        if kind == "submit":
            return commands.SubmitOrder(reference=self.existing(self.orders, "o"))
        if kind == "cancel":
            return commands.CancelOrder(reference=self.existing(self.orders, "o"))
        if kind == "allocate":
            return commands.Allocate(
                orderid=self.existing(self.orders, "o"), sku=self.sku(), qty=self.qty()
            )
        if kind == "add_line":
            return commands.AddLine(self.existing(self.orders, "o"), self.sku(), self.qty())
        if kind == "change_line":
            return commands.ChangeLineQuantity(*self.line(), qty=self.qty())
        if kind == "remove_line":
            return commands.RemoveLine(*self.line())
        orderid, sku = self.line()
        return commands.Deallocate(orderid=orderid, sku=sku)


EVENT_NAMES = {
    "ProductCreated",
    "BatchCreated",
    "BatchQuantityChanged",
    "OrderPlaced",
    "OrderSubmitted",
    "Allocated",
    "Deallocated",
    "OutOfStock",
    "OrderCancelled",
    "LineAdded",
    "LineQuantityChanged",
    "LineRemoved",
}


def test_check_passes_after_a_long_random_history_of_commands():
    history = RandomHistory(seed=20261124)
    accepted: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for _ in range(200):
        command = history.command()
        kind = type(command).__name__
        try:
            services.handle(command)
        except domain.DomainError:
            refused[kind] += 1
        else:
            accepted[kind] += 1
            history.accepted(command)

    # The history really exercised every command, accepted and refused, and left stock held.
    assert set(accepted) == {command_type.__name__ for command_type in services.HANDLERS}
    assert sum(refused.values()) >= 10, refused
    assert Allocation.objects.exists()
    assert set(Event.objects.values_list("name", flat=True)) == EVENT_NAMES

    output = check()

    assert output.splitlines() == [f"{view}: ok" for view in VIEWS]


# --- stale views ------------------------------------------------------------------------


def stop_refreshing(settings) -> None:
    """From now on commands only announce their writes; no watcher runs in tests: views go stale."""
    settings.READ_MODEL_REFRESH = "async"


def test_check_fails_naming_the_rows_a_stale_view_misses(settings):
    stop_refreshing(settings)

    add_batch("lamps-1", "LAMP", 10)

    output, message = failed_check()
    assert "batch_availability: 1 differences" in output
    assert "product_availability: 1 differences" in output
    assert len(lines_about(output, "missing:", "'lamps-1'")) == 1
    assert len(lines_about(output, "missing:", "'LAMP'")) == 2  # the batch and the product
    assert lines_about(output, "unexpected:", "") == []
    assert "allocations_view: ok" in output.splitlines()
    assert message.startswith("2 read model(s) differ")


def test_check_fails_naming_the_rows_a_stale_view_still_shows(settings):
    add_batch("lamps-1", "LAMP", 10)
    allocate("o1", "LAMP", 3)
    stop_refreshing(settings)

    deallocate("o1", "LAMP")

    output, _ = failed_check("allocations_view")
    assert output.splitlines()[0] == "allocations_view: 1 differences"
    (shown,) = lines_about(output, "unexpected:", "'o1'")
    assert "'LAMP'" in shown and "'lamps-1'" in shown
    assert lines_about(output, "missing:", "") == []


def test_check_shows_a_changed_row_as_missing_and_unexpected(settings):
    add_batch("lamps-1", "LAMP", 10)
    stop_refreshing(settings)

    services.change_batch_quantity(commands.ChangeBatchQuantity(ref="lamps-1", qty=7))

    output, _ = failed_check("batch_availability")
    assert output.splitlines()[0] == "batch_availability: 2 differences"
    (now,) = lines_about(output, "missing:", "'lamps-1'")
    (before,) = lines_about(output, "unexpected:", "'lamps-1'")
    assert now.endswith("7, 0, 7)") and before.endswith("10, 0, 10)")


def test_check_of_named_views_checks_only_those(settings):
    stop_refreshing(settings)
    add_batch("lamps-1", "LAMP", 10)  # the batch and product views go stale

    output = check("order_summary", "allocations_view")

    assert output.splitlines() == ["order_summary: ok", "allocations_view: ok"]


def test_check_of_an_unknown_view_is_an_error_naming_the_known_ones():
    with pytest.raises(CommandError) as failure:
        check("allocations_view", "nope")

    assert str(failure.value) == f"Unknown read model 'nope'. Known: {KNOWN}."


# --- refresh_views repairs ----------------------------------------------------------------


def test_refresh_views_repairs_every_stale_view(settings):
    stop_refreshing(settings)
    add_batch("lamps-1", "LAMP", 10)
    allocate("o1", "LAMP", 3)
    failed_check()

    call_command("refresh_views", stdout=StringIO())

    assert check().splitlines() == [f"{view}: ok" for view in VIEWS]


def test_refresh_views_of_one_view_repairs_only_that_one(settings):
    stop_refreshing(settings)
    add_batch("lamps-1", "LAMP", 10)

    call_command("refresh_views", "batch_availability", stdout=StringIO())

    assert check("batch_availability").splitlines() == ["batch_availability: ok"]
    output, _ = failed_check("product_availability")
    assert output.splitlines()[0] == "product_availability: 1 differences"


def test_refresh_views_of_an_unknown_view_is_an_error_naming_the_known_ones():
    with pytest.raises(CommandError) as failure:
        call_command("refresh_views", "nope", stdout=StringIO())

    assert str(failure.value) == f"Unknown read model 'nope'. Known: {KNOWN}."
