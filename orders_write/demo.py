"""Demo data: a catalogue, stock in the warehouse and on ships, and N orders.

The catalogue goes through the write side's services. Orders, and the events their
story implies, are bulk-loaded with COPY in one transaction (a thread writes the next
chunk while PostgreSQL loads one), allocated in memory by the domain's own
``choose_batch``, and ``events.bulk_loaded``
sent afterwards, on which the read side rebuilds its models: one service call per
order would take hours. Seeding again adds only the
orders that are missing. A big load drops the tables' indexes and foreign keys
and builds them again at the end.
"""

from __future__ import annotations

import datetime
import io
import json
import random
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from orders_write import commands, domain, events, services
from orders_write.models import Batch, Product

DEMO_USERNAME = "demo"
ORDER_PREFIX = "DEMO-"
CHUNK = 25_000  # orders per COPY round (and per tick of the progress bar)
LINES_PER_ORDER = (1, 2, 2, 3, 3, 4)  # drawn uniformly: 2.5 lines per order on average
LOADED_TABLES = (
    "orders_write_order",
    "orders_write_orderline",
    "orders_write_allocation",
    "orders_write_event",
)
NULL = "\\N"  # in COPY's text format
# A load of at least this many orders (and at least as many as the tables hold) drops
# the loaded tables' indexes and foreign keys and builds them again afterwards.
BULK_LOAD_MINIMUM = 50_000
# Per connection while loading and rebuilding: sorts for index builds (up to 2.5
# million keys at a million orders) and hash joins stay in memory.
BULK_LOAD_MAINTENANCE_MEMORY = "512MB"
BULK_LOAD_WORK_MEMORY = "256MB"

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
    """Each SKU's batches with what is still available, as the policy sees them."""

    batches: dict[str, dict[str, domain.BatchStock]]  # sku -> reference -> stock
    batch_ids: dict[str, int]  # reference -> id

    @classmethod
    def load(cls) -> _Stock:
        # As the services see it: the allocated quantity each batch keeps, not a sum
        # over every allocation.
        batches = Batch.objects.values_list(
            "id", "reference", "product_id", "purchased_quantity", "allocated_quantity", "eta"
        )
        stock: dict[str, dict[str, domain.BatchStock]] = {}
        batch_ids = {}
        for batch_id, ref, sku, purchased, allocated, eta in batches:
            stock.setdefault(sku, {})[ref] = domain.BatchStock(ref, purchased, allocated, eta)
            batch_ids[ref] = batch_id
        return cls(stock, batch_ids)

    def allocate(self, sku: str, quantity: int) -> int | None:
        """The id of the batch the policy gives ``quantity`` of ``sku`` to, or None."""
        batches = self.batches.get(sku)
        if not batches:
            return None
        chosen = domain.choose_batch(batches.values(), quantity)
        if chosen is None:
            return None
        chosen = chosen.with_allocated(quantity)
        if chosen.available_quantity:
            batches[chosen.reference] = chosen
        else:
            del batches[chosen.reference]  # full: the policy can never choose it again
        return self.batch_ids[chosen.reference]


def _reserve_ids(cursor, table: str, count: int) -> int:
    """Take ``count`` consecutive ids of ``table``'s sequence; returns the first."""
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
        f" nextval(pg_get_serial_sequence('{table}', 'id')) + %s - 1)",
        [count],
    )
    return cursor.fetchone()[0] - count + 1


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


@dataclass(frozen=True)
class _Chunk:
    """One round of COPY: each table's rows in COPY's text format, already encoded."""

    orders: bytes
    lines: bytes
    allocations: bytes
    events: bytes
    order_count: int
    line_count: int
    allocation_count: int
    event_count: int


class _OrderWriter:
    """Writes demo orders as COPY text, allocating their lines by the domain's policy,
    with the events their story implies (placed; submitted, and each line allocated or
    out of stock; or cancelled), as the services would have recorded them.

    It runs in a thread beside the loading connection (PostgreSQL ingests one chunk
    while Python writes the next), so it never touches the database. Everything
    repeated per row is formatted once here: per-row Python is what limits the rate.
    """

    def __init__(self, count: int, prices: dict[str, Decimal], stock: _Stock, now) -> None:
        self.count = count
        self.stock = stock
        self.now = now
        # Spread over the last year, newest last, as if placed one after another.
        self.spacing = datetime.timedelta(seconds=31_536_000 / max(count, 1))
        self.customers = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
        self.addresses = [
            f"{number} {street}\\n{city}"
            for number in range(1, 251)
            for street in STREETS
            for city in CITIES
        ]
        self.skus = sorted(prices)
        # Values inside the events' JSON, escaped once for JSON and for COPY.
        self.json_customers = [_text(json.dumps(customer)) for customer in self.customers]
        self.json_skus = [_text(json.dumps(sku)) for sku in self.skus]
        self.json_batches = {
            batch_id: _text(json.dumps(ref)) for ref, batch_id in stock.batch_ids.items()
        }
        # An order cancelled is cancelled a while after it was placed, never after now.
        self.cancelled_after = min(datetime.timedelta(hours=2), self.spacing * 10)
        # A line's row after its ids, by SKU and quantity (1 to 5).
        self.line_ends = [
            [f"\t{_text(sku)}\t{quantity}\t{prices[sku]}\n" for quantity in range(6)]
            for sku in self.skus
        ]

    def line_counts(self, numbers: range) -> list[int]:
        """How many lines each order has: known before writing, to reserve line ids."""
        rng = random.Random(f"lines {numbers.start}")
        counts = rng.choices(LINES_PER_ORDER, k=len(numbers))
        return [min(count, len(self.skus)) for count in counts]

    def chunk(self, numbers: range, line_counts: list[int], order_id: int, line_id: int) -> _Chunk:
        random_fraction = random.Random(numbers.start).random
        customers, customer_count = self.customers, len(self.customers)
        addresses, address_count = self.addresses, len(self.addresses)
        line_ends, skus, sku_count = self.line_ends, self.skus, len(self.skus)
        allocate = self.stock.allocate
        json_customers, json_skus, json_batches = (
            self.json_customers,
            self.json_skus,
            self.json_batches,
        )
        actor, cancelled_after, now = f"\t{services.SYSTEM}\t", self.cancelled_after, self.now
        created_at = self.now - self.spacing * (self.count - numbers.start)
        spacing = self.spacing
        orders: list[str] = []
        lines: list[str] = []
        allocations: list[str] = []
        order_events: list[str] = []
        for number, line_count in zip(numbers, line_counts, strict=True):
            fate = random_fraction()
            submitted = fate < 0.8
            status = (
                domain.SUBMITTED
                if submitted
                else (domain.PENDING if fate < 0.9 else domain.CANCELLED)
            )
            order_key = f"\t{order_id}"
            reference = f"{ORDER_PREFIX}{number:07d}"
            customer = int(random_fraction() * customer_count)
            created = created_at.isoformat()
            orders.append(
                f"{order_id}\t{reference}"
                f"\t{customers[customer]}"
                f"\t{addresses[int(random_fraction() * address_count)]}"
                f"\t{status}\t{created}"
                f"\t{created if submitted else NULL}\n"
            )
            # Each event: name, payload, recorded_at, actor, order_reference.
            about_order, in_order = f'{{"reference": "{reference}"}}\t{created}', f"{reference}\n"
            about_line = f'"orderid": "{reference}", "sku": '
            after_line = f"\t{created}{actor}{in_order}"
            # Submitted when placed, and allocated then: the dashboard's days look real.
            allocated_at = f"\t{created}\n"
            chosen: list[int] = []  # distinct SKUs, like random.sample
            while len(chosen) < line_count:
                index = int(random_fraction() * sku_count)
                if index not in chosen:
                    chosen.append(index)
            order_events.append(
                f'OrderPlaced\t{{"reference": "{reference}", "customer": '
                f"{json_customers[customer]}, "
                f'"skus": [{", ".join(json_skus[index] for index in chosen)}], '
                f'"status": "{domain.PENDING}"}}'
                f"\t{created}{actor}{in_order}"
            )
            if submitted:
                order_events.append(f"OrderSubmitted\t{about_order}{actor}{in_order}")
            for index in chosen:
                quantity = int(random_fraction() * 5) + 1
                lines.append(f"{line_id}{order_key}{line_ends[index][quantity]}")
                if submitted:
                    batch_id = allocate(skus[index], quantity)
                    if batch_id is not None:
                        allocations.append(f"{line_id}\t{batch_id}{allocated_at}")
                        order_events.append(
                            f"Allocated\t{{{about_line}{json_skus[index]}, "
                            f'"qty": {quantity}, "batchref": {json_batches[batch_id]}}}'
                            f"{after_line}"
                        )
                    else:
                        order_events.append(
                            f"OutOfStock\t{{{about_line}{json_skus[index]}, "
                            f'"qty": {quantity}}}{after_line}'
                        )
                line_id += 1
            if status == domain.CANCELLED:
                cancelled = min(created_at + cancelled_after, now).isoformat()
                order_events.append(
                    f'OrderCancelled\t{{"reference": "{reference}"}}\t{cancelled}{actor}{in_order}'
                )
            order_id += 1
            created_at += spacing
        return _Chunk(
            "".join(orders).encode(),
            "".join(lines).encode(),
            "".join(allocations).encode(),
            "".join(order_events).encode(),
            len(orders),
            len(lines),
            len(allocations),
            len(order_events),
        )


