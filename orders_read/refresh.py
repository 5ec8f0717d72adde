"""Refreshing the read models: base and delta views, coalescing, state, consistency tokens.

Each read model (``allocations_view``, ``order_summary``, ...) is a plain view over two
materialized views: a large *base*, rebuilt now and then, and a small *delta* holding
the rows of the keys (orders or SKUs) written since the base's snapshot; the plain
view takes a key's rows from the delta where it has the key, else from the base.
Triggers on the write tables record each written key with its transaction id
(``read_dirty_order``, ``read_dirty_sku``), so that a refresh after a write rebuilds
only the delta: its work grows with what was written, not with the data. A base
rebuild (``rebuild_base``; the watcher runs one once a delta has grown past
READ_MODEL_DELTA_LIMIT rows) records the snapshot it saw in ``read_model_base_state``
in its own transaction; from then on the delta leaves out exactly the keys that
snapshot covers.

A refresh unit is one read model; "refreshing" it refreshes its delta. Coalescing,
across every process of the deployment, with PostgreSQL alone:

* A write marks its units ``dirty`` in ``read_model_state`` (and NOTIFYs
  ``read_model_dirty``).
* A refresher takes the unit's advisory lock (only one refresh of a unit runs at a
  time), clears ``dirty``, refreshes, and loops while ``dirty`` was set again
  meanwhile: requests that arrive during a refresh collapse into one follow-up. A
  process that cannot take the lock simply leaves: the holder will do its follow-up.
  Base rebuilds take a lock of their own, so deltas stay fresh during one.

Freshness: each refresh runs in a REPEATABLE READ transaction and records the
snapshot (``pg_current_snapshot()``) it ran under. A consistency token names the
writing transaction (``pg_current_xact_id()``); a unit includes that write exactly
when ``pg_visible_in_snapshot(token, snapshot)``: the delta then holds every key
written by transactions its snapshot sees and its base's does not, and the base
every other.
"""

from __future__ import annotations

import datetime
import logging
import select
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from config.prepared import Statement
from orders_write.events import transaction_id_from_token

logger = logging.getLogger(__name__)

DIRTY_CHANNEL = "read_model_dirty"
REFRESHED_CHANNEL = "read_model_refreshed"
# First key of the two-key advisory locks this module takes (the second: the unit).
_LOCK_NAMESPACE = 0x5154  # "QT"


@dataclass(frozen=True)
class Unit:
    """One read model: the plain view ``view`` over ``<view>_base`` and ``<view>_delta``."""

    name: str
    view: str
    # Events (by name) whose writes this unit shows; used to find units behind the log.
    events: frozenset[str]
    # The table of dirty keys the delta follows, and the base's column holding that key.
    dirty_table: str
    key: str
    # A column that is NULL only on the delta's rows that stand for a key with no rows.
    row_id: str

    @property
    def base(self) -> str:
        return f"{self.view}_base"

    @property
    def delta(self) -> str:
        return f"{self.view}_delta"


_ORDER_EVENTS = {"OrderPlaced", "OrderSubmitted", "OrderCancelled"}
_ALLOCATION_EVENTS = {"Allocated", "Deallocated"}
_BATCH_EVENTS = {"BatchCreated", "BatchQuantityChanged"}
_ORDERS = "read_dirty_order"
_SKUS = "read_dirty_sku"

UNITS: dict[str, Unit] = {
    unit.name: unit
    for unit in (
        Unit(
            "allocations_view",
            "allocations_view",
            frozenset(_ALLOCATION_EVENTS),
            _ORDERS,
            key="order_id",
            row_id="line_id",
        ),
        Unit(
            "order_summary",
            "order_summary",
            frozenset(_ORDER_EVENTS | _ALLOCATION_EVENTS | {"OutOfStock"}),
            _ORDERS,
            key="id",
            row_id="id",
        ),
        Unit(
            "order_lines_view",
            "order_lines_view",
            frozenset(_ORDER_EVENTS | _ALLOCATION_EVENTS | {"OutOfStock"}),
            _ORDERS,
            key="order_id",
            row_id="line_id",
        ),
        Unit(
            "batch_availability",
            "batch_availability",
            frozenset(_BATCH_EVENTS | _ALLOCATION_EVENTS),
            _SKUS,
            key="sku",
            row_id="batch_id",
        ),
        Unit(
            "product_availability",
            "product_availability",
            frozenset(_BATCH_EVENTS | _ALLOCATION_EVENTS | {"ProductCreated"}),
            _SKUS,
            key="sku",
            row_id="sku",
        ),
    )
}


