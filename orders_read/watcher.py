"""The background refresher behind ``refresh_views --watch`` (READ_MODEL_REFRESH=async).

It LISTENs for writes' notifications and refreshes the units they name (coalesced
with every other refresher through ``refresh``), and every ``interval`` seconds
refreshes any unit that is behind the event log, so that a lost notification or a
failed refresh is repaired. A second thread rebuilds the base of any unit whose delta
has grown past a tenth of it (or READ_MODEL_DELTA_LIMIT rows), so that reads stay on
the base while bases take their seconds.

It survives losing its database connection, however it is lost (a restart, a failover,
``pg_terminate_backend``): it reconnects with backoff and catches up from the event log.
Every second it writes a heartbeat to ``read_model_watcher``, so that the read-models
page and API show a watcher that died or is stuck; `make run` restarts one that dies.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.utils import InterfaceError
from django.utils import timezone

from orders_read import freshness, rebuilds, refresh

logger = logging.getLogger(__name__)

# The names the watcher's database sessions carry in pg_stat_activity: its own, and its
# compactor's (so that what each costs can be told apart).
APPLICATION_NAME = "quartermaster watcher"
COMPACTOR_NAME = f"{APPLICATION_NAME} compactor"
HEARTBEAT_EVERY = 1.0
# A watcher whose heartbeat is older than this has died or is stuck.
SILENT_AFTER = datetime.timedelta(seconds=10)
# What losing the connection raises: through a Django cursor, Django's wrappers; from
# the raw connection's poll() and select(), psycopg2's own errors, which
# ``connection.wrap_database_errors`` turns into Django's; a socket gone under select().
_CONNECTION_LOST = (DatabaseError, InterfaceError, OSError)


_named = threading.local()


def _connect(name: str = APPLICATION_NAME) -> None:
    """Open this thread's connection unless it is open, named so that operators find it
    (also one that Django reopened by itself after an error)."""
    connection.ensure_connection()
    if getattr(_named, "raw", None) is not connection.connection:
        with connection.cursor() as cursor:
            cursor.execute("SET application_name = %s", [name])
        _named.raw = connection.connection


def _disconnect() -> None:
    with contextlib.suppress(*_CONNECTION_LOST):
        connection.close()


def _wait_for_notifications(timeout: float, wake: int) -> list[tuple[int | None, list[str]]]:
    """The requests (``refresh.parse_announcement``) that arrive within ``timeout``
    seconds, or until something is written to the file descriptor ``wake``; at once
    those that arrived while we were busy."""
    with connection.wrap_database_errors:
        raw = connection.connection
        raw.poll()
        if not raw.notifies:
            select.select([raw, wake], [], [], timeout)
            raw.poll()
        requests = [refresh.parse_announcement(notify.payload) for notify in raw.notifies]
        raw.notifies.clear()
    return requests


class Pace:
    """Spaces rounds of refreshes so that, under load, they keep the watcher busy at most
    ``share`` of the time: a round that took ``t`` seconds is followed by a rest of
    ``t * (1 / share - 1)``, at most MAX_REST. The first round after a quiet spell starts
    at once. A round's time is its wall time, which on a busy machine overstates what it
    cost (its database session waits for a core too): the cap keeps the read-your-writes
    wait short there."""

    MAX_REST = 0.1

    def __init__(self, share: float) -> None:
        self.share = share
        self.started = self.resting_until = 0.0

    def rest(self) -> float:
        """Seconds until the next round may start."""
        return self.resting_until - time.monotonic()

    def start(self) -> None:
        self.started = time.monotonic()

    def end(self) -> None:
        busy = time.monotonic() - self.started
        self.resting_until = time.monotonic() + min(busy * (1 / self.share - 1), self.MAX_REST)


class Owed:
    """The writes announced to this watcher that its units do not show yet, per unit;
    ``None`` stands for a bare request (``mark_dirty``)."""

    def __init__(self, watched: set[str]) -> None:
        self.watched = watched
        self.writes: dict[str, set[int | None]] = {}

    def add(self, requests: list[tuple[int | None, list[str]]]) -> None:
        for transaction_id, names in requests:
            for name in set(names) & self.watched:
                self.writes.setdefault(name, set()).add(transaction_id)

    def due(self) -> dict[str, set[int | None]]:
        """The units whose last refresh misses one of their writes (one query), and
        forget the rest: a refresh that began after a write's commit already shows it,
        so under load one refresh serves every write announced while it ran."""
        if not self.writes:
            return {}
        shown = refresh.snapshots(self.writes)
        due = {}
        for unit, writes in self.writes.items():
            missed = {
                transaction_id
                for transaction_id in writes
                if transaction_id is None
                or not refresh.snapshot_shows(shown.get(unit, ""), transaction_id)
            }
            if missed:
                due[unit] = missed
        self.writes = {}
        return due


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's
    return True


class Heartbeat:
    """This watcher's row in ``read_model_watcher``."""

    def __init__(self, units: Sequence[str]) -> None:
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.name = f"{self.host}:{self.pid}"
        self.units = ",".join(sorted(units))
        self.started_at = timezone.now()
        self.next_beat = 0.0

    def beat(self) -> None:
        """Say we are alive, at most every HEARTBEAT_EVERY seconds."""
        if time.monotonic() < self.next_beat:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO read_model_watcher (name, host, pid, units, started_at, heartbeat_at)"
                " VALUES (%s, %s, %s, %s, %s, now())"
                " ON CONFLICT (name) DO UPDATE SET heartbeat_at = now()",
                [self.name, self.host, self.pid, self.units, self.started_at],
            )
        self.next_beat = time.monotonic() + HEARTBEAT_EVERY

    def forget_the_dead(self) -> None:
        """Delete the rows of watchers that died: those of this host whose process is gone,
        and any that stopped beating (`make run`, or whoever supervises them, has started
        us instead)."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM read_model_watcher WHERE host = %s", [self.host])
            gone = [pid for (pid,) in cursor.fetchall() if not _process_exists(pid)]
            cursor.execute(
                "DELETE FROM read_model_watcher WHERE name <> %s"
                " AND (heartbeat_at < now() - %s OR (host = %s AND pid = ANY(%s)))",
                [self.name, SILENT_AFTER, self.host, gone],
            )

    def end(self) -> None:
        with contextlib.suppress(*_CONNECTION_LOST), connection.cursor() as cursor:
            cursor.execute("DELETE FROM read_model_watcher WHERE name = %s", [self.name])


def _compact_while(
    watched: set[str], stop: threading.Event, log: Callable[[str], object], every: float
) -> None:
    """Rebuild the bases of watched units whose delta is over the limit, until ``stop``."""
    try:
        while not stop.wait(every):
            try:
                _connect(COMPACTOR_NAME)
                due = [unit for unit in rebuilds.units_to_compact() if unit in watched]
                for outcome in rebuilds.compact(due):
                    log(f"{outcome} (asked for, or the delta outgrew a tenth of the base)")
            except _CONNECTION_LOST as error:
                log(f"compacting: database unavailable ({str(error).strip()})")
                _disconnect()
    finally:
        connection.close()


def watch(
    units: Sequence[str],
    *,
    interval: float | None = None,
    log: Callable[[str], object] = logger.info,
    stop: threading.Event | None = None,
) -> None:
    """Keep ``units`` fresh until ``stop`` is set (or SIGTERM/SIGINT in the main thread)."""
    interval = interval or settings.READ_MODEL_WATCH_INTERVAL
    stop = stop or threading.Event()
    # A signal wakes the wait for notifications at once, so that stopping takes no second.
    wake, woken = os.pipe()
    if threading.current_thread() is threading.main_thread():

        def stop_now(*_) -> None:
            stop.set()
            os.write(woken, b".")

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop_now)
    watched = set(units)
    heartbeat = Heartbeat(units)

    def refresh_now(names: Sequence[str], *, why: str) -> None:
        for outcome in refresh.refresh(names, wait=False):
            log(f"{outcome} ({why})")

    log(f"watching {', '.join(sorted(watched))}; safety check every {interval:g} s")
    compactor = threading.Thread(
        target=_compact_while,
        args=(watched, stop, log, min(interval, 1.0)),
        name="compactor",
        daemon=True,
    )
    compactor.start()
    backoff = 0.5
    owed = Owed(watched)
    pace = Pace(settings.READ_MODEL_WATCHER_SHARE)
    while not stop.is_set():
        try:
            _connect()
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {refresh.DIRTY_CHANNEL}")
            listening = connection.connection
            heartbeat.beat()
            heartbeat.forget_the_dead()
            refresh_now(freshness.units_behind(sorted(watched)), why="catching up")
            next_check = time.monotonic() + interval
            backoff = 0.5
            while not stop.is_set():
                if connection.connection is not listening:
                    # A refresh lost the connection and Django opened a new one, which
                    # does not LISTEN: notifications sent meanwhile went nowhere.
                    log("database unavailable (connection lost and reopened); listening again")
                    _disconnect()
                    break
                # With writes owed, wait only for the rest to end: announcements that
                # come meanwhile gather, and the next round serves them all.
                timeout = min(next_check - time.monotonic(), HEARTBEAT_EVERY)
                if owed.writes:
                    timeout = min(timeout, pace.rest())
                owed.add(_wait_for_notifications(max(0.0, timeout), wake))
                if owed.writes and pace.rest() <= 0:
                    pace.start()
                    due = owed.due()
                    # The units written to are refreshed together, in one transaction.
                    announced = {unit: writes - {None} for unit, writes in due.items()}
                    outcomes = refresh.catch_up_together(
                        {unit: writes for unit, writes in announced.items() if writes},
                        max_wait=interval,
                    )
                    for unit in sorted(unit for unit, writes in announced.items() if not writes):
                        # Only while still dirty: another refresher may have done it.
                        outcomes += refresh.refresh_unit(unit, wait=True)
                    for outcome in outcomes:
                        log(str(outcome))
                    pace.end()
                if time.monotonic() >= next_check:
                    refresh_now(freshness.units_behind(sorted(watched)), why="safety check")
                    next_check = time.monotonic() + interval
                heartbeat.beat()
        except _CONNECTION_LOST as error:
            log(f"database unavailable ({str(error).strip()}); retrying in {backoff:g} s")
            _disconnect()
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)
    heartbeat.end()
    connection.close()
    os.close(wake)
    os.close(woken)
    compactor.join(timeout=5)  # a rebuild in progress dies with our connection
    log("watcher stopped")
