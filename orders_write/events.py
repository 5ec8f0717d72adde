"""Domain events: one frozen dataclass each, and the signals they go out on after commit.

Each committed event is sent on ``event_committed`` with the event's class as sender,
so a receiver can listen to one kind (``sender=Allocated``) or to all. After the events
of a command, ``events_committed`` carries them together with the writing transaction's
id, for receivers that act once per transaction.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from django.dispatch import Signal

# kwargs: event, transaction_id
event_committed = Signal()
# kwargs: events (a tuple), transaction_id
events_committed = Signal()
# Rows were bulk-loaded around the services (seed_demo), so no event tells of them:
# receivers rebuild what they derive from the tables, and may return a list of what
# they did. kwargs: load (what was loaded)
bulk_loaded = Signal()

_TOKEN_PREFIX = "qm1-"


def consistency_token(transaction_id: int) -> str:
    """The token a command answers with: it names the transaction that wrote."""
    return f"{_TOKEN_PREFIX}{transaction_id}"


def transaction_id_from_token(token: str) -> int:
    """The writing transaction a consistency token names; ValueError when malformed."""
    token = token.strip()
    digits = token.removeprefix(_TOKEN_PREFIX)
    if digits == token or not digits.isascii() or not digits.isdigit() or len(digits) > 19:
        raise ValueError(f"malformed consistency token {token!r}")
    return int(digits)


@dataclass(frozen=True)
class Event:
    registry: ClassVar[dict[str, type[Event]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Event.registry[cls.__name__] = cls

    @property
    def kind(self) -> str:
        return type(self).__name__

    def as_payload(self) -> dict[str, Any]:
        """The event as JSON-ready values (dates as ISO strings, decimals as strings)."""
        payload = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, datetime.date):
                value = value.isoformat()
            elif isinstance(value, Decimal):
                value = str(value)
            payload[item.name] = value
        return payload


@dataclass(frozen=True)
class ProductCreated(Event):
    sku: str
    name: str
    price: Decimal


@dataclass(frozen=True)
class BatchCreated(Event):
    ref: str
    sku: str
    qty: int
    eta: datetime.date | None


@dataclass(frozen=True)
class BatchQuantityChanged(Event):
    ref: str
    sku: str
    qty: int
    previous_qty: int


@dataclass(frozen=True)
class OrderPlaced(Event):
    reference: str
    customer: str
    skus: tuple[str, ...]
    status: str


@dataclass(frozen=True)
class OrderSubmitted(Event):
    reference: str


@dataclass(frozen=True)
class OrderCancelled(Event):
    reference: str


@dataclass(frozen=True)
class Allocated(Event):
    orderid: str
    sku: str
    qty: int
    batchref: str


@dataclass(frozen=True)
class Deallocated(Event):
    orderid: str
    sku: str
    qty: int
    batchref: str


@dataclass(frozen=True)
class OutOfStock(Event):
    sku: str
    orderid: str
    qty: int


@dataclass(frozen=True)
class LineAdded(Event):
    reference: str
    sku: str
    qty: int
    unit_price: Decimal


@dataclass(frozen=True)
class LineQuantityChanged(Event):
    reference: str
    sku: str
    qty: int
    previous_qty: int


@dataclass(frozen=True)
class LineRemoved(Event):
    reference: str
    sku: str
    qty: int
