"""Demo data: a catalogue, stock in the warehouse and on ships, and N orders.

The catalogue goes through the write side's services. Orders are bulk-loaded with
COPY (a million in well under a minute), allocated in memory by the domain's own
policy (``domain.choose_batch``), and the read models rebuilt afterwards: one service
call per order would take hours. Seeding again adds only the orders that are missing.
"""

from __future__ import annotations

import datetime
import io
import random
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from orders_read import refresh
from orders_write import commands, domain, services
from orders_write.models import Batch, Product

DEMO_USERNAME = "demo"
ORDER_PREFIX = "DEMO-"
CHUNK = 20_000  # orders per COPY round (and per tick of the progress bar)

NAMED_PRODUCTS = [
    ("RED-CHAIR", "Red chair", "49.90"),
    ("BLUE-CHAIR", "Blue chair", "49.90"),
    ("OAK-TABLE", "Oak dining table", "389.00"),
    ("SMALL-TABLE", "Small side table", "79.50"),
    ("DESK-LAMP", "Desk lamp", "24.99"),
    ("FLOOR-LAMP", "Floor lamp", "89.00"),
    ("BOOKCASE", "Five-shelf bookcase", "149.00"),
    ("RUG-2X3", "Wool rug 2 x 3 m", "229.00"),
]
FIRST_NAMES = ["Ada", "Grace", "Alan", "Katherine", "Edsger", "Barbara", "Donald", "Margaret"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Johnson", "Dijkstra", "Liskov", "Knuth", "Hamilton"]
STREETS = ["High Street", "Station Road", "Church Lane", "Mill Road", "Park Avenue", "Kingsway"]
CITIES = ["London", "Leeds", "Bristol", "Glasgow", "Cardiff", "Belfast", "York", "Bath"]


def catalogue(order_count: int) -> list[tuple[str, str, Decimal]]:
    """The demo's products: the named eight, and more for bigger demos (one per 5,000)."""
    products = [(sku, name, Decimal(price)) for sku, name, price in NAMED_PRODUCTS]
    rng = random.Random(0)
    for number in range(1, min(order_count // 5000, 2000) + 1):
        price = Decimal(rng.randint(299, 49_999)) / 100
        products.append((f"ITEM-{number:04d}", f"Catalogue item {number}", price))
    return products


def _batches(products, order_count: int, today: datetime.date):
    """Per product: warehouse stock and two shipments, sized so that most lines fit."""
    # Each order has 2.5 lines of 3 units on average, spread over the products.
    demand = max(1, order_count * 2.5 * 3 * 0.8 // len(products))
    for index, (sku, _, _) in enumerate(products):
        yield f"WH-{sku}", sku, int(demand * 0.5) + 40, None
        yield (
            f"SHIP-{sku}-1",
            sku,
            int(demand * 0.3) + 60,
            today + datetime.timedelta(7 + index % 21),
        )
        yield (
            f"SHIP-{sku}-2",
            sku,
            int(demand * 0.1) + 100,
            today + datetime.timedelta(30 + index % 30),
        )


@transaction.atomic  # one commit: the read models refresh once, not per product
def seed_catalogue(order_count: int) -> None:
    products = catalogue(order_count)
    existing_products = set(Product.objects.values_list("sku", flat=True))
    for sku, name, price in products:
        if sku not in existing_products:
            services.create_product(commands.CreateProduct(sku=sku, name=name, price=price))
    existing_batches = set(Batch.objects.values_list("reference", flat=True))
    for ref, sku, qty, eta in _batches(products, order_count, timezone.localdate()):
        if ref not in existing_batches:
            services.create_batch(commands.CreateBatch(ref=ref, sku=sku, qty=qty, eta=eta))


def demo_order_reference(number: int) -> str:
    return f"{ORDER_PREFIX}{number:07d}"


@dataclass
class _Stock:
    """Each SKU's batches with what is still available, in allocation preference order."""

    batches: dict[str, list[list]]  # sku -> [[BatchStock, batch id], ...]

    @classmethod
    def load(cls) -> _Stock:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT batch_id, batchref, sku, purchased, allocated, eta FROM batch_stock"
            )
            stock: dict[str, list] = {}
            for batch_id, ref, sku, purchased, allocated, eta in cursor.fetchall():
                entry = [domain.BatchStock(ref, purchased, allocated, eta), batch_id]
                stock.setdefault(sku, []).append(entry)
        for entries in stock.values():
            entries.sort(key=lambda entry: domain.preference(entry[0]))
        return cls(stock)

    def allocate(self, sku: str, quantity: int) -> int | None:
        """The id of the batch the policy gives ``quantity`` of ``sku`` to, or None."""
        for entry in self.batches.get(sku, ()):
            if entry[0].can_hold(quantity):
                entry[0] = entry[0].with_allocated(quantity)
                return entry[1]
        return None


def _reserve_ids(cursor, table: str, count: int) -> int:
    """Take ``count`` consecutive ids of ``table``'s sequence; returns the first."""
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
        f" nextval(pg_get_serial_sequence('{table}', 'id')) + %s - 1)",
        [count],
    )
    return cursor.fetchone()[0] - count + 1


def _copy(cursor, table: str, columns: str, rows: Iterable[str]) -> None:
    buffer = io.StringIO("".join(rows))
    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)


def _text(value: str) -> str:
    """A value for COPY's text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def existing_orders() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM orders_write_order WHERE reference LIKE %s",
            [f"{ORDER_PREFIX}%"],
        )
        return cursor.fetchone()[0]


def seed_orders(count: int, *, progress: Callable[[int], object] = lambda done: None) -> int:
    """Load demo orders DEMO-0000001 … up to ``count``; returns how many were new."""
    start = existing_orders() + 1
    if start > count:
        return 0
    prices = dict(Product.objects.values_list("sku", "price"))
    skus = sorted(prices)
    stock = _Stock.load()
    now = timezone.now()
    created = 0
    for first in range(start, count + 1, CHUNK):
        numbers = range(first, min(first + CHUNK, count + 1))
        with transaction.atomic(), connection.cursor() as cursor:
            _load_chunk(cursor, numbers, count, skus, prices, stock, now)
        created += len(numbers)
        progress(len(numbers))
    return created


def _load_chunk(cursor, numbers: range, count: int, skus, prices, stock: _Stock, now) -> None:
    rng = random.Random(numbers.start)
    order_id = _reserve_ids(cursor, "orders_write_order", len(numbers))
    orders, lines, allocated_lines = [], [], []
    for offset, number in enumerate(numbers):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        address = f"{rng.randint(1, 250)} {rng.choice(STREETS)}\\n{rng.choice(CITIES)}"
        fate = rng.random()
        status = "submitted" if fate < 0.8 else ("pending" if fate < 0.9 else "cancelled")
        # Spread over the last year, newest last, as if placed one after another.
        created_at = now - datetime.timedelta(seconds=(count - number) * 31_536_000 / count)
        orders.append(
            f"{order_id + offset}\t{demo_order_reference(number)}\t{first} {last}\t"
            f"{address}\t{status}\t{created_at.isoformat()}\n"
        )
        for sku in rng.sample(skus, k=min(len(skus), rng.choice((1, 2, 2, 3, 3, 4)))):
            quantity = rng.randint(1, 5)
            lines.append((order_id + offset, sku, quantity))
            if status == "submitted":
                allocated_lines.append(len(lines) - 1)
    _copy(
        cursor,
        "orders_write_order",
        "id, reference, customer_name, shipping_address, status, created_at",
        orders,
    )
    line_id = _reserve_ids(cursor, "orders_write_orderline", len(lines))
    _copy(
        cursor,
        "orders_write_orderline",
        "id, order_id, sku, quantity, unit_price",
        (
            f"{line_id + index}\t{order}\t{_text(sku)}\t{quantity}\t{prices[sku]}\n"
            for index, (order, sku, quantity) in enumerate(lines)
        ),
    )
    allocations = []
    for index in allocated_lines:
        _, sku, quantity = lines[index]
        batch_id = stock.allocate(sku, quantity)
        if batch_id is not None:
            allocations.append(f"{line_id + index}\t{batch_id}\t{now.isoformat()}\n")
    _copy(cursor, "orders_write_allocation", "line_id, batch_id, allocated_at", allocations)


def rebuild_read_models() -> list[refresh.RefreshOutcome]:
    # An operator's bulk load: no time limit, unlike a refresh in a request.
    return refresh.refresh(refresh.UNITS, full=True, timeout=0)


def reset_demo_user() -> tuple[str, str]:
    """Create the demo staff user, or give it a fresh password; returns the login."""
    password = secrets.token_urlsafe(12)
    user, _ = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
    user.is_staff = True
    user.is_superuser = True
    user.set_password(password)
    user.save()
    user.groups.set(Group.objects.filter(name__in=["clerks", "viewers"]))
    return DEMO_USERNAME, password
