"""Answering queries on streaming replicas (hot standbys) of the primary.

Each query request (the query API, the read pages) reads its read models on one healthy
replica, chosen per request in turn, inside one REPEATABLE READ transaction there: the
coverage check of a consistency token and the read see the same snapshot. Everything
else (authentication, sessions, commands, the admin, exports) stays on the primary, and
so does a query when no replica is healthy.

A token the replica does not show yet is waited for on the primary (a replica cannot
LISTEN), then the replica is polled for a short while (READ_MODEL_REPLICA_CATCH_UP) until
it has replayed the refresh; a replica that does not catch up in time, or fails (gone, or
a query cancelled by a recovery conflict), hands the request to the primary. So a paused,
lagging or dead replica costs time, never a wrong answer or an error.

Health is checked per process, at most once every HEALTH_INTERVAL: a replica is healthy
when it answers, its replay is not paused, and it has replayed everything the primary had
written at the check before.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.http import HttpResponse

from config.replicas import is_replica

logger = logging.getLogger(__name__)

SOURCE_HEADER = "X-Read-Model-Source"
# SQLSTATE of a standby's query cancelled by replay (serialization_failure): the replica
# is well, only that query lost.
RECOVERY_CONFLICT = "40001"
HEALTH_INTERVAL = 1.0  # seconds

# Where this request reads its read models, and when its wait for a token ends.
_reading_from: contextvars.ContextVar[str] = contextvars.ContextVar(
    "reading_from", default=DEFAULT_DB_ALIAS
)
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "read_deadline", default=None
)


def replica_aliases() -> list[str]:
    """The configured replicas' database aliases, ``replica_1`` first."""
    return sorted(filter(is_replica, connections), key=lambda alias: int(alias.split("_")[1]))


def source_name(alias: str) -> str:
    """How X-Read-Model-Source names a database: ``primary`` or ``replica-N``."""
    return "primary" if alias == DEFAULT_DB_ALIAS else alias.replace("_", "-")


def read_alias() -> str:
    """The database this request reads its read models on."""
    return _reading_from.get()


def on_replica() -> bool:
    return _reading_from.get() != DEFAULT_DB_ALIAS


def remaining_wait() -> float:
    """Seconds left for this request to wait for a token (READ_MODEL_MAX_WAIT in all)."""
    deadline = _deadline.get()
    if deadline is None:
        return settings.READ_MODEL_MAX_WAIT
    return max(0.0, deadline - time.monotonic())


@contextlib.contextmanager
def reading_from(alias: str) -> Iterator[None]:
    """Read the read models on ``alias`` within the block (``ReadModelRouter``)."""
    reset = _reading_from.set(alias)
    try:
        yield
    finally:
        _reading_from.reset(reset)


class ReadModelRouter:
    """Sends the read side's models to the database the request reads on; everything
    else is left to the next router (the primary)."""

    def db_for_read(self, model, **hints) -> str | None:
        alias = _reading_from.get()
        if alias != DEFAULT_DB_ALIAS and model._meta.app_label == "orders_read":
            return alias
        return None


class NotCovered(Exception):
    """The replica does not show the token's write yet: ``check()`` tells when it does."""

    def __init__(self, check: Callable[[], bool]) -> None:
        self.check = check
        super().__init__("the replica does not show the write yet")


# --- health ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaState:
    """What a health check found: ``lag_bytes`` of WAL the primary has written and the
    replica not replayed; ``lag_seconds`` since the last transaction it replayed was
    committed, while it has WAL to replay (0 when it has none)."""

    alias: str
    healthy: bool
    checked_at: datetime.datetime
    paused: bool = False
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    error: str = ""

    @property
    def name(self) -> str:
        return source_name(self.alias)


class _Health:
    """The replicas' last health check in this process, and the turn for choosing."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checked_at = -HEALTH_INTERVAL
        self.primary_lsn: str | None = None  # the primary's position at the last check
        self.states: dict[str, ReplicaState] = {}
        self.turn = itertools.count()


_health = _Health()

_PRIMARY_POSITION = "SELECT pg_current_wal_lsn()::text"
_REPLICA_POSITION = (
    "SELECT pg_is_in_recovery(), pg_is_wal_replay_paused(),"
    " coalesce(pg_last_wal_replay_lsn() >= %(before)s::pg_lsn, false),"
    " greatest(pg_wal_lsn_diff(%(now)s::pg_lsn, pg_last_wal_replay_lsn()), 0)::bigint,"
    " CASE WHEN pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()"
    " THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp()) ELSE 0 END"
)


def _primary_position() -> str:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_PRIMARY_POSITION)
        return cursor.fetchone()[0]


def check_replica(alias: str, *, now: str, before: str | None = None) -> ReplicaState:
    """The health of ``alias``: healthy when it answers, replays, and has replayed the
    primary's position ``before`` (``now`` when none: a first check)."""
    checked_at = datetime.datetime.now(datetime.UTC)
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(_REPLICA_POSITION, {"before": before or now, "now": now})
            in_recovery, paused, caught_up, lag_bytes, lag_seconds = cursor.fetchone()
    except DatabaseError as error:
        forget_connection(alias)
        return ReplicaState(alias, False, checked_at, error=str(error).strip())
    if not in_recovery:
        return ReplicaState(alias, False, checked_at, error="not a standby (promoted?)")
    return ReplicaState(
        alias,
        bool(caught_up and not paused),
        checked_at,
        paused=paused,
        lag_bytes=int(lag_bytes),
        lag_seconds=float(lag_seconds or 0),
        error="replay paused" if paused else "" if caught_up else "behind",
    )


