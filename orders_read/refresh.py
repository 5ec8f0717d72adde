"""Refreshing the read models after writes: coalescing, locks and recorded state.

A read model (``read_models``) is a plain view over a large *base*, rebuilt now and then
(``rebuilds``), and a small *delta* of the keys written since the base's snapshot;
"refreshing" a read model refreshes its delta, so its work grows with what was written,
not with the data. Coalescing, across every process of the deployment, with PostgreSQL
alone:

* Only the holder of a unit's advisory lock refreshes it, so one refresh of a unit runs
  at a time.
* After a write (``request_refresh``), async mode only announces it (NOTIFY
  ``read_model_dirty`` with the writing transaction); the watcher refreshes a unit when
  its last snapshot misses an announced write. Sync mode ``catch_up``s in the request:
  it queues for the lock behind a refresh in flight and refreshes only if that one did
  not include its write. Either way one refresh serves every write committed before it.
* Operators' requests, failed refreshes and writers that gave up waiting mark the unit
  ``dirty`` in ``read_model_state``; ``refresh_unit`` refreshes while it is set.

Each refresh runs in a REPEATABLE READ transaction and records the snapshot it ran under
(``pg_current_snapshot()``), which ``freshness`` compares with a write's token.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from psycopg2.extras import Json

from config.http.prepared import Statement
from orders_read import read_models
from orders_read.read_models import READ_MODELS

logger = logging.getLogger(__name__)

DIRTY_CHANNEL = "read_model_dirty"
REFRESHED_CHANNEL = "read_model_refreshed"
# First key of the two-key advisory locks the read side takes (the second: the name).
LOCK_NAMESPACE = 0x5154  # "QT"
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout


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


def try_lock(unit: str, *, wait: bool) -> bool:
    """Take the unit's advisory lock (session level); with ``wait``, queue for it."""
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [LOCK_NAMESPACE, unit])
            return True
        cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [LOCK_NAMESPACE, unit])
        (locked,) = cursor.fetchone()
    return locked


def unlock(unit: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [LOCK_NAMESPACE, unit])


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


@contextlib.contextmanager
def in_snapshot(timeout: float | None) -> Iterator[tuple[object, str, datetime.datetime]]:
    """A REPEATABLE READ transaction that gives up after ``timeout`` seconds (0: never;
    by default READ_MODEL_REFRESH_TIMEOUT): its cursor, and the snapshot every statement
    in it sees (``pg_current_snapshot()``, taken by its first query) with when it was taken."""
    timeout_ms = int((settings.READ_MODEL_REFRESH_TIMEOUT if timeout is None else timeout) * 1000)
    with transaction.atomic(), connection.cursor() as cursor:
        # One round trip; the SETs take no snapshot, so the SELECT's is the transaction's.
        # The refresh's prepared statements take their keys as an array and read every
        # table through an index: their generic plan is right for any keys, and planning
        # each afresh cost more than running it.
        cursor.execute(
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;"
            f" SET LOCAL statement_timeout = {timeout_ms}; SET LOCAL lock_timeout = {timeout_ms};"
            " SET LOCAL plan_cache_mode = force_generic_plan;"
            " SELECT pg_current_snapshot()::text, statement_timestamp()"
        )
        snapshot, taken_at = cursor.fetchone()
        yield cursor, snapshot, taken_at


_STATE = (
    "SELECT state.unit, state.snapshot, state.row_count, state.delta_row_count,"
    " state.value_counts, coalesce(base.rebuilt_at > state.last_refreshed_at, false)"
    " FROM read_model_state state"
    " LEFT JOIN read_model_base_state base ON base.unit = state.unit"
    " WHERE state.unit = ANY(%s)"
)


def _refresh_once(unit: str, *, full: bool = False, timeout: float | None = None) -> RefreshOutcome:
    """One refresh of ``unit``'s delta under a REPEATABLE READ snapshot; records state,
    never raises.

    It rewrites the delta's rows of the keys written since the last refresh's snapshot
    (``dirty keys`` not visible in it), so its work grows with what was written since,
    not with the delta. ``full`` (and a unit without a recorded refresh) rewrites the
    whole delta: every key written since the base's snapshot. The rows readers see, in
    all and per value of the counted column (``value_counts``), are counted along; afresh
    after a whole rewrite or a base rebuilt since the last refresh.
    """
    started = time.monotonic()
    try:
        with in_snapshot(timeout) as (cursor, snapshot, taken_at):
            cursor.execute(_STATE, [[unit]])
            state = {row[0]: row[1:] for row in cursor.fetchall()}
            changed = {} if full else _changed_keys(cursor, state, [unit])
            counted = _refresh_delta(cursor, unit, state.get(unit), changed, full=full)
    except DatabaseError as error:
        return failed(unit, error, started)
    duration_ms = (time.monotonic() - started) * 1000
    _record_success([(unit, snapshot, taken_at, duration_ms, *counted[:3])])
    return RefreshOutcome(unit, True, duration_ms, counted[0], rows_refreshed=counted[3])


def _refresh_together(units: Sequence[str], timeout: float | None = None) -> list[RefreshOutcome]:
    """Refresh the deltas of ``units`` in one REPEATABLE READ transaction, each as
    ``_refresh_once`` would: one round trip per unit whose followed keys were written
    (none for the others) and four in all besides (snapshot, state, the keys written,
    record); each unit's duration is its own work and a share of theirs. If it fails,
    each unit is refreshed on its own, so that one failing unit does not hold back the
    others. Never raises."""
    started = time.monotonic()
    recorded, outcomes = [], []
    try:
        with in_snapshot(timeout) as (cursor, snapshot, taken_at):
            cursor.execute(_STATE, [list(units)])
            state = {row[0]: row[1:] for row in cursor.fetchall()}
            changed = _changed_keys(cursor, state, units)
            for unit in units:
                unit_started = time.monotonic()
                counted = _refresh_delta(cursor, unit, state.get(unit), changed)
                recorded.append((unit, counted, (time.monotonic() - unit_started) * 1000))
    except DatabaseError:
        logger.warning("refreshing %s together failed; one at a time instead", ", ".join(units))
        return [_refresh_once(unit, timeout=timeout) for unit in units]
    shared_ms = ((time.monotonic() - started) * 1000 - sum(ms for *_, ms in recorded)) / len(units)
    rows = []
    for unit, (row_count, delta_row_count, value_counts, rows_refreshed), own_ms in recorded:
        duration_ms = own_ms + shared_ms
        rows.append(
            (unit, snapshot, taken_at, duration_ms, row_count, delta_row_count, value_counts)
        )
        outcomes.append(
            RefreshOutcome(unit, True, duration_ms, row_count, rows_refreshed=rows_refreshed)
        )
    _record_success(rows)
    return outcomes


def _changed_keys(cursor, state: Mapping[str, tuple], units: Iterable[str]) -> dict[tuple, list]:
    """The keys written since each unit's last snapshot, in one round trip for all:
    ``{(dirty keys table, snapshot): keys}``. Units that follow the same keys and were
    last refreshed together share one lookup."""
    wanted = sorted(
        {
            (READ_MODELS[unit].follows, state[unit][0])
            for unit in units
            if unit in state and state[unit][0]
        },
        key=lambda pair: (pair[0].table, pair[1]),
    )
    if not wanted:
        return {}
    quote = connection.ops.quote_name
    cursor.execute(
        "SELECT "
        + ", ".join(
            f"array(SELECT DISTINCT {quote(keys.column)} FROM {quote(keys.table)}"
            f" WHERE transaction_id >= pg_snapshot_xmin(%s::pg_snapshot)"
            f" AND NOT pg_visible_in_snapshot(transaction_id, %s::pg_snapshot))"
            for keys, _ in wanted
        ),
        [snapshot for _, previous in wanted for snapshot in (previous, previous)],
    )
    return {
        (keys.table, previous): changed
        for (keys, previous), changed in zip(wanted, cursor.fetchone(), strict=True)
    }


def _refresh_delta(
    cursor, unit: str, state: tuple | None, changed: Mapping[tuple, list], *, full: bool = False
) -> tuple[int, int, dict[str, int] | None, int]:
    """Refresh ``unit``'s delta in the transaction of ``cursor``, from its recorded
    ``state`` (``_STATE``'s row, or None) and the keys written since (``_changed_keys``):
    (rows readers see, the delta's rows, rows per counted value, rows written)."""
    spec = READ_MODELS[unit]
    # A base rebuilt under a later snapshot than the last refresh's may hold writes no
    # refresh has counted: readers see them already, in the base, so only counting
    # afresh (from the base's counts, key by key of the delta) counts them.
    previous, row_count, delta_row_count, value_counts, rebuilt_since = state or (
        "",
        None,
        None,
        None,
        False,
    )
    value_counts = read_models.parse_counts(value_counts)
    counts_unknown = bool(spec.counted_by) and value_counts is None
    keys = changed.get((spec.follows.table, previous), [])
    if full or not previous or row_count is None or delta_row_count is None:
        row_count, delta_row_count, rows_refreshed = _rewrite_delta(cursor, spec)
        value_counts = _count_values_afresh(cursor, spec)
    elif rebuilt_since:
        rows_refreshed = _update_delta(cursor, spec, keys)[2]
        row_count, delta_row_count = _count_rows_afresh(cursor, spec)
        value_counts = _count_values_afresh(cursor, spec)
    elif counts_unknown:
        shown, rows, rows_refreshed = _update_delta(cursor, spec, keys)[:3]
        row_count += shown
        delta_row_count += rows
        value_counts = _count_values_afresh(cursor, spec)
    else:
        shown, rows, rows_refreshed, counts_change = _update_delta(cursor, spec, keys)
        row_count += shown
        delta_row_count += rows
        value_counts = _added(value_counts, counts_change)
    return row_count, delta_row_count, value_counts, rows_refreshed


def _added(counts: dict[str, int] | None, change: dict[str, int]) -> dict[str, int] | None:
    """``counts`` changed by ``change``, values that count nothing left out."""
    if counts is None:
        return None
    total = {value: counts.get(value, 0) + change.get(value, 0) for value in {*counts, *change}}
    return {value: rows for value, rows in sorted(total.items()) if rows}


def _count_values_afresh(cursor, spec: read_models.ReadModel) -> dict[str, int] | None:
    """After the delta is rewritten whole, the rows readers see per counted value: the
    base's (as its rebuild counted them), less those of the delta's keys, plus the
    delta's; counted over the plain view when the base's counts are not its own."""
    if not spec.counted_by:
        return None
    quote = connection.ops.quote_name
    delta, base = quote(spec.delta), quote(spec.base)
    cursor.execute(
        "SELECT value_counts FROM read_model_base_state"
        " WHERE unit = %s AND value_counts_snapshot = snapshot",
        [spec.name],
    )
    found = cursor.fetchone()
    if found is None or found[0] is None:
        cursor.execute(spec.value_counts(quote(spec.name)))
        return _added(read_models.parse_counts(cursor.fetchone()[0]), {})
    # The base's hidden rows key by key, so that each is an index lookup.
    cursor.execute(
        spec.value_counts(
            f"(SELECT DISTINCT delta_key FROM {delta}) pending"
            f" CROSS JOIN LATERAL (SELECT {quote(spec.counted_by)} FROM {base}"
            f"  WHERE {quote(spec.key)} = pending.delta_key) hidden"
        )
    )
    hidden = read_models.parse_counts(cursor.fetchone()[0])
    cursor.execute(spec.value_counts(delta, f"WHERE {quote(spec.row_id)} IS NOT NULL"))
    shown = read_models.parse_counts(cursor.fetchone()[0])
    base_counts = read_models.parse_counts(found[0])
    return _added(_added(base_counts, {value: -rows for value, rows in hidden.items()}), shown)


