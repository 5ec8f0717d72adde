"""Helpers for write-side tests: arrange through the services, inspect the tables."""

import datetime

import pytest
from django.db import connection

from orders_write import commands, services
from orders_write.models import Allocation, Batch, Event, Order, OrderLine, Product

TODAY = datetime.date(2026, 11, 24)
TOMORROW = TODAY + datetime.timedelta(days=1)
LATER = TODAY + datetime.timedelta(days=10)


def add_batch(ref: str, sku: str, qty: int, eta: datetime.date | None = None):
    return services.create_batch(commands.CreateBatch(ref=ref, sku=sku, qty=qty, eta=eta))


def place(reference: str, *lines: tuple[str, int], customer: str = "Ada Lovelace"):
    return services.place_order(
        commands.PlaceOrder(
            customer=customer,
            shipping_address="12 St James's Square, London",
            lines=tuple(commands.OrderLineInput(sku=sku, qty=qty) for sku, qty in lines),
            reference=reference,
        )
    )


def allocation_of(orderid: str, sku: str) -> str | None:
    """The batch reference holding the order's line for ``sku``, or None."""
    return (
        Allocation.objects.filter(line__order__reference=orderid, line__product_id=sku)
        .values_list("batch__reference", flat=True)
        .first()
    )


def allocated_quantity(batch_ref: str) -> int:
    return sum(
        Allocation.objects.filter(batch__reference=batch_ref).values_list(
            "line__quantity", flat=True
        )
    )


def version(sku: str) -> int:
    return Product.objects.get(sku=sku).version


def event_names() -> list[str]:
    return list(Event.objects.order_by("id").values_list("name", flat=True))


WRITE_TABLES = (Product, Batch, Order, OrderLine, Allocation, Event)


def empty_write_tables() -> None:
    """Delete every row of the write tables, at once: the services commit, so a test that
    starts over many times (a state machine's examples) cannot roll back instead."""
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in WRITE_TABLES)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} CASCADE")


def database_state() -> dict[str, list]:
    """Every row of every write table, to prove a refused command wrote nothing."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in WRITE_TABLES}


@pytest.fixture
def unchanged(db):
    """Use as ``with unchanged(): ...`` around a command that must write nothing."""
    from contextlib import contextmanager

    @contextmanager
    def check():
        before = database_state()
        yield
        assert database_state() == before

    return check
