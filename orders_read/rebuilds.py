"""Rebuilding read models' bases, and folding deltas into them (compaction).

A rebuild (``rebuild_base``; the watcher compacts once a delta holds a tenth of its
base's rows or READ_MODEL_DELTA_LIMIT, whichever is more) records the snapshot it saw in
``read_model_base_state`` in its own transaction; the whole-delta refresh that follows
(``compact``) leaves out exactly the keys that snapshot covers. It takes a lock of its
own, so deltas stay fresh during one. Each compaction costs about the base's size and
comes after writes of a tenth of it, so the rebuilds' work per write stays the same at
any size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from psycopg2.extras import Json

from orders_read import read_models, replicas
from orders_read.read_models import READ_MODELS, DirtyKeys
from orders_read.refresh import (
    RefreshOutcome,
    failed,
    in_snapshot,
    mark_dirty,
    refresh_unit,
    try_lock,
    unlock,
)

logger = logging.getLogger(__name__)


def _base_lock(unit: str) -> str:
    return f"{unit}:base"


def rebuild_base(
    unit: str, *, concurrently: bool = True, wait: bool = True, timeout: float | None = 0
) -> RefreshOutcome | None:
    """Rebuild ``unit``'s base view and record the snapshot it saw; None when another
    process is rebuilding it and ``wait`` is false.

    ``concurrently`` keeps readers reading the old base meanwhile (slower); without it
    readers of the view wait for the rebuild. ``timeout`` in seconds, 0 (default) for
    none. Afterwards the unit is marked dirty: its next whole-delta refresh
    (``compact`` does one) drops the keys the new base covers. Never raises.
    """
    if connection.in_atomic_block:
        raise RuntimeError("a rebuild runs in transactions of its own, not inside one")
    spec = READ_MODELS[unit]
    base = connection.ops.quote_name(spec.base)
    if not try_lock(_base_lock(unit), wait=wait):
        return None
    started = time.monotonic()
    try:
        with in_snapshot(timeout) as (cursor, snapshot, taken_at):
            # Sorting and hashing a million rows in memory, not in temporary files.
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            cursor.execute(
                f"REFRESH MATERIALIZED VIEW {'CONCURRENTLY ' if concurrently else ''}{base}"
            )
            value_counts = None
            if spec.counted_by:
                # One pass counts the rows and their values.
                cursor.execute(spec.value_counts(base))
                value_counts = read_models.parse_counts(cursor.fetchone()[0])
                row_count = sum(value_counts.values())
            else:
                cursor.execute(f"SELECT count(*) FROM {base}")
                (row_count,) = cursor.fetchone()
            duration_ms = (time.monotonic() - started) * 1000
            # In the rebuild's transaction: the base's rows and the snapshot that says
            # which writes they include become visible together.
            cursor.execute(
                "INSERT INTO read_model_base_state (unit, snapshot, rebuilt_at, duration_ms,"
                " row_count, value_counts, value_counts_snapshot, rebuild_count)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, 1) ON CONFLICT (unit) DO UPDATE SET"
                " snapshot = excluded.snapshot, rebuilt_at = excluded.rebuilt_at,"
                " duration_ms = excluded.duration_ms, row_count = excluded.row_count,"
                " value_counts = excluded.value_counts,"
                " value_counts_snapshot = excluded.value_counts_snapshot,"
                " rebuild_count = read_model_base_state.rebuild_count + 1",
                [
                    unit,
                    snapshot,
                    taken_at,
                    duration_ms,
                    row_count,
                    None if value_counts is None else Json(value_counts),
                    snapshot,
                ],
            )
            # The requests to compact that this rebuild answers: those made before it.
            cursor.execute(
                "UPDATE read_model_state SET compact_requested_at = NULL"
                " WHERE unit = %s AND compact_requested_at <= %s",
                [unit, taken_at],
            )
    except DatabaseError as error:
        return failed(unit, error, started, base=True)
    finally:
        unlock(_base_lock(unit))
    mark_dirty([unit])
    return RefreshOutcome(unit, True, duration_ms, row_count, base=True)


def request_compaction(units: Iterable[str]) -> None:
    """Ask for the units' deltas to be folded into their bases in the background (the
    watcher's compactor does it within a second): a rebuild at a million orders takes
    seconds of a core, too long for the request that asks."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE read_model_state SET compact_requested_at = now() WHERE unit = ANY(%s)",
            [read_models.named(units)],
        )