def _update_delta(
    cursor, spec: read_models.ReadModel, keys: list
) -> tuple[int, int, int, dict[str, int]]:
    """Rewrite the delta's rows of ``keys`` (written since the last refresh): (change
    in the rows readers see, change in the delta's rows, rows written, change in the
    rows readers see per counted value). Nothing to do, and no round trip, for none."""
    if not keys:
        return 0, 0, 0, {}
    shown_change, rows_change, rows_written, counts_change = _delta_update_statement(spec).fetchone(
        [keys]
    )
    return shown_change, rows_change, rows_written, read_models.parse_counts(counts_change)


@functools.cache
def _delta_update_statement(spec: read_models.ReadModel) -> Statement:
    """The statement that rewrites the delta's rows of the keys ``$1``, prepared once per
    connection (planning it took longer than running it).

    One round trip: the rows readers saw of the keys (the delta's, or the base's for a
    key not in it), the delete, the insert and what each changed. The insert waits for
    the delete (its keys wait on ``removed``'s count), so that a key's new rows never
    meet its old ones in the delta's unique index. Keys go to the delta and the base as
    arrays, so that each is read through its index whatever the statistics.
    """
    quote = connection.ops.quote_name
    delta, base = quote(spec.delta), quote(spec.base)
    row_id = quote(spec.row_id)
    counted = f"{quote(spec.counted_by)}::text" if spec.counted_by else "NULL::text"
    rewritten = "(SELECT unnest($1) WHERE (SELECT count(*) FROM removed) >= 0)"
    return Statement(
        f"refresh_{spec.name}",
        [f"{spec.follows.sql_type}[]"],
        f"WITH removed AS (DELETE FROM {delta} WHERE delta_key = ANY($1)"
        f"  RETURNING delta_key, {row_id} IS NOT NULL AS shown, {counted} AS value),"
        # The base's rows of the keys the delta did not hold: readers saw those.
        f" hidden AS (SELECT {counted} AS value FROM {base}"
        f"  WHERE {quote(spec.key)} = ANY(ARRAY(SELECT changed FROM unnest($1) changed"
        f"   WHERE NOT EXISTS (SELECT 1 FROM removed WHERE removed.delta_key = changed)))),"
        f" written AS (INSERT INTO {delta} {spec.delta_rows(rewritten)}"
        f"  RETURNING {row_id} IS NOT NULL AS shown, {counted} AS value),"
        f" seen AS (SELECT value, -1 AS change FROM removed WHERE shown"
        f"  UNION ALL SELECT value, -1 FROM hidden"
        f"  UNION ALL SELECT value, 1 FROM written WHERE shown)"
        f" SELECT (SELECT count(*) FROM written WHERE shown)"
        f"  - (SELECT count(*) FROM removed WHERE shown) - (SELECT count(*) FROM hidden),"
        f" (SELECT count(*) FROM written) - (SELECT count(*) FROM removed),"
        f" (SELECT count(*) FROM written),"
        f" (SELECT coalesce(jsonb_object_agg(value, change), '{{}}') FROM ("
        f"   SELECT value, sum(change) AS change FROM seen WHERE value IS NOT NULL"
        f"   GROUP BY value HAVING sum(change) <> 0) counted)",
    )


def _rewrite_delta(cursor, spec: read_models.ReadModel) -> tuple[int, int, int]:
    """Rewrite the whole delta, every key written since the base's snapshot, and count
    afresh: (rows readers see, the delta's rows, rows written)."""
    delta = connection.ops.quote_name(spec.delta)
    cursor.execute(
        f"DELETE FROM {delta}; INSERT INTO {delta} {spec.delta_rows(spec.pending_keys())}"
    )
    row_count, delta_row_count = _count_rows_afresh(cursor, spec)
    return row_count, delta_row_count, delta_row_count


def _count_rows_afresh(cursor, spec: read_models.ReadModel) -> tuple[int, int]:
    """(rows readers see, the delta's rows), counted afresh."""
    quote = connection.ops.quote_name
    delta, base = quote(spec.delta), quote(spec.base)
    # The view's rows: the base's, less those of the delta's keys, plus the delta's; the
    # base's hidden rows key by key, so that each count is an index lookup whatever the
    # statistics.
    cursor.execute(
        f"SELECT delta.row_count, delta.rows_shown,"
        f" (SELECT coalesce(sum((SELECT count(*) FROM {base} base"
        f"   WHERE base.{quote(spec.key)} = pending.delta_key)), 0)"
        f"  FROM (SELECT DISTINCT delta_key FROM {delta}) pending),"
        f" (SELECT row_count FROM read_model_base_state WHERE unit = %s)"
        f" FROM (SELECT count(*) AS row_count, count({quote(spec.row_id)}) AS rows_shown"
        f" FROM {delta}) delta",
        [spec.name],
    )
    delta_row_count, delta_rows_shown, base_rows_hidden, base_rows = cursor.fetchone()
    if base_rows is not None:
        row_count = base_rows - base_rows_hidden + delta_rows_shown
    else:
        cursor.execute(f"SELECT count(*) FROM {quote(spec.name)}")
        (row_count,) = cursor.fetchone()
    return row_count, delta_row_count


def failed(
    unit: str, error: DatabaseError, started: float, *, base: bool = False
) -> RefreshOutcome:
    duration_ms = (time.monotonic() - started) * 1000
    message = str(error).strip() or type(error).__name__
    what = f"rebuilding the base of {unit}" if base else f"refreshing {unit}"
    logger.error("%s failed after %.0f ms: %s", what, duration_ms, message)
    _record_failure(unit, f"base rebuild: {message}" if base else message)
    return RefreshOutcome(unit, False, duration_ms, error=message, base=base)


