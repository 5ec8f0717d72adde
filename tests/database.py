"""What the write tables hold, emptying them, and connections of a test's own: to prove
a refused command wrote nothing, and to hold locks or write from other sessions."""

import threading

from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders_read.read_models import READ_MODELS
from orders_read.refresh import LOCK_NAMESPACE
from orders_write.models import Allocation, Batch, Event, Order, OrderLine, Product

WRITE_TABLES = (Product, Batch, Order, OrderLine, Allocation, Event)


def queries_made(client, path: str) -> int:
    """How many queries a page (or API answer) at ``path`` makes; it must answer 200."""
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


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


def empty_write_tables() -> None:
    """Delete every row of the write tables, at once: the services commit, so a test that
    starts over many times (a state machine's examples) cannot roll back instead."""
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in WRITE_TABLES)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} CASCADE")


def database_state() -> dict[str, list]:
    """Every row of every write table, to prove a refused command wrote nothing."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in WRITE_TABLES}


def other_connection():
    """A second, raw connection to the test database (autocommit off)."""
    return connection.get_new_connection(connection.get_connection_params())


def hold_view_lock(view: str):
    """Another session that holds the ACCESS EXCLUSIVE lock of the view's delta (which
    every refresh rewrites) until rolled back."""
    blocker = other_connection()
    with blocker.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {READ_MODELS[view].delta} IN ACCESS EXCLUSIVE MODE")
    return blocker


def hold_refresh_lock(unit: str):
    """Another session that holds the unit's advisory lock, as a refresh in flight does,
    until closed."""
    holder = other_connection()
    holder.autocommit = True
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [LOCK_NAMESPACE, unit])
    return holder


def refresh_waiting_for_a_lock(view: str | None = None) -> int | None:
    """The backend of a refresh that waits for a lock on the view's delta (any view's by
    default), not the one holding it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE %s AND wait_event_type = 'Lock'"
            " AND pid <> pg_backend_pid() AND datname = current_database()",
            [f"%{READ_MODELS[view].delta if view else '_delta'}%"],
        )
        row = cursor.fetchone()
    return row and row[0]


def run_threads(target, count: int) -> list[threading.Thread]:
    """Start ``count`` threads running ``target``, each closing its own connection."""

    def run():
        try:
            target()
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads
