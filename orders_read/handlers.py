"""Signal receivers: after a write commits, refresh the read models its events touch."""

from __future__ import annotations

import threading
from collections import OrderedDict

from orders_read import read_models, refresh
from orders_write.events import Event

_RECENT_LIMIT = 10_000
_recent: OrderedDict[tuple[int, str], None] = OrderedDict()
_recent_lock = threading.Lock()


def _first_time(transaction_id: int, unit: str) -> bool:
    """True once per (transaction, unit) in this process: a view refreshed after a
    transaction committed already shows every write of that transaction."""
    key = (transaction_id, unit)
    with _recent_lock:
        if key in _recent:
            return False
        _recent[key] = None
        if len(_recent) > _RECENT_LIMIT:
            _recent.popitem(last=False)
    return True


def on_events_committed(
    sender: object, *, events: tuple[Event, ...], transaction_id: int, **kwargs: object
) -> None:
    units = read_models.showing(event.kind for event in events)
    refresh.request_refresh([unit for unit in units if _first_time(transaction_id, unit)])