def _record_success(
    refreshed: Sequence[tuple[str, str, datetime.datetime, float, int, int, dict | None]],
) -> None:
    """Record refreshes that succeeded: each (unit, snapshot, when it was taken,
    duration in ms, rows readers see, the delta's rows, rows per counted value), and
    tell whoever waits for one (NOTIFY)."""
    # Its own transaction (one statement), after the refresh's: the refresh must not hold
    # these rows.
    columns = list(zip(*refreshed, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH recorded AS ("
            " INSERT INTO read_model_state (unit, dirty, snapshot, last_refreshed_at,"
            " last_duration_ms, row_count, delta_row_count, value_counts, refresh_count,"
            " last_error)"
            " SELECT refreshed.*, 1, '' FROM unnest(%s::text[], %s::boolean[], %s::text[],"
            "  %s::timestamptz[], %s::float8[], %s::bigint[], %s::bigint[], %s::jsonb[])"
            "  refreshed"
            " ON CONFLICT (unit) DO UPDATE SET"
            " snapshot = excluded.snapshot, last_refreshed_at = excluded.last_refreshed_at,"
            " last_duration_ms = excluded.last_duration_ms, row_count = excluded.row_count,"
            " delta_row_count = excluded.delta_row_count,"
            " value_counts = excluded.value_counts, last_error = '',"
            " refresh_count = read_model_state.refresh_count + 1 RETURNING unit)"
            " SELECT pg_notify(%s, unit) FROM recorded",
            [
                list(columns[0]),
                [False] * len(refreshed),
                *(list(column) for column in columns[1:6]),
                [None if counts is None else Json(counts) for counts in columns[6]],
                REFRESHED_CHANNEL,
            ],
        )


def _record_failure(unit: str, message: str) -> None:
    try:
        with connection.cursor() as cursor:
            # Still owed: the next refresh, by whoever comes, repairs the view.
            cursor.execute(
                "INSERT INTO read_model_state"
                " (unit, dirty, refresh_count, snapshot, last_error, last_error_at)"
                " VALUES (%s, true, 0, '', %s, now()) ON CONFLICT (unit) DO UPDATE SET"
                " dirty = true, last_error = excluded.last_error, last_error_at = now()",
                [unit, message],
            )
    except DatabaseError:
        logger.exception("could not record the failed refresh of %s", unit)


def refresh_unit(
    unit: str, *, wait: bool = False, full: bool = False, timeout: float | None = None
) -> list[RefreshOutcome]:
    """Refresh ``unit`` while it is dirty, unless another process is already on it.

    With ``wait``, queue behind a running refresh instead of leaving it the follow-up.
    """
    if connection.in_atomic_block:
        raise RuntimeError("a refresh runs in transactions of its own, not inside one")
    outcomes: list[RefreshOutcome] = []
    while try_lock(unit, wait=wait):
        try:
            while _take_dirty(unit):
                outcome = _refresh_once(unit, full=full, timeout=timeout)
                outcomes.append(outcome)
                if outcome.error:
                    return outcomes  # left dirty; not retried in a tight loop
        finally:
            unlock(unit)
        # A request that came between our last check and the unlock found the lock
        # taken and left it to us: look once more.
        if not _is_dirty(unit):
            break
        wait = False
    return outcomes


def refresh(
    units: Iterable[str], *, wait: bool = True, timeout: float | None = None
) -> list[RefreshOutcome]:
    """Refresh the units now (an operator's or a test's request).

    ``timeout`` in seconds, 0 for none; by default READ_MODEL_REFRESH_TIMEOUT.
    """
    units = read_models.named(units)
    mark_dirty(units)
    outcomes = []
    for unit in units:
        outcomes += refresh_unit(unit, wait=wait, timeout=timeout)
    return outcomes


def snapshot_shows(snapshot: str, transaction_id: int) -> bool:
    """Whether a transaction that has ended is visible in ``snapshot`` (the text of a
    ``pg_snapshot``: ``xmin:xmax:xip,...``), as ``pg_visible_in_snapshot`` says."""
    if not snapshot:
        return False
    xmin, xmax, in_progress = snapshot.split(":")
    if transaction_id < int(xmin):
        return True
    return transaction_id < int(xmax) and str(transaction_id) not in in_progress.split(",")


def snapshots(units: Iterable[str]) -> dict[str, str]:
    """The snapshot each unit's last refresh ran under ('' for none yet)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT unit, snapshot FROM read_model_state WHERE unit = ANY(%s)", [list(units)]
        )
        return dict(cursor.fetchall())


def _lock_within(unit: str, seconds: float) -> bool:
    """Take the unit's advisory lock, queueing at most ``seconds`` behind its holder."""
    try:
        with connection.cursor() as cursor:
            # One round trip; a timeout rolls the SET back with the rest.
            cursor.execute(
                "SET lock_timeout = %s; SELECT pg_advisory_lock(%s, hashtext(%s));"
                " RESET lock_timeout",
                [max(1, int(seconds * 1000)), LOCK_NAMESPACE, unit],
            )
    except OperationalError as error:
        if getattr(error.__cause__, "pgcode", None) == LOCK_NOT_AVAILABLE:
            return False
        raise
    return True


def catch_up(
    unit: str, transaction_ids: Collection[int], *, max_wait: float | None = None
) -> list[RefreshOutcome]:
    """Bring ``unit`` up to the writes ``transaction_ids`` (committed), sharing the work.

    A refresh in flight may already cover them: wait for it (at most ``max_wait``
    seconds, READ_MODEL_MAX_WAIT by default) and refresh only if it did not, so that
    writers arriving together are served by one refresh. One that waits longer leaves
    the unit marked dirty for whoever comes next (the watcher's safety check, in async
    mode).
    """
    max_wait = settings.READ_MODEL_MAX_WAIT if max_wait is None else max_wait
    if not _lock_within(unit, max_wait):
        logger.warning("%s: refresh still busy after %g s; left for the next one", unit, max_wait)
        mark_dirty([unit])
        return []
    try:
        shown = snapshots([unit]).get(unit, "")
        if all(snapshot_shows(shown, transaction_id) for transaction_id in transaction_ids):
            return []
        _take_dirty(unit)  # whatever was owed before, this refresh includes
        return [_refresh_once(unit)]
    finally:
        unlock(unit)


def catch_up_together(
    writes: Mapping[str, Collection[int]], *, max_wait: float | None = None
) -> list[RefreshOutcome]:
    """``catch_up`` for several units at once, each to its writes (committed).

    The units no other refresher holds are locked, checked and refreshed together
    (``_refresh_together``): a handful of round trips for them all, where one at a time
    takes about ten each. Each unit another process is refreshing is left to
    ``catch_up``, which waits for that refresh and shares it.
    """
    with connection.cursor() as cursor:
        # One round trip: the locks free now, and each unit's last snapshot.
        cursor.execute(
            "SELECT wanted.unit, state.snapshot FROM unnest(%s::text[]) wanted(unit)"
            " LEFT JOIN read_model_state state ON state.unit = wanted.unit"
            " WHERE pg_try_advisory_lock(%s, hashtext(wanted.unit))",
            [sorted(writes), LOCK_NAMESPACE],
        )
        locked = {unit: snapshot or "" for unit, snapshot in cursor.fetchall()}
    outcomes = []
    try:
        due = [
            unit
            for unit, shown in locked.items()
            if not all(snapshot_shows(shown, transaction_id) for transaction_id in writes[unit])
        ]
        if due:
            with connection.cursor() as cursor:
                # Whatever was owed before, this refresh includes.
                cursor.execute(
                    "UPDATE read_model_state SET dirty = false WHERE unit = ANY(%s) AND dirty",
                    [due],
                )
            outcomes = _refresh_together(sorted(due))
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(unit)) FROM unnest(%s::text[]) unit",
                    [LOCK_NAMESPACE, list(locked)],
                )
    for unit in sorted(set(writes) - set(locked)):
        outcomes += catch_up(unit, writes[unit], max_wait=max_wait)
    return outcomes


def announce(units: Sequence[str], transaction_id: int) -> None:
    """Tell the watchers (NOTIFY) that ``transaction_id`` wrote what ``units`` show."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_notify(%s, %s)", [DIRTY_CHANNEL, f"{transaction_id}:{','.join(units)}"]
        )


def parse_announcement(payload: str) -> tuple[int | None, list[str]]:
    """(the writing transaction or None, unit names) of a DIRTY_CHANNEL notification:
    ``announce``'s ``<transaction>:<units>``, or ``mark_dirty``'s bare ``<units>``."""
    transaction_id, _, names = payload.rpartition(":")
    return (int(transaction_id) if transaction_id else None), list(filter(None, names.split(",")))


def request_refresh(units: Sequence[str], transaction_id: int) -> None:
    """After the write ``transaction_id`` committed: in async mode announce it to the
    watcher; in sync mode bring the units up to it here (``catch_up``).

    Never raises: a failed refresh must not fail the command that wrote.
    """
    if not units:
        return
    try:
        if settings.READ_MODEL_REFRESH == "sync":
            for unit in units:
                catch_up(unit, [transaction_id])
        else:
            announce(units, transaction_id)
    except DatabaseError:
        logger.exception("refresh of %s after a write failed", ", ".join(units))