def _forget_covered_keys(keys: DirtyKeys) -> None:
    """Delete the dirty keys that every base following ``keys`` includes, and every delta
    too (a delta refresh rewrites the keys written since its last snapshot)."""
    units = [model.name for model in READ_MODELS.values() if model.follows == keys]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT snapshot FROM read_model_base_state"
                " WHERE unit = ANY(%s) AND snapshot <> ''"
                " UNION ALL SELECT snapshot FROM read_model_state"
                " WHERE unit = ANY(%s) AND snapshot <> ''",
                [units, units],
            )
            snapshots = [snapshot for (snapshot,) in cursor.fetchall()]
            if len(snapshots) < 2 * len(units):
                return
            covered = " AND ".join(
                ["pg_visible_in_snapshot(transaction_id, %s::pg_snapshot)"] * len(snapshots)
            )
            cursor.execute(
                f"DELETE FROM {connection.ops.quote_name(keys.table)} WHERE {covered}", snapshots
            )
    except DatabaseError:
        # Harmless: the keys stay pending for no base, and the next rebuild retries.
        logger.exception("could not forget the dirty keys the bases cover")


# A delta is folded into its base once it holds this share of the base's rows (or
# READ_MODEL_DELTA_LIMIT rows, if more): rebuilding a base costs in proportion to it,
# so the rebuilds' work per write stays the same at any size.
DELTA_SHARE_OF_BASE = 0.1


def units_to_compact(limit: int | None = None) -> list[str]:
    """Units whose delta has grown to ``limit`` rows (READ_MODEL_DELTA_LIMIT) or a tenth
    of its base's rows, whichever is more, and those someone asked to compact
    (``request_compaction``)."""
    limit = settings.READ_MODEL_DELTA_LIMIT if limit is None else limit
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state.unit FROM read_model_state state"
            " LEFT JOIN read_model_base_state base ON base.unit = state.unit"
            " WHERE state.unit = ANY(%s) AND (compact_requested_at IS NOT NULL"
            "  OR delta_row_count >= greatest(%s, coalesce(base.row_count, 0) * %s))"
            " ORDER BY compact_requested_at NULLS LAST, delta_row_count DESC",
            [list(READ_MODELS), limit, DELTA_SHARE_OF_BASE],
        )
        return [unit for (unit,) in cursor.fetchall()]


def compact(
    units: Iterable[str], *, concurrently: bool = True, wait: bool = False, timeout: float = 0
) -> list[RefreshOutcome]:
    """Fold each unit's delta into its base: rebuild the base, then refresh the delta
    (which the new base has emptied of what it covers)."""
    outcomes = []
    for unit in read_models.named(units):
        rebuilt = rebuild_base(unit, concurrently=concurrently, wait=wait, timeout=timeout)
        if rebuilt is None:
            continue
        outcomes.append(rebuilt)
        if not rebuilt.error:
            # The whole delta: only keys the new base does not cover stay in it.
            outcomes += refresh_unit(unit, wait=True, full=True, timeout=timeout)
            _forget_covered_keys(READ_MODELS[unit].follows)
    return outcomes


def rebuild(units: Iterable[str], *, timeout: float | None = None) -> list[RefreshOutcome]:
    """Rebuild the units from scratch: each base, then each delta. Without CONCURRENTLY
    (faster; readers wait meanwhile) unless replicas serve queries: there a plain REFRESH
    holds back replay and cancels the replicas' readers. ``timeout`` as for
    ``refresh.refresh``."""
    units = read_models.named(units)
    concurrently = bool(replicas.replica_aliases())
    outcomes = [
        rebuild_base(unit, concurrently=concurrently, wait=True, timeout=timeout) for unit in units
    ]
    mark_dirty(units)
    for unit in units:
        outcomes += refresh_unit(unit, wait=True, full=True, timeout=timeout)
    for keys in {READ_MODELS[unit].follows for unit in units}:
        _forget_covered_keys(keys)
    return outcomes
