"""The read models, each defined once: its query, its key, the dirty keys it follows,
its columns and indexes, and the events whose writes it shows.

Each read model is three PostgreSQL objects, all generated here from its definition and
created by migrations (``RunSQL(model.create_sql(), model.drop_sql())``):

* ``<name>_base``: the query over every key, materialized; rebuilt now and then.
* ``<name>_delta``: a table of the same query's rows for the keys written since the
  base's snapshot (``read_pending_orders`` / ``read_pending_skus``, migration 0010), one
  row with no data for a key that has no rows left. A refresh rewrites the rows of the
  keys written since the refresh before, so that its work grows with the writes, not
  with the delta; a compaction rewrites it whole after rebuilding the base.
* ``<name>``: a plain view, the delta's rows for its keys and the base's for every other
  key. The unmanaged models in ``models.py`` read it.

A read model with a ``counted_by`` column has its rows per value of it kept as it is
rebuilt and refreshed (``value_counts``, migration 0023), so that a list counts them
without scanning.

Nothing outside the read side knows that a read model has a base or a delta.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class DirtyKeys:
    """A table of the keys each transaction wrote, filled by triggers (migration 0010),
    and the function that lists the keys a read model's base does not cover yet."""

    table: str
    column: str
    pending: str
    sql_type: str


ORDERS = DirtyKeys("read_dirty_order", "order_id", "read_pending_orders", "bigint")
SKUS = DirtyKeys("read_dirty_sku", "sku", "read_pending_skus", "varchar")


# The trigrams (every 3 characters in a row) of a text, for a GIN index that finds the
# rows containing a text without pg_trgm (a contrib module some servers lack, the
# private one among them): a text contains another only if it has all its trigrams, so
# ``read_trigrams(upper(column)) @> read_trigrams(upper(value))`` narrows ``column``
# ILIKE ``%value%`` to candidates on the index, which the ILIKE then checks. Upper case
# as Django's icontains compares (UPPER(column) LIKE UPPER(pattern)). A text shorter
# than 3 characters has none: no narrowing. GIN ignores repeated trigrams. PL/pgSQL's
# loop computes a million names' trigrams in 4.5 s where SQL's
# ARRAY(SELECT substr(...) FROM generate_series(...)) takes 7.3 s (an index build
# computes them all).
TRIGRAMS_FUNCTION = """CREATE OR REPLACE FUNCTION read_trigrams(value text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    trigrams text[] := '{}';
BEGIN
    FOR position IN 1 .. length(value) - 2 LOOP
        trigrams := trigrams || substr(value, position, 3);
    END LOOP;
    RETURN trigrams;
END $$;
"""


@dataclass(frozen=True)
class Index:
    """An index of the base, named ``<name>_base_<suffix>``, and of the delta
    (``<name>_delta_<suffix>``, never unique there: a key with no rows has a row of NULLs).

    ``using`` names its access method (B-tree when empty); ``needs`` is SQL, run before
    it, that creates (``CREATE OR REPLACE``) a function its expression calls."""

    suffix: str
    columns: str
    unique: bool = False
    using: str = ""
    needs: str = ""


@dataclass(frozen=True)
class Statistics:
    """Statistics PostgreSQL keeps of an expression over the base's rows
    (``CREATE STATISTICS <name>_base_<suffix>``), from which it estimates how many rows
    a filter on that expression keeps; without, it guesses, and may read a million rows
    where walking an index would have found a page."""

    suffix: str
    expression: str


@dataclass(frozen=True)
class ReadModel:
    name: str
    # The query of every row, without WHERE; ``group_by`` follows the delta's key filter.
    select: str
    group_by: str
    columns: tuple[str, ...]
    follows: DirtyKeys
    # The column holding the followed key, and the query's expression for it.
    key: str
    key_expression: str
    # A column that is NULL only on the delta's rows that stand for a key with no rows.
    row_id: str
    indexes: tuple[Index, ...]
    # Events (by name) whose writes this read model shows; finds the ones behind the log.
    events: frozenset[str]
    # A column (never NULL) whose rows are counted per value as the read model is
    # refreshed (``value_counts``), so that a list answers how many match without
    # counting them; empty for none.
    counted_by: str = ""
    statistics: tuple[Statistics, ...] = ()

    @property
    def base(self) -> str:
        return f"{self.name}_base"

    @property
    def delta(self) -> str:
        return f"{self.name}_delta"

    def query(self, where: str = "") -> str:
        """The defining query, for every key or, with ``where``, for some."""
        return "\n".join(part for part in (self.select, where, self.group_by) if part)

    def _indexes_sql(
        self, relation: str, indexes: Iterable[Index], if_not_exists: bool = False
    ) -> str:
        indexes = list(indexes)
        needs = dict.fromkeys(index.needs for index in indexes if index.needs)
        return "".join(needs) + "".join(
            f"CREATE {'UNIQUE ' if index.unique else ''}INDEX"
            f"{' IF NOT EXISTS' if if_not_exists else ''} {relation}_{index.suffix}"
            f" ON {relation}{f' USING {index.using}' if index.using else ''} ({index.columns});\n"
            for index in indexes
        )

    def add_indexes_sql(self, suffixes: Iterable[str]) -> str:
        """Creates the indexes and statistics with these suffixes (on the base and the
        delta; statistics on the base), those missing: a read model created from this
        definition has them already. For a migration that adds them to a read model that
        exists; it analyses the base, for the planner to know the new expressions."""
        suffixes = set(suffixes)
        indexes = [index for index in self.indexes if index.suffix in suffixes]
        statistics = [each for each in self.statistics if each.suffix in suffixes]
        delta_indexes = [replace(index, unique=False) for index in indexes]
        return (
            # Building an index sorts every row of the base: in memory, not in files.
            "SET LOCAL maintenance_work_mem = '512MB';\n"
            + self._indexes_sql(self.base, indexes, if_not_exists=True)
            + self._indexes_sql(self.delta, delta_indexes, if_not_exists=True)
            + self._statistics_sql(statistics, if_not_exists=True)
            + f"ANALYZE {self.base};\n"
        )

    def drop_indexes_sql(self, suffixes: Iterable[str]) -> str:
        """Drops the indexes and statistics with these suffixes."""
        suffixes = set(suffixes)
        return "".join(
            f"DROP INDEX IF EXISTS {relation}_{index.suffix};\n"
            for index in self.indexes
            if index.suffix in suffixes
            for relation in (self.base, self.delta)
        ) + "".join(
            f"DROP STATISTICS IF EXISTS {self.base}_{each.suffix};\n"
            for each in self.statistics
            if each.suffix in suffixes
        )

    def base_sql(self) -> str:
        return (
            f"CREATE MATERIALIZED VIEW {self.base} AS\n{self.query()};\n"
            + self._indexes_sql(self.base, self.indexes)
            + self._statistics_sql(self.statistics)
        )

    def _statistics_sql(self, statistics: Iterable[Statistics], if_not_exists: bool = False) -> str:
        return "".join(
            f"CREATE STATISTICS{' IF NOT EXISTS' if if_not_exists else ''}"
            f" {self.base}_{each.suffix} ON ({each.expression}) FROM {self.base};\n"
            for each in statistics
        )

    def delta_rows(self, keys: str) -> str:
        """The delta's rows for the keys the SQL ``keys`` lists (a set-returning
        expression or a subquery of one column): each key's rows under the defining
        query, or one row of NULLs for a key that has none left."""
        where = f"WHERE {self.key_expression} = pending.delta_key"
        return (
            f"SELECT pending.delta_key, piece.*\n"
            f"FROM {keys} pending(delta_key)\n"
            f"LEFT JOIN LATERAL (\n{self.query(where)}\n) piece ON true"
        )

    def pending_keys(self) -> str:
        """SQL of the keys written since the base's snapshot (the whole delta's keys)."""
        return f"{self.follows.pending}('{self.name}')"

    def delta_sql(self) -> str:
        # A table, kept up to date key by key (refresh.py): a refresh rewrites only the
        # rows of the keys written since the one before, whatever the delta's size.
        keys = self.follows
        indexes = [replace(index, unique=False) for index in self.indexes]
        return (
            f"CREATE TABLE {self.delta} AS\n{self.delta_rows(self.pending_keys())};\n"
            f"CREATE UNIQUE INDEX {self.delta}_key ON {self.delta} (delta_key, {self.row_id});\n"
            f"ALTER TABLE {self.delta} ALTER COLUMN delta_key TYPE {keys.sql_type};\n"
            + self._indexes_sql(self.delta, indexes)
        )

    def view_sql(self) -> str:
        # Each branch of the UNION ALL stays a single relation with a filter: the planner
        # then pushes filters into both, reads them in index order (Merge Append) for a
        # first page, and hashes the delta's keys once per query.
        columns = ", ".join(self.columns)
        return (
            f"CREATE VIEW {self.name} AS\n"
            f"SELECT {', '.join(f'piece.{column}' for column in self.columns)}\n"
            f"FROM (\n"
            f"    SELECT true AS from_delta, {columns} FROM {self.delta}\n"
            f"    UNION ALL\n"
            f"    SELECT false, {columns} FROM {self.base}\n"
            f") piece\n"
            f"WHERE CASE WHEN piece.from_delta THEN piece.{self.row_id} IS NOT NULL\n"
            f"           ELSE NOT EXISTS (SELECT 1 FROM {self.delta} delta\n"
            f"                            WHERE delta.delta_key = piece.{self.key})\n"
            f"      END;\n"
        )

    def create_sql(self) -> str:
        """Base, delta and plain view, with the base's state saying it includes every
        write committed before this transaction (it was built in it), and the read
        model's state that its delta does too (its counts are taken afresh)."""
        return (
            "INSERT INTO read_model_base_state (unit, snapshot, rebuilt_at, rebuild_count)\n"
            f"VALUES ('{self.name}', pg_current_snapshot()::text, now(), 0)\n"
            "ON CONFLICT (unit) DO UPDATE SET snapshot = excluded.snapshot,"
            " rebuilt_at = excluded.rebuilt_at;\n"
            "INSERT INTO read_model_state"
            " (unit, dirty, refresh_count, snapshot, last_error, last_refreshed_at)\n"
            f"VALUES ('{self.name}', false, 0, pg_current_snapshot()::text, '', now())\n"
            "ON CONFLICT (unit) DO UPDATE SET snapshot = excluded.snapshot,"
            " last_refreshed_at = now(), row_count = NULL, delta_row_count = NULL;\n"
            + self.base_sql()
            + f"UPDATE read_model_base_state SET row_count = (SELECT count(*) FROM {self.base})"
            f" WHERE unit = '{self.name}';\n" + self.delta_sql() + self.view_sql()
        )

    def value_counts(self, relation: str, where: str = "") -> str:
        """SQL of ``relation``'s rows (optionally ``where``) per value of ``counted_by``,
        as one jsonb object ``{value: rows}`` (``{}`` for none)."""
        return (
            f"SELECT coalesce(jsonb_object_agg(counted.value, counted.row_count), '{{}}')"
            f" FROM (SELECT {self.counted_by}::text AS value, count(*) AS row_count"
            f" FROM {relation} {where} GROUP BY 1) counted"
        )

    def drop_sql(self) -> str:
        """Drops the read model's objects, whatever kind each is (the delta was a
        materialized view before it was a table)."""
        names = ", ".join(f"'{name}'" for name in (self.name, self.delta, self.base))
        return (
            "DO $$ DECLARE found record; BEGIN\n"
            "  FOR found IN SELECT relname, relkind FROM pg_class\n"
            f"      WHERE relname IN ({names}) AND relnamespace = current_schema()::regnamespace\n"
            "      ORDER BY array_position('{v,r,m}'::\"char\"[], relkind) LOOP\n"
            "    EXECUTE format('DROP %s %I', CASE found.relkind WHEN 'v' THEN 'VIEW'\n"
            "      WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, found.relname);\n"
            "  END LOOP;\n"
            "END $$;\n"
        )


