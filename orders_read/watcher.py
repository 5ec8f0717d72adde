"""The background refresher behind ``refresh_views --watch`` (READ_MODEL_REFRESH=async).

It LISTENs for writes' notifications and refreshes the units they name (coalesced
with every other refresher through ``refresh``), and every ``interval`` seconds
refreshes any unit that is behind the event log, so that a lost notification or a
failed refresh is repaired. A second thread rebuilds the base of any unit whose delta
has grown past READ_MODEL_DELTA_LIMIT rows, so that deltas stay small while bases take
their seconds. It survives the database going away and coming back.
"""

from __future__ import annotations

import contextlib
import logging
import select
import signal
import threading
import time
from collections.abc import Callable, Sequence

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.utils import InterfaceError

from orders_read import refresh

logger = logging.getLogger(__name__)


def _drain(raw) -> set[str]:
    """Unit names from the notifications received so far."""
    raw.poll()
    names: set[str] = set()
    for notify in raw.notifies:
        names.update(filter(None, notify.payload.split(",")))
    raw.notifies.clear()
    return names


def _compact_while(
    watched: set[str], stop: threading.Event, log: Callable[[str], object], every: float
) -> None:
    """Rebuild the bases of watched units whose delta is over the limit, until ``stop``."""
    try:
        while not stop.wait(every):
            try:
                due = [unit for unit in refresh.units_to_compact() if unit in watched]
                for outcome in refresh.compact(due):
                    log(f"{outcome} (delta over {settings.READ_MODEL_DELTA_LIMIT} rows)")
            except (DatabaseError, InterfaceError) as error:
                log(f"compacting: database unavailable ({str(error).strip()})")
                with contextlib.suppress(DatabaseError, InterfaceError):
                    connection.close()
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
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    watched = set(units)

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
    while not stop.is_set():
        try:
            connection.ensure_connection()
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {refresh.DIRTY_CHANNEL}")
            raw = connection.connection
            refresh_now(refresh.units_behind(sorted(watched)), why="catching up")
            next_check = time.monotonic() + interval
            backoff = 0.5
            while not stop.is_set():
                select.select([raw], [], [], max(0.0, min(next_check - time.monotonic(), 1.0)))
                requested = _drain(raw) & watched
                for unit in sorted(requested):
                    # Only while still dirty: another refresher may have done it already.
                    for outcome in refresh.refresh_unit(unit):
                        log(str(outcome))
                if time.monotonic() >= next_check:
                    refresh_now(refresh.units_behind(sorted(watched)), why="safety check")
                    next_check = time.monotonic() + interval
        except (DatabaseError, InterfaceError) as error:
            log(f"database unavailable ({str(error).strip()}); retrying in {backoff:g} s")
            with contextlib.suppress(DatabaseError, InterfaceError):
                connection.close()
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)
    connection.close()
    compactor.join(timeout=5)  # a rebuild in progress dies with our connection
    log("watcher stopped")