def _copy(cursor, table: str, columns: str, rows: bytes) -> None:
    # The whole chunk in one read: psycopg2 holds the GIL while it reads from the file
    # and releases it while PostgreSQL works, which is when the writer thread runs.
    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", io.BytesIO(rows), len(rows) + 1)


def _load(cursor, chunk: _Chunk) -> None:
    _copy(
        cursor,
        "orders_write_order",
        "id, reference, customer_name, shipping_address, status, created_at, submitted_at",
        chunk.orders,
    )
    _copy(cursor, "orders_write_orderline", "id, order_id, sku, quantity, unit_price", chunk.lines)
    _copy(cursor, "orders_write_allocation", "line_id, batch_id, allocated_at", chunk.allocations)
    _copy(
        cursor,
        "orders_write_event",
        "name, payload, recorded_at, actor, order_reference",
        chunk.events,
    )


def _begin_bulk_load(cursor) -> None:
    """Settings for the loading transaction only (SET LOCAL ends with it)."""
    # The read side's triggers on the write tables record the keys each statement
    # touched so that refreshes can be incremental; a bulk load is followed by a full
    # rebuild anyway, and recording millions of keys would only slow it down. The
    # triggers skip their work while this is on.
    cursor.execute("SET LOCAL quartermaster.bulk_load = 'on'")
    # Losing the last moments of a demo load in a crash is harmless (run it again).
    cursor.execute("SET LOCAL synchronous_commit = off")
    # Room to sort each index build and each foreign-key check in memory.
    cursor.execute(f"SET LOCAL maintenance_work_mem = '{BULK_LOAD_MAINTENANCE_MEMORY}'")
    cursor.execute(f"SET LOCAL work_mem = '{BULK_LOAD_WORK_MEMORY}'")


def _drop_keys_and_indexes(cursor, tables: Sequence[str]) -> list[str]:
    """Drop the tables' foreign keys (both ways), keys and indexes; returns the SQL
    that makes each again, in an order that works (keys before the foreign keys on them).

    A key that another object depends on (a view that groups by it) stays.

    The definitions come from the catalogue (pg_get_constraintdef, pg_get_indexdef),
    so what is rebuilt is exactly what the migrations made, under the same names.
    """
    cursor.execute(
        """
        SELECT format('ALTER TABLE %%s DROP CONSTRAINT %%I', conrelid::regclass, conname),
               format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s',
                      conrelid::regclass, conname, pg_get_constraintdef(oid))
        FROM pg_constraint
        WHERE contype = 'f'
          AND (conrelid = ANY(%s::regclass[]) OR confrelid = ANY(%s::regclass[]))
        ORDER BY conrelid::regclass::text, conname
        """,
        [list(tables), list(tables)],
    )
    foreign_keys = cursor.fetchall()
    cursor.execute(
        """
        SELECT format('ALTER TABLE %%s DROP CONSTRAINT %%I', conrelid::regclass, conname),
               format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s',
                      conrelid::regclass, conname, pg_get_constraintdef(oid))
        FROM pg_constraint
        WHERE contype IN ('p', 'u') AND conrelid = ANY(%s::regclass[])
          -- Kept when something depends on it: order_summary's GROUP BY o.id needs
          -- the primary key of orders. A kept key costs little: ids only ascend.
          AND NOT EXISTS (
              SELECT FROM pg_depend
              WHERE refclassid = 'pg_constraint'::regclass AND refobjid = pg_constraint.oid
                AND deptype = 'n')  -- not 'i': the key's own index
        ORDER BY conrelid::regclass::text, contype, conname
        """,
        [list(tables)],
    )
    keys = cursor.fetchall()
    cursor.execute(
        """
        SELECT format('DROP INDEX %%s', index.indexrelid::regclass),
               pg_get_indexdef(index.indexrelid)
        FROM pg_index index
        WHERE index.indrelid = ANY(%s::regclass[])
          AND NOT EXISTS (
              SELECT FROM pg_constraint
              WHERE conindid = index.indexrelid AND conrelid = index.indrelid)
        ORDER BY index.indexrelid::regclass::text
        """,
        [list(tables)],
    )
    indexes = cursor.fetchall()
    for drop, _ in foreign_keys + keys + indexes:
        cursor.execute(drop)
    return [create for _, create in keys + indexes + foreign_keys]


def _worth_rebuilding(cursor, new_orders: int) -> bool:
    """Rebuilding pays when the load is big and at least doubles the tables."""
    if new_orders < BULK_LOAD_MINIMUM:
        return False
    cursor.execute("SELECT count(*) FROM orders_write_order")
    return new_orders >= cursor.fetchone()[0]