_ORDER_EVENTS = {"OrderPlaced", "OrderSubmitted", "OrderCancelled"}
_ALLOCATION_EVENTS = {"Allocated", "Deallocated"}
_BATCH_EVENTS = {"BatchCreated", "BatchQuantityChanged"}
_LINE_EVENTS = {"LineAdded", "LineQuantityChanged", "LineRemoved"}

ALLOCATIONS_VIEW = ReadModel(
    name="allocations_view",
    select="""SELECT line.id AS line_id,
       line.order_id,
       o.reference AS orderid,
       line.sku,
       line.quantity AS qty,
       batch.reference AS batchref
FROM orders_write_allocation allocation
JOIN orders_write_orderline line ON line.id = allocation.line_id
JOIN orders_write_order o ON o.id = line.order_id
JOIN orders_write_batch batch ON batch.id = allocation.batch_id""",
    group_by="",
    columns=("line_id", "order_id", "orderid", "sku", "qty", "batchref"),
    follows=ORDERS,
    key="order_id",
    key_expression="line.order_id",
    row_id="line_id",
    indexes=(
        Index("line_id", "line_id", unique=True),
        Index("order_id", "order_id"),
        Index("orderid", "orderid, sku, batchref"),
        Index("batchref", "batchref"),
    ),
    events=frozenset(_ALLOCATION_EVENTS | _LINE_EVENTS),
)

