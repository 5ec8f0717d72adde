"""Freshness: consistency tokens, waiting for a write to reach the read models, and
which read models are behind the event log.

A consistency token names the writing transaction (``pg_current_xact_id()``); a read
model includes that write exactly when ``pg_visible_in_snapshot(token, snapshot)`` for
the snapshot its last refresh ran under: its delta then holds every key written by
transactions that snapshot sees and its base's does not, and its base every other.
"""

from __future__ import annotations

import datetime
import select
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.db import connection, connections

from config.http.prepared import Statement
from orders_read import replicas
from orders_read.read_models import READ_MODELS
from orders_read.refresh import REFRESHED_CHANNEL
from orders_write.events import transaction_id_from_token


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


def units_behind(units: Iterable[str] | None = None) -> list[str]:
    """Units that are dirty, never refreshed, or miss a write in the event log.

    The event log is the truth: a unit is behind when an event that touches it was
    written by a transaction its last snapshot does not see.
    """
    behind = []
    with connection.cursor() as cursor:
        for name in units or READ_MODELS:
            unit = READ_MODELS[name]
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
    with connections[replicas.read_alias()].cursor() as cursor:
        cursor.execute(
            "SELECT pg_visible_in_snapshot(%s::text::xid8, pg_current_snapshot()),"
            " array(SELECT DISTINCT name FROM orders_write_event WHERE transaction_id = %s)",
            [str(transaction_id), transaction_id],
        )
        ended, names = cursor.fetchone()
    if not ended:
        return list(units)
    return [unit for unit in units if READ_MODELS[unit].events & set(names)]


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


# Whether the database read on has replayed a write: for reads of the write tables.
REPLAYED = Statement(
    "read_replayed", ["xid8"], "SELECT pg_visible_in_snapshot($1, pg_current_snapshot())"
)


def _coverage(units: Sequence[str], transaction_id: int | None) -> tuple:
    """(oldest snapshot time, whether every unit was refreshed and shows the write), on
    the database this request reads on (``replicas``).

    A unit the write did not touch shows it already: waiting for a refresh that the
    write never asks for would only end in READ_MODEL_MAX_WAIT and a false "stale"."""
    using = replicas.read_alias()
    if transaction_id is None:
        written, writer = [], None
    else:
        written, writer = _units_written_by(transaction_id, units), str(transaction_id)
    return COVERAGE.fetchone([list(units), written, writer], using=using)


def replayed(transaction_id: int) -> bool:
    """Whether the database this request reads on shows the write (a replica may not
    have replayed it yet; the primary always has, once the token was handed out)."""
    (shown,) = REPLAYED.fetchone([str(transaction_id)], using=replicas.read_alias())
    return shown


def wait_for(units: Sequence[str], transaction_id: int | None) -> Freshness:
    """Wait until every unit includes the write ``transaction_id`` (if any), at most
    until the request's READ_MODEL_MAX_WAIT is spent; then say how fresh they are.

    On a replica it does not wait: it raises ``replicas.NotCovered``, whose check the
    caller repeats (``replicas.answer``).
    """
    units = list(units)
    refreshed_at, covered = _coverage(units, transaction_id)
    if transaction_id is None or covered:
        return Freshness(refreshed_at)

    latest = [refreshed_at]

    def check() -> bool:
        latest[0], shown = _coverage(units, transaction_id)
        return shown

    if replicas.on_replica():
        raise replicas.NotCovered(check)
    covered = wait_until(check)
    return Freshness(latest[0], stale=not covered)


def wait_until(check: Callable[[], bool]) -> bool:
    """Wait on the primary until ``check()`` (a read of its read models' state) holds, at
    most until the request's READ_MODEL_MAX_WAIT is spent; whether it held.

    Waits on LISTEN/NOTIFY, not by polling: every refresh notifies.
    """
    deadline = time.monotonic() + replicas.remaining_wait()
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {REFRESHED_CHANNEL}")
    try:
        raw = connection.connection
        while True:
            # Checked again after LISTEN, so a refresh that ended in between is not missed.
            if check():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
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