def replica_states(*, fresh: bool = False) -> list[ReplicaState]:
    """Each replica's health: as this process last checked it, at most HEALTH_INTERVAL
    ago, or checked now with ``fresh``."""
    aliases = replica_aliases()
    if not aliases:
        return []
    with _health.lock:
        due = fresh or time.monotonic() - _health.checked_at >= HEALTH_INTERVAL
        if due or set(_health.states) != set(aliases):
            now = _primary_position()
            before = _health.primary_lsn
            _health.states = {
                alias: check_replica(alias, now=now, before=before) for alias in aliases
            }
            _health.primary_lsn = now
            _health.checked_at = time.monotonic()
        return [_health.states[alias] for alias in aliases]


def forget_connection(alias: str) -> None:
    """Drop a replica's connection after it failed, so the next use connects afresh."""
    connections[alias].close()


def mark_unhealthy(alias: str, reason: str) -> None:
    """Skip ``alias`` until the next health check finds it well again."""
    with _health.lock:
        _health.states[alias] = ReplicaState(
            alias, False, datetime.datetime.now(datetime.UTC), error=reason
        )


def choose() -> str | None:
    """A healthy replica for this request, each in turn; None when there is none."""
    healthy = [state.alias for state in replica_states() if state.healthy]
    if not healthy:
        return None
    return healthy[next(_health.turn) % len(healthy)]


# --- answering -----------------------------------------------------------------------


def answer(handler: Callable[[], HttpResponse]) -> HttpResponse:
    """``handler``'s response, its read models read on a healthy replica when there is
    one, else on the primary; it says which in X-Read-Model-Source.

    ``handler`` may run twice: once on the replica, and again on the primary (or again
    on the replica once it has caught up) when the first try needs it.
    """
    deadline = _deadline.set(time.monotonic() + settings.READ_MODEL_MAX_WAIT)
    try:
        alias = choose()
        if alias is None:
            return on_primary(handler)
        try:
            return _answer_on(alias, handler)
        except NotCovered as pending:
            if _catches_up(alias, pending):
                with contextlib.suppress(NotCovered):
                    return _answer_on(alias, handler)
        except DatabaseError as error:
            # Gone, or a query cancelled by a recovery conflict: the primary answers.
            logger.warning("Replica %s failed a query, the primary answers: %s", alias, error)
            forget_connection(alias)
            if getattr(error.__cause__, "pgcode", None) != RECOVERY_CONFLICT:
                mark_unhealthy(alias, str(error).strip())
        return on_primary(handler)
    finally:
        _deadline.reset(deadline)


def on_primary(handler: Callable[[], HttpResponse]) -> HttpResponse:
    """``handler``'s response read on the primary, saying so in X-Read-Model-Source."""
    return _answer_on(DEFAULT_DB_ALIAS, handler)


def _answer_on(alias: str, handler: Callable[[], HttpResponse]) -> HttpResponse:
    with reading_from(alias):
        if alias == DEFAULT_DB_ALIAS:
            response = handler()
        else:
            # One snapshot for the token's check and every read of the answer.
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                response = handler()
    response[SOURCE_HEADER] = source_name(alias)
    return response


def _catches_up(alias: str, pending: NotCovered) -> bool:
    """Wait for the write on the primary (notified), then poll the replica for at most
    READ_MODEL_REPLICA_CATCH_UP seconds; True once the replica shows it."""
    from orders_read import freshness  # it imports this module

    with reading_from(DEFAULT_DB_ALIAS):
        if not freshness.wait_until(pending.check):
            return False
    give_up = time.monotonic() + min(settings.READ_MODEL_REPLICA_CATCH_UP, remaining_wait())
    pause = 0.001
    try:
        with reading_from(alias):
            while not pending.check():
                if time.monotonic() + pause > give_up:
                    return False
                time.sleep(pause)  # replay takes a millisecond or two; polls are cheap
                pause = min(pause * 2, 0.02)
    except DatabaseError as error:
        forget_connection(alias)
        mark_unhealthy(alias, str(error).strip())
        return False
    return True