ORDER_SUMMARY = ReadModel(
    name="order_summary",
    select="""SELECT o.id,
       o.reference,
       o.customer_name,
       o.shipping_address,
       o.status,
       count(line.id)::integer AS line_count,
       coalesce(sum(line.quantity), 0)::bigint AS total_quantity,
       coalesce(sum(line.quantity * line.unit_price), 0)::numeric(25, 2) AS total_amount,
       count(allocation.id)::integer AS allocated_line_count,
       o.created_at
FROM orders_write_order o
LEFT JOIN orders_write_orderline line ON line.order_id = o.id
LEFT JOIN orders_write_allocation allocation ON allocation.line_id = line.id""",
    group_by="GROUP BY o.id",
    columns=(
        "id",
        "reference",
        "customer_name",
        "shipping_address",
        "status",
        "line_count",
        "total_quantity",
        "total_amount",
        "allocated_line_count",
        "created_at",
    ),
    follows=ORDERS,
    key="id",
    key_expression="o.id",
    row_id="id",
    indexes=(
        Index("id", "id", unique=True),
        Index("reference", "reference", unique=True),
        Index("created_at", "created_at DESC, id DESC"),
        Index("status", "status, created_at DESC, id DESC"),
        Index("customer", "customer_name"),
        # The list's customer and search filters (icontains): see TRIGRAMS_FUNCTION.
        Index(
            "customer_trigrams",
            "read_trigrams(upper(customer_name))",
            using="gin",
            needs=TRIGRAMS_FUNCTION,
        ),
        Index(
            "reference_trigrams",
            "read_trigrams(upper(reference))",
            using="gin",
            needs=TRIGRAMS_FUNCTION,
        ),
    ),
    events=frozenset(_ORDER_EVENTS | _ALLOCATION_EVENTS | _LINE_EVENTS | {"OutOfStock"}),
    counted_by="status",
    # What the customer and search filters compare (icontains: upper(column) LIKE ...),
    # so that PostgreSQL knows how many orders a name matches, and walks the list's
    # index for a first page of a common name instead of reading every order.
    statistics=(
        Statistics("customer_upper", "upper(customer_name)"),
        Statistics("reference_upper", "upper(reference)"),
    ),
)

