"""The commands the write side accepts: one frozen dataclass each, handled by one service."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class Command:
    pass


@dataclass(frozen=True)
class CreateProduct(Command):
    sku: str
    name: str
    price: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class NewProduct:
    name: str
    price: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class CreateBatch(Command):
    """Receive a batch. An unknown SKU creates its product: ``new_product`` when given,
    else (the API's way) named after the SKU at price 0, unless ``known_sku_only``."""

    ref: str
    sku: str
    qty: int
    eta: datetime.date | None = None
    new_product: NewProduct | None = None
    known_sku_only: bool = False


@dataclass(frozen=True)
class ChangeBatchQuantity(Command):
    ref: str
    qty: int


@dataclass(frozen=True)
class OrderLineInput:
    sku: str
    qty: int


@dataclass(frozen=True)
class PlaceOrder(Command):
    customer: str
    shipping_address: str
    lines: tuple[OrderLineInput, ...] = field(default_factory=tuple)
    reference: str | None = None


@dataclass(frozen=True)
class SubmitOrder(Command):
    reference: str


@dataclass(frozen=True)
class CancelOrder(Command):
    reference: str


@dataclass(frozen=True)
class Allocate(Command):
    """Add a line to an order and allocate it. A new reference creates a submitted order
    without customer (the API's way), unless ``existing_order_only``."""

    orderid: str
    sku: str
    qty: int
    existing_order_only: bool = False


@dataclass(frozen=True)
class Deallocate(Command):
    orderid: str
    sku: str


@dataclass(frozen=True)
class AddLine(Command):
    """Add a line to a pending or submitted order; a submitted order's is allocated."""

    reference: str
    sku: str
    qty: int


@dataclass(frozen=True)
class ChangeLineQuantity(Command):
    """Change a line's quantity; an allocated line, or any of a submitted order, is
    allocated again."""

    reference: str
    sku: str
    qty: int


@dataclass(frozen=True)
class RemoveLine(Command):
    """Remove a line from a pending or submitted order, releasing its allocation."""

    reference: str
    sku: str