def units_for_events(event_names: Iterable[str]) -> list[str]:
    """The units that show the writes of events with these names."""
    names = set(event_names)
    return [unit.name for unit in UNITS.values() if unit.events & names]


def views() -> list[str]:
    """The read models' views, by name."""
    return sorted({unit.view for unit in UNITS.values()})


class UnknownReadModel(ValueError):
    def __init__(self, name: str) -> None:
        self.message = f"Unknown read model {name!r}. Known: {', '.join(views())}."
        super().__init__(self.message)


def units_of_views(names: Iterable[str]) -> list[str]:
    """Every unit that makes up the named views; UnknownReadModel for a name that is none."""
    wanted = set(names)
    for name in sorted(wanted - set(views())):
        raise UnknownReadModel(name)
    return [unit.name for unit in UNITS.values() if unit.view in wanted]


def check_units(names: Iterable[str]) -> list[str]:
    names = list(names)
    for name in names:
        if name not in UNITS:
            raise UnknownReadModel(name)
    return names


# --- consistency tokens ------------------------------------------------------------


class InvalidToken(ValueError):
    """A consistency token this deployment did not issue."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def parse_token(token: str) -> int:
    """The writing transaction of a token that this database issued."""
    try:
        transaction_id = transaction_id_from_token(token)
    except ValueError:
        raise InvalidToken(
            "Malformed consistency token: use the X-Consistency-Token value a command returned."
        ) from None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::text::xid8 < pg_snapshot_xmax(pg_current_snapshot())",
            [str(transaction_id)],
        )
        (issued,) = cursor.fetchone()
    if not issued:
        raise InvalidToken("Unknown consistency token: no such write has happened.")
    return transaction_id


# --- state -------------------------------------------------------------------------


def _ensure_state_rows(cursor, units: Sequence[str]) -> None:
    cursor.execute(
        "INSERT INTO read_model_state (unit, dirty, refresh_count, snapshot, last_error)"
        " SELECT unnest(%s::text[]), false, 0, '', '' ON CONFLICT (unit) DO NOTHING",
        [list(units)],
    )


def mark_dirty(units: Sequence[str]) -> None:
    """Record that ``units`` need a refresh, and tell any watcher (NOTIFY)."""
    if not units:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        _ensure_state_rows(cursor, units)
        cursor.execute(
            "UPDATE read_model_state SET dirty = true, requested_at = now() WHERE unit = ANY(%s)",
            [list(units)],
        )
        cursor.execute("SELECT pg_notify(%s, %s)", [DIRTY_CHANNEL, ",".join(units)])


def _take_dirty(unit: str) -> bool:
    """Clear the unit's dirty flag; True when it was set (a refresh is owed)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE read_model_state SET dirty = false WHERE unit = %s AND dirty RETURNING 1",
            [unit],
        )
        return cursor.fetchone() is not None


def _is_dirty(unit: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT dirty FROM read_model_state WHERE unit = %s", [unit])
        row = cursor.fetchone()
    return bool(row and row[0])


def _try_lock(unit: str, *, wait: bool) -> bool:
    """Take the unit's advisory lock (session level); with ``wait``, queue for it."""
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [_LOCK_NAMESPACE, unit])
            return True
        cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [_LOCK_NAMESPACE, unit])
        (locked,) = cursor.fetchone()
    return locked


def _unlock(unit: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [_LOCK_NAMESPACE, unit])