ORDER_LINES_VIEW = ReadModel(
    name="order_lines_view",
    select="""SELECT line.id AS line_id,
       line.order_id,
       o.reference AS orderid,
       line.sku,
       product.name AS product_name,
       line.quantity AS qty,
       line.unit_price,
       (line.quantity * line.unit_price)::numeric(22, 2) AS amount,
       batch.reference AS batchref,
       batch.eta AS batch_eta
FROM orders_write_orderline line
JOIN orders_write_order o ON o.id = line.order_id
JOIN orders_write_product product ON product.sku = line.sku
LEFT JOIN orders_write_allocation allocation ON allocation.line_id = line.id
LEFT JOIN orders_write_batch batch ON batch.id = allocation.batch_id""",
    group_by="",
    columns=(
        "line_id",
        "order_id",
        "orderid",
        "sku",
        "product_name",
        "qty",
        "unit_price",
        "amount",
        "batchref",
        "batch_eta",
    ),
    follows=ORDERS,
    key="order_id",
    key_expression="line.order_id",
    row_id="line_id",
    indexes=(
        Index("line_id", "line_id", unique=True),
        Index("order_id", "order_id"),
        Index("orderid", "orderid, sku"),
    ),
    events=frozenset(_ORDER_EVENTS | _ALLOCATION_EVENTS | _LINE_EVENTS | {"OutOfStock"}),
)

# The stock read models take each batch's allocated quantity as the write side keeps it
# (orders_write_batch.allocated_quantity, which the domain's allocation keeps equal to
# the quantities of the lines the batch holds): one lookup per batch, not a sum of
# every allocation of a SKU.
BATCH_AVAILABILITY = ReadModel(
    name="batch_availability",
    select="""SELECT batch.id AS batch_id,
       batch.reference AS batchref,
       batch.sku,
       batch.eta,
       batch.purchased_quantity AS purchased,
       batch.allocated_quantity::bigint AS allocated,
       (batch.purchased_quantity - batch.allocated_quantity)::bigint AS available
FROM orders_write_batch batch""",
    group_by="",
    columns=("batch_id", "batchref", "sku", "eta", "purchased", "allocated", "available"),
    follows=SKUS,
    key="sku",
    key_expression="batch.sku",
    row_id="batch_id",
    indexes=(
        Index("batch_id", "batch_id", unique=True),
        Index("sku", "sku, eta, batchref"),
    ),
    events=frozenset(_BATCH_EVENTS | _ALLOCATION_EVENTS),
)

PRODUCT_AVAILABILITY = ReadModel(
    name="product_availability",
    select="""SELECT product.sku,
       product.name,
       product.price,
       coalesce(sum(batch.purchased_quantity), 0)::bigint AS purchased,
       coalesce(sum(batch.allocated_quantity), 0)::bigint AS allocated,
       coalesce(sum(batch.purchased_quantity - batch.allocated_quantity), 0)::bigint
           AS available,
       coalesce(sum(batch.purchased_quantity - batch.allocated_quantity)
                FILTER (WHERE batch.eta IS NULL), 0)::bigint AS available_now,
       min(batch.eta) FILTER (WHERE batch.eta IS NOT NULL
                              AND batch.purchased_quantity > batch.allocated_quantity)
           AS next_eta,
       count(batch.id)::integer AS batch_count
FROM orders_write_product product
LEFT JOIN orders_write_batch batch ON batch.sku = product.sku""",
    group_by="GROUP BY product.sku",
    columns=(
        "sku",
        "name",
        "price",
        "purchased",
        "allocated",
        "available",
        "available_now",
        "next_eta",
        "batch_count",
    ),
    follows=SKUS,
    key="sku",
    key_expression="product.sku",
    row_id="sku",
    indexes=(
        Index("sku", "sku", unique=True),
        Index("available", "available"),
    ),
    events=frozenset(_BATCH_EVENTS | _ALLOCATION_EVENTS | {"ProductCreated"}),
)