@dataclass(frozen=True)
class OrderLoad:
    """What seed_orders did, and how long each part took (for the operator)."""

    created: int = 0
    lines: int = 0
    allocations: int = 0
    rebuilt_indexes: bool = False
    loading_seconds: float = 0.0
    indexing_seconds: float = 0.0
    events: int = 0


def seed_orders(
    count: int,
    *,
    progress: Callable[[int], object] = lambda done: None,
    stage: Callable[[str], object] = lambda name: None,
    rebuild_indexes: bool | None = None,
) -> OrderLoad:
    """Load demo orders DEMO-0000001 … up to ``count``, in one transaction.

    With ``rebuild_indexes`` (by default: for a big load that at least doubles the
    tables) the loaded tables' indexes and foreign keys are dropped first and built
    again at the end: one sorted build and one join per foreign key instead of an
    index insertion per row per index and a deferred check per row per key. It is
    all one transaction, so a failure leaves the schema as it was; meanwhile the
    tables are locked (ACCESS EXCLUSIVE), as befits a bulk load. ``progress`` hears
    of each chunk loaded, ``stage`` of the work after the last one.
    """
    start = existing_orders() + 1
    if start > count:
        return OrderLoad()
    numbers = range(start, count + 1)
    chunks = [numbers[first : first + CHUNK] for first in range(0, len(numbers), CHUNK)]
    prices = dict(Product.objects.values_list("sku", "price"))
    writer = _OrderWriter(count, prices, _Stock.load(), timezone.now())
    line_counts = [writer.line_counts(chunk) for chunk in chunks]
    loaded_rows: list[tuple[int, int, int]] = []  # per chunk loaded
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        _begin_bulk_load(cursor)
        if rebuild_indexes is None:
            rebuild_indexes = _worth_rebuilding(cursor, len(numbers))
        rebuild = _drop_keys_and_indexes(cursor, LOADED_TABLES) if rebuild_indexes else []
        order_id = _reserve_ids(cursor, "orders_write_order", len(numbers))
        line_id = _reserve_ids(cursor, "orders_write_orderline", sum(map(sum, line_counts)))
        # One thread writes (in chunk order: allocation is sequential) while this one
        # loads; at most two chunks wait, to bound memory.
        writing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-writer")
        waiting: deque[Future[_Chunk]] = deque()
        try:
            for chunk, counts in zip(chunks, line_counts, strict=True):
                waiting.append(writing.submit(writer.chunk, chunk, counts, order_id, line_id))
                order_id += len(chunk)
                line_id += sum(counts)
                if len(waiting) > 2:
                    loaded_rows.append(_load_next(cursor, waiting, progress))
            while waiting:
                loaded_rows.append(_load_next(cursor, waiting, progress))
        finally:
            writing.shutdown(cancel_futures=True)
        loaded = time.monotonic()
        if rebuild:
            stage("rebuilding indexes and foreign keys")
        for statement in rebuild:
            cursor.execute(statement)
        # The services keep each batch's allocated quantity; COPY went around them.
        stage("counting what each batch holds")
        cursor.execute(
            "UPDATE orders_write_batch batch SET allocated_quantity = held.quantity"
            " FROM (SELECT allocation.batch_id, sum(line.quantity) AS quantity"
            " FROM orders_write_allocation allocation"
            " JOIN orders_write_orderline line ON line.id = allocation.line_id"
            " GROUP BY allocation.batch_id) held"
            " WHERE held.batch_id = batch.id AND batch.allocated_quantity <> held.quantity"
        )
        # Fresh statistics, or the read models' rebuild plans for empty tables.
        stage("analysing")
        cursor.execute(f"ANALYZE {', '.join(LOADED_TABLES)}, orders_write_batch")
    lines, allocations, events_loaded = (sum(column) for column in zip(*loaded_rows, strict=True))
    return OrderLoad(
        len(numbers),
        lines,
        allocations,
        bool(rebuild),
        loaded - started,
        time.monotonic() - loaded,
        events_loaded,
    )


def _load_next(cursor, waiting: deque, progress) -> tuple[int, int, int]:
    """Load the next chunk written; how many lines, allocations and events it held."""
    chunk = waiting.popleft().result()
    _load(cursor, chunk)
    progress(chunk.order_count)
    return chunk.line_count, chunk.allocation_count, chunk.event_count


def announce(load: OrderLoad) -> list[object]:
    """Send ``events.bulk_loaded`` for orders loaded around the services (on which the
    read side rebuilds its models); returns what each receiver reported, in order."""
    return [
        item
        for _, reported in events.bulk_loaded.send(sender=OrderLoad, load=load)
        for item in reported or ()
    ]


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