# --- refreshing --------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshOutcome:
    unit: str
    refreshed: bool
    duration_ms: float | None = None
    row_count: int | None = None
    error: str | None = None
    # Rows the refresh rebuilt (its delta's), or None for a base rebuild.
    rows_refreshed: int | None = None
    base: bool = False

    def __str__(self) -> str:
        what = f"{self.unit} (base)" if self.base else self.unit
        if self.error:
            return f"{what}: refresh failed: {self.error}"
        rebuilt = "" if self.rows_refreshed is None else f" ({self.rows_refreshed} refreshed)"
        return f"{what}: {self.row_count} rows{rebuilt} in {self.duration_ms:.0f} ms"


def _timeouts(cursor, timeout: float | None) -> None:
    # 0: no limit. By default a refresh gives up after READ_MODEL_REFRESH_TIMEOUT.
    timeout_ms = int((settings.READ_MODEL_REFRESH_TIMEOUT if timeout is None else timeout) * 1000)
    cursor.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
    cursor.execute(f"SET LOCAL lock_timeout = {timeout_ms}")


def _refresh_once(unit: str, *, full: bool = False, timeout: float | None = None) -> RefreshOutcome:
    """One refresh of ``unit``'s delta under a REPEATABLE READ snapshot; records state,
    never raises."""
    spec = UNITS[unit]
    quote = connection.ops.quote_name
    delta, base = quote(spec.delta), quote(spec.base)
    started = time.monotonic()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            _timeouts(cursor, timeout)
            # The first query fixes the snapshot that the REFRESH below will see.
            cursor.execute("SELECT pg_current_snapshot()::text, statement_timestamp()")
            snapshot, taken_at = cursor.fetchone()
            concurrently = "" if full else "CONCURRENTLY "
            cursor.execute(f"REFRESH MATERIALIZED VIEW {concurrently}{delta}")
            # The view's rows: the base's, less those of the delta's keys, plus the delta's.
            cursor.execute(
                f"SELECT count(*), count({quote(spec.row_id)}) FROM {delta}",
            )
            delta_row_count, delta_rows_shown = cursor.fetchone()
            # Key by key, so that each count is an index lookup whatever the statistics.
            cursor.execute(
                f"SELECT coalesce(sum((SELECT count(*) FROM {base} base"
                f" WHERE base.{quote(spec.key)} = pending.delta_key)), 0)"
                f" FROM (SELECT DISTINCT delta_key FROM {delta}) pending"
            )
            (base_rows_hidden,) = cursor.fetchone()
            cursor.execute("SELECT row_count FROM read_model_base_state WHERE unit = %s", [unit])
            found = cursor.fetchone()
            if found and found[0] is not None:
                row_count = found[0] - base_rows_hidden + delta_rows_shown
            else:
                cursor.execute(f"SELECT count(*) FROM {quote(spec.view)}")
                (row_count,) = cursor.fetchone()
    except DatabaseError as error:
        return _failed(unit, error, started)
    duration_ms = (time.monotonic() - started) * 1000
    _record_success(unit, snapshot, taken_at, duration_ms, row_count, delta_row_count)
    return RefreshOutcome(unit, True, duration_ms, row_count, rows_refreshed=delta_row_count)


def _failed(
    unit: str, error: DatabaseError, started: float, *, base: bool = False
) -> RefreshOutcome:
    duration_ms = (time.monotonic() - started) * 1000
    message = str(error).strip() or type(error).__name__
    what = f"rebuilding the base of {unit}" if base else f"refreshing {unit}"
    logger.error("%s failed after %.0f ms: %s", what, duration_ms, message)
    _record_failure(unit, f"base rebuild: {message}" if base else message)
    return RefreshOutcome(unit, False, duration_ms, error=message, base=base)


def _record_success(
    unit: str,
    snapshot: str,
    taken_at: datetime.datetime,
    duration_ms: float,
    row_count: int,
    delta_row_count: int,
) -> None:
    # Its own transaction, after the refresh's: the refresh must not hold this row.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE read_model_state SET snapshot = %s, last_refreshed_at = %s,"
            " last_duration_ms = %s, row_count = %s, delta_row_count = %s,"
            " refresh_count = refresh_count + 1, last_error = '' WHERE unit = %s",
            [snapshot, taken_at, duration_ms, row_count, delta_row_count, unit],
        )
        cursor.execute("SELECT pg_notify(%s, %s)", [REFRESHED_CHANNEL, unit])


def _record_failure(unit: str, message: str) -> None:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # Still owed: the next refresh, by whoever comes, repairs the view.
            cursor.execute(
                "UPDATE read_model_state SET dirty = true, last_error = %s, last_error_at = now()"
                " WHERE unit = %s",
                [message, unit],
            )
    except DatabaseError:
        logger.exception("could not record the failed refresh of %s", unit)


def _base_lock(unit: str) -> str:
    return f"{unit}:base"


def rebuild_base(
    unit: str, *, concurrently: bool = True, wait: bool = True, timeout: float | None = 0
) -> RefreshOutcome | None:
    """Rebuild ``unit``'s base view and record the snapshot it saw; None when another
    process is rebuilding it and ``wait`` is false.

    ``concurrently`` keeps readers reading the old base meanwhile (slower); without it
    readers of the view wait for the rebuild. ``timeout`` in seconds, 0 (default) for
    none. Afterwards the unit is marked dirty: its next delta refresh drops the keys
    the new base covers. Never raises.
    """
    if connection.in_atomic_block:
        raise RuntimeError("a rebuild runs in transactions of its own, not inside one")
    spec = UNITS[unit]
    base = connection.ops.quote_name(spec.base)
    if not _try_lock(_base_lock(unit), wait=wait):
        return None
    started = time.monotonic()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            _timeouts(cursor, timeout)
            # Sorting and hashing a million rows in memory, not in temporary files.
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            cursor.execute("SELECT pg_current_snapshot()::text, statement_timestamp()")
            snapshot, taken_at = cursor.fetchone()
            cursor.execute(
                f"REFRESH MATERIALIZED VIEW {'CONCURRENTLY ' if concurrently else ''}{base}"
            )
            cursor.execute(f"SELECT count(*) FROM {base}")
            (row_count,) = cursor.fetchone()
            duration_ms = (time.monotonic() - started) * 1000
            # In the rebuild's transaction: the base's rows and the snapshot that says
            # which writes they include become visible together.
            cursor.execute(
                "INSERT INTO read_model_base_state"
                " (unit, snapshot, rebuilt_at, duration_ms, row_count, rebuild_count)"
                " VALUES (%s, %s, %s, %s, %s, 1) ON CONFLICT (unit) DO UPDATE SET"
                " snapshot = excluded.snapshot, rebuilt_at = excluded.rebuilt_at,"
                " duration_ms = excluded.duration_ms, row_count = excluded.row_count,"
                " rebuild_count = read_model_base_state.rebuild_count + 1",
                [unit, snapshot, taken_at, duration_ms, row_count],
            )
    except DatabaseError as error:
        return _failed(unit, error, started, base=True)
    finally:
        _unlock(_base_lock(unit))
    _forget_covered_keys(spec.dirty_table)
    mark_dirty([unit])
    return RefreshOutcome(unit, True, duration_ms, row_count, base=True)


def _forget_covered_keys(dirty_table: str) -> None:
    """Delete the dirty keys that every base following ``dirty_table`` includes."""
    units = [name for name, unit in UNITS.items() if unit.dirty_table == dirty_table]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT snapshot FROM read_model_base_state"
                " WHERE unit = ANY(%s) AND snapshot <> ''",
                [units],
            )
            snapshots = [snapshot for (snapshot,) in cursor.fetchall()]
            if len(snapshots) < len(units):
                return
            covered = " AND ".join(
                ["pg_visible_in_snapshot(transaction_id, %s::pg_snapshot)"] * len(snapshots)
            )
            cursor.execute(
                f"DELETE FROM {connection.ops.quote_name(dirty_table)} WHERE {covered}", snapshots
            )
    except DatabaseError:
        # Harmless: the keys stay pending for no base, and the next rebuild retries.
        logger.exception("could not forget the dirty keys the bases cover")


def units_to_compact(limit: int | None = None) -> list[str]:
    """Units whose delta has grown to ``limit`` rows (READ_MODEL_DELTA_LIMIT) or more."""
    limit = settings.READ_MODEL_DELTA_LIMIT if limit is None else limit
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT unit FROM read_model_state WHERE unit = ANY(%s) AND delta_row_count >= %s"
            " ORDER BY delta_row_count DESC",
            [list(UNITS), limit],
        )
        return [unit for (unit,) in cursor.fetchall()]


def compact(
    units: Iterable[str], *, concurrently: bool = True, wait: bool = False, timeout: float = 0
) -> list[RefreshOutcome]:
    """Fold each unit's delta into its base: rebuild the base, then refresh the delta
    (which the new base has emptied of what it covers)."""
    outcomes = []
    for unit in check_units(units):
        rebuilt = rebuild_base(unit, concurrently=concurrently, wait=wait, timeout=timeout)
        if rebuilt is None:
            continue
        outcomes.append(rebuilt)
        if not rebuilt.error:
            outcomes += refresh_unit(unit, wait=True, timeout=timeout)
    return outcomes


def refresh_unit(
    unit: str, *, wait: bool = False, full: bool = False, timeout: float | None = None
) -> list[RefreshOutcome]:
    """Refresh ``unit`` while it is dirty, unless another process is already on it.

    With ``wait``, queue behind a running refresh instead of leaving it the follow-up.
    """
    if connection.in_atomic_block:
        raise RuntimeError("a refresh runs in transactions of its own, not inside one")
    outcomes: list[RefreshOutcome] = []
    while _try_lock(unit, wait=wait):
        try:
            while _take_dirty(unit):
                outcome = _refresh_once(unit, full=full, timeout=timeout)
                outcomes.append(outcome)
                if outcome.error:
                    return outcomes  # left dirty; not retried in a tight loop
        finally:
            _unlock(unit)
        # A request that came between our last check and the unlock found the lock
        # taken and left it to us: look once more.
        if not _is_dirty(unit):
            break
        wait = False
    return outcomes


def refresh(
    units: Iterable[str],
    *,
    wait: bool = True,
    full: bool = False,
    timeout: float | None = None,
) -> list[RefreshOutcome]:
    """Refresh the units now (an operator's or a test's request).

    ``full`` rebuilds each base first, without CONCURRENTLY (readers wait meanwhile).
    ``timeout`` in seconds, 0 for none; by default READ_MODEL_REFRESH_TIMEOUT.
    """
    units = check_units(units)
    outcomes = []
    if full:
        for unit in units:
            outcomes.append(rebuild_base(unit, concurrently=False, wait=True, timeout=timeout))
    mark_dirty(units)
    for unit in units:
        outcomes += refresh_unit(unit, wait=wait, full=full, timeout=timeout)
    return outcomes


def request_refresh(units: Sequence[str]) -> None:
    """After a write: mark the units dirty; in sync mode also refresh them here and now.

    Never raises: a failed refresh must not fail the command that wrote.
    """
    if not units:
        return
    try:
        mark_dirty(units)
        if settings.READ_MODEL_REFRESH == "sync":
            for unit in units:
                refresh_unit(unit)
    except DatabaseError:
        logger.exception("refresh of %s after a write failed", ", ".join(units))


def units_behind(units: Iterable[str] | None = None) -> list[str]:
    """Units that are dirty, never refreshed, or miss a write in the event log.

    The event log is the truth: a unit is behind when an event that touches it was
    written by a transaction its last snapshot does not see.
    """
    behind = []
    with connection.cursor() as cursor:
        for name in units or UNITS:
            unit = UNITS[name]
            cursor.execute(
                """
                SELECT state.dirty OR state.snapshot = '' OR EXISTS (
                    SELECT 1 FROM orders_write_event event
                    WHERE event.transaction_id >=
                          pg_snapshot_xmin(state.snapshot::pg_snapshot)::text::bigint
                      AND event.name = ANY(%s)
                      AND NOT pg_visible_in_snapshot(
                          event.transaction_id::text::xid8, state.snapshot::pg_snapshot))
                FROM read_model_state state WHERE state.unit = %s
                """,
                [sorted(unit.events), name],
            )
            row = cursor.fetchone()
            if row is None or row[0]:
                behind.append(name)
    return behind