# Dashboard read models. Days are UTC dates of absolute timestamps, never relative to
# today: a row then stays true as days pass without writes, and a page picks the last
# 30 days when it reads.
#
# One row per order line, keyed by order, not one per SKU and day keyed by SKU: a
# refresh then rewrites an order's few lines, where a SKU's days (every line of it ever
# ordered) cost 230-880 ms a write at a million orders. The dashboard sums a month of
# lines instead (~0.2 M rows at a million orders a year), on indexes that hold what it
# sums. A line counts as ordered on the day its order was placed, whatever became of
# the order since (cancelled too), and as allocated on the day it was allocated, while
# it still holds its stock.
LINE_DAYS = ReadModel(
    name="line_days",
    select="""SELECT line.id AS line_id,
       line.order_id,
       line.sku,
       line.quantity AS qty,
       (o.created_at AT TIME ZONE 'UTC')::date AS ordered_on,
       (allocation.allocated_at AT TIME ZONE 'UTC')::date AS allocated_on
FROM orders_write_orderline line
JOIN orders_write_order o ON o.id = line.order_id
LEFT JOIN orders_write_allocation allocation ON allocation.line_id = line.id""",
    group_by="",
    columns=("line_id", "order_id", "sku", "qty", "ordered_on", "allocated_on"),
    follows=ORDERS,
    key="order_id",
    key_expression="line.order_id",
    row_id="line_id",
    indexes=(
        Index("line_id", "line_id", unique=True),
        Index("order_id", "order_id"),
        # Everything a sum over days reads, so that it reads the index alone.
        Index("ordered_on", "ordered_on, sku, qty, allocated_on, order_id"),
        Index("allocated_on", "allocated_on, sku, qty, order_id"),
    ),
    # A placed order's lines, a line Allocate adds (OutOfStock when it finds no stock),
    # and allocations made or released; submitting or cancelling changes no row here but
    # through the allocations it makes or releases.
    events=frozenset(_ALLOCATION_EVENTS | _LINE_EVENTS | {"OrderPlaced", "OutOfStock"}),
)

# Lines waiting for stock: unallocated lines of submitted orders (what back-orders fill
# when stock arrives). Keyed by order: submitting and cancelling write only the order's
# row, which marks the order dirty, not its SKUs.
WAITING_LINES = ReadModel(
    name="waiting_lines",
    select="""SELECT waiting.*
FROM (
    SELECT line.id AS line_id,
           line.order_id,
           o.reference AS orderid,
           line.sku,
           line.quantity AS qty
    FROM orders_write_orderline line
    JOIN orders_write_order o ON o.id = line.order_id
    WHERE o.status = 'submitted'
      AND NOT EXISTS (SELECT 1 FROM orders_write_allocation allocation
                      WHERE allocation.line_id = line.id)
) waiting""",
    group_by="",
    columns=("line_id", "order_id", "orderid", "sku", "qty"),
    follows=ORDERS,
    key="order_id",
    key_expression="waiting.order_id",
    row_id="line_id",
    indexes=(
        Index("line_id", "line_id", unique=True),
        Index("order_id", "order_id"),
        # What the dashboard sums per SKU, so that it reads the index alone, in SKU order.
        Index("sku", "sku, qty, order_id"),
    ),
    events=frozenset(_ORDER_EVENTS | _ALLOCATION_EVENTS | _LINE_EVENTS | {"OutOfStock"}),
)

READ_MODELS: dict[str, ReadModel] = {
    model.name: model
    for model in (
        ALLOCATIONS_VIEW,
        ORDER_SUMMARY,
        ORDER_LINES_VIEW,
        BATCH_AVAILABILITY,
        PRODUCT_AVAILABILITY,
        LINE_DAYS,
        WAITING_LINES,
    )
}


def parse_counts(value: str | dict | None) -> dict[str, int] | None:
    """Counts per value (``ReadModel.value_counts``) as a cursor returns them: Django
    leaves jsonb unparsed on its connections, for its JSONField to parse."""
    return json.loads(value) if isinstance(value, str) else value


class UnknownReadModel(ValueError):
    def __init__(self, name: str) -> None:
        self.message = f"Unknown read model {name!r}. Known: {', '.join(sorted(READ_MODELS))}."
        super().__init__(self.message)


def named(names: Iterable[str]) -> list[str]:
    """The names, checked: UnknownReadModel for one that is no read model."""
    names = list(names)
    for name in names:
        if name not in READ_MODELS:
            raise UnknownReadModel(name)
    return names


def showing(event_names: Iterable[str]) -> list[str]:
    """The read models that show the writes of events with these names."""
    names = set(event_names)
    return [model.name for model in READ_MODELS.values() if model.events & names]
