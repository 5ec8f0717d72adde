"""An order's history in words: one sentence per event of the log, saying why a line
was allocated or released when another event of the same command tells it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orders_read.models import OrderEvent


def _units(payload: Mapping[str, Any]) -> str:
    return f"{payload.get('qty')} x {payload.get('sku')}"


def _skus(skus: list[str]) -> str:
    return ", ".join(skus) if skus else "no lines yet"


def _kind_in_words(kind: str) -> str:
    """ "BatchCreated" -> "batch created": for events this module has no sentence for."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", kind).lower()


def reason(event: OrderEvent) -> str | None:
    """Why an allocation, a release or a line out of stock happened ("because batch B-1
    was reduced to 40"), from the event of the same command that caused it; None when
    the command itself is all there is to say."""
    cause, kind = event.cause_payload or {}, event.cause_kind
    if kind is None:
        return "on request" if event.kind == "Deallocated" else None
    if kind == "OrderCancelled":
        return "because the order was cancelled"
    if kind == "BatchCreated":
        return f"when batch {cause.get('ref')} was received"
    if kind == "LineAdded":
        return "when the line was added"
    if kind == "LineQuantityChanged":
        return f"because the line's quantity changed to {cause.get('qty')}"
    if kind == "LineRemoved":
        return "because the line was removed"
    if kind == "BatchQuantityChanged":
        change = "reduced" if cause.get("qty", 0) < cause.get("previous_qty", 0) else "raised"
        connective = "because" if event.kind == "Deallocated" else "when"
        return f"{connective} batch {cause.get('ref')} was {change} to {cause.get('qty')}"
    return f"({_kind_in_words(kind)})"


def describe(event: OrderEvent) -> str:
    """The event as a sentence a clerk reads in the order's timeline."""
    payload = event.payload
    match event.kind:
        case "OrderPlaced" if payload.get("customer"):
            return f"Placed for {payload['customer']}: {_skus(payload.get('skus', []))}."
        case "OrderPlaced":
            return "Placed, submitted at once, by allocating a line to a new order."
        case "OrderSubmitted":
            return "Submitted."
        case "OrderCancelled":
            return "Cancelled."
        case "Allocated":
            sentence = f"Allocated {_units(payload)} from batch {payload.get('batchref')}"
        case "Deallocated":
            sentence = f"Released {_units(payload)} from batch {payload.get('batchref')}"
        case "LineAdded":
            return f"Line added: {_units(payload)}."
        case "LineQuantityChanged":
            return (
                f"Quantity of {payload.get('sku')} changed from {payload.get('previous_qty')}"
                f" to {payload.get('qty')}."
            )
        case "LineRemoved":
            return f"Line removed: {_units(payload)}."
        case "OutOfStock":
            sentence = f"Out of stock: no batch could hold {_units(payload)}"
        case _:
            return f"{_kind_in_words(event.kind).capitalize()}."
    why = reason(event)
    return f"{sentence} {why}." if why else f"{sentence}."