# --- waiting for a write -----------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """How fresh an answer is: when its oldest unit's snapshot was taken, and whether
    it is known to miss the write the client asked for."""

    refreshed_at: datetime.datetime | None
    stale: bool = False

    def headers(self) -> dict[str, str]:
        """The HTTP headers that say it: X-Read-Model-Refreshed-At, X-Read-Model-Stale."""
        headers = {}
        if self.refreshed_at is not None:
            headers["X-Read-Model-Refreshed-At"] = self.refreshed_at.isoformat()
        if self.stale:
            headers["X-Read-Model-Stale"] = "true"
        return headers


def _units_written_by(transaction_id: int, units: Sequence[str]) -> list[str]:
    """The units among ``units`` whose rows the write ``transaction_id`` may have changed:
    every one while it runs; once it has ended, those that its logged events touch (none
    for a command that changed nothing, such as allocating an allocated line again)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_visible_in_snapshot(%s::text::xid8, pg_current_snapshot()),"
            " array(SELECT DISTINCT name FROM orders_write_event WHERE transaction_id = %s)",
            [str(transaction_id), transaction_id],
        )
        ended, names = cursor.fetchone()
    if not ended:
        return list(units)
    return [unit for unit in units if UNITS[unit].events & set(names)]


# Every query answer reads this first, so it is prepared. $3 is the write's transaction
# (NULL: none), $2 the units among $1 that the write may have changed.
COVERAGE = Statement(
    "read_model_coverage",
    ["text[]", "text[]", "xid8"],
    "SELECT min(last_refreshed_at), count(*) = cardinality($1) AND coalesce(bool_and("
    " snapshot <> '' AND ($3 IS NULL OR NOT unit = ANY($2)"
    " OR pg_visible_in_snapshot($3, snapshot::pg_snapshot))), false)"
    " FROM read_model_state WHERE unit = ANY($1)",
)


def _coverage(units: Sequence[str], transaction_id: int | None) -> tuple:
    """(oldest snapshot time, whether every unit was refreshed and shows the write).

    A unit the write did not touch shows it already: waiting for a refresh that the
    write never asks for would only end in READ_MODEL_MAX_WAIT and a false "stale"."""
    if transaction_id is None:
        written, writer = [], None
    else:
        written, writer = _units_written_by(transaction_id, units), str(transaction_id)
    return COVERAGE.fetchone([list(units), written, writer])


def wait_for(
    units: Sequence[str], transaction_id: int | None, *, max_wait: float | None = None
) -> Freshness:
    """Wait until every unit includes the write ``transaction_id`` (if any), at most
    ``max_wait`` seconds (READ_MODEL_MAX_WAIT by default); then say how fresh they are.

    Waits on LISTEN/NOTIFY, not by polling.
    """
    units = list(units)
    refreshed_at, covered = _coverage(units, transaction_id)
    if transaction_id is None or covered:
        return Freshness(refreshed_at)
    max_wait = settings.READ_MODEL_MAX_WAIT if max_wait is None else max_wait
    deadline = time.monotonic() + max_wait
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {REFRESHED_CHANNEL}")
    try:
        raw = connection.connection
        while True:
            # Checked again after LISTEN, so a refresh that ended in between is not missed.
            refreshed_at, covered = _coverage(units, transaction_id)
            remaining = deadline - time.monotonic()
            if covered or remaining <= 0:
                return Freshness(refreshed_at, stale=not covered)
            # A notification wakes us; the short cap is a safety net for one that is lost
            # (a LISTEN inside an open transaction only starts at its commit).
            with connection.wrap_database_errors:
                select.select([raw], [], [], min(remaining, 0.5))
                raw.poll()
                raw.notifies.clear()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"UNLISTEN {REFRESHED_CHANNEL}")
        connection.connection.notifies.clear()
