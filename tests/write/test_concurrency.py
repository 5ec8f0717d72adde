"""Real threads, each with its own database connection, racing on the same stock."""

import logging
import threading
from collections.abc import Callable

import pytest
from django.db import connection

from orders_write import commands, services
from orders_write.models import Allocation, Batch, Event, Product
from tests.database import allocated_quantity
from tests.factories import TOMORROW, add_batch, place

pytestmark = pytest.mark.django_db(transaction=True)


def run_at_once(tasks: list[Callable[[], object]]) -> list[BaseException]:
    """Run every task in its own thread, released together; return what they raised."""
    barrier = threading.Barrier(len(tasks))
    errors: list[BaseException] = []

    def run(task):
        try:
            barrier.wait(timeout=30)
            task()
        except BaseException as error:  # collected for the test to assert on
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def test_sixty_clients_never_oversell_thirty_units():
    add_batch("warehouse", "LAMP", 10)
    add_batch("ship-1", "LAMP", 10, TOMORROW)
    add_batch("ship-2", "LAMP", 10, TOMORROW)

    def allocate_one(orderid):
        return lambda: services.allocate(commands.Allocate(orderid=orderid, sku="LAMP", qty=1))

    errors = run_at_once([allocate_one(f"order-{number}") for number in range(60)])

    assert errors == []
    assert Allocation.objects.count() == 30
    for batch in Batch.objects.all():
        assert allocated_quantity(batch.reference) == batch.purchased_quantity == 10
    allocation_events = Event.objects.filter(name="Allocated").count()
    assert allocation_events == 30
    assert Event.objects.filter(name="OutOfStock").count() == 30
    assert Product.objects.get(sku="LAMP").version == allocation_events


def test_orders_spanning_the_same_skus_never_deadlock(caplog):
    add_batch("lamps", "LAMP", 10_000)
    add_batch("chairs", "CHAIR", 10_000)
    caplog.set_level(logging.WARNING, logger="orders_write.services")

    for round_number in range(25):
        first, second = f"a-{round_number}", f"b-{round_number}"
        place(first, ("LAMP", 1), ("CHAIR", 1))
        place(second, ("CHAIR", 1), ("LAMP", 1))
        errors = run_at_once(
            [
                lambda reference=first: services.submit_order(commands.SubmitOrder(reference)),
                lambda reference=second: services.submit_order(commands.SubmitOrder(reference)),
            ]
        )
        assert errors == []

    assert Allocation.objects.count() == 100
    # Not even a retried deadlock: the locks are always taken in the same order.
    assert "retrying" not in caplog.text


def test_concurrent_cancels_and_batch_changes_keep_batches_within_quantity():
    add_batch("warehouse", "LAMP", 20)
    add_batch("ship", "LAMP", 20, TOMORROW)
    for number in range(20):
        services.allocate(commands.Allocate(orderid=f"o{number}", sku="LAMP", qty=2))

    tasks = [
        lambda number=number: services.cancel_order(commands.CancelOrder(f"o{number}"))
        for number in range(0, 20, 2)
    ] + [
        lambda qty=qty: services.change_batch_quantity(
            commands.ChangeBatchQuantity(ref="warehouse", qty=qty)
        )
        for qty in (3, 15, 7, 11)
    ]
    errors = run_at_once(tasks)

    assert errors == []
    for batch in Batch.objects.all():
        assert allocated_quantity(batch.reference) <= batch.purchased_quantity


def test_same_new_order_allocated_from_many_threads_is_created_once():
    add_batch("lamps", "LAMP", 100)
    add_batch("chairs", "CHAIR", 100)
    add_batch("desks", "DESK", 100)

    tasks = [
        lambda sku=sku: services.allocate(commands.Allocate(orderid="shared", sku=sku, qty=1))
        for sku in ("LAMP", "CHAIR", "DESK") * 3
    ]
    errors = run_at_once(tasks)

    assert errors == []
    assert Event.objects.filter(name="OrderPlaced").count() == 1
    assert Allocation.objects.filter(line__order__reference="shared").count() == 3


def test_stock_arriving_while_orders_are_submitted_and_cancelled_is_never_oversold():
    services.create_product(commands.CreateProduct(sku="LAMP", name="Lamp"))
    for number in range(30):
        place(f"o{number}", ("LAMP", 1 + number % 3))
    for number in range(10):  # waiting already when the stock starts to arrive
        services.submit_order(commands.SubmitOrder(reference=f"o{number}"))

    tasks = (
        [
            lambda number=number: services.submit_order(commands.SubmitOrder(f"o{number}"))
            for number in range(10, 30)
        ]
        + [
            lambda number=number: services.cancel_order(commands.CancelOrder(f"o{number}"))
            for number in range(0, 30, 4)
        ]
        + [
            lambda number=number: services.create_batch(
                commands.CreateBatch(ref=f"arrival-{number}", sku="LAMP", qty=5)
            )
            for number in range(4)
        ]
        + [
            lambda: services.change_batch_quantity(
                commands.ChangeBatchQuantity(ref="arrival-0", qty=9)
            )
        ]
    )
    errors = run_at_once(tasks)

    # A quantity change may come before its batch exists, a submit after its order's
    # cancel; nothing else may fail.
    expected = ("Unknown batch arrival-0", " is cancelled")
    assert all(any(text in str(error) for text in expected) for error in errors), errors
    for batch in Batch.objects.all():
        assert allocated_quantity(batch.reference) <= batch.purchased_quantity
    # No line is held twice, and no cancelled order holds stock.
    line_ids = list(Allocation.objects.values_list("line_id", flat=True))
    assert len(line_ids) == len(set(line_ids))
    assert not Allocation.objects.filter(line__order__status="cancelled").exists()
    # Arriving stock went to waiting lines, in the transactions that brought it.
    arrivals = Event.objects.filter(name__in=["BatchCreated", "BatchQuantityChanged"])
    assert Event.objects.filter(
        name="Allocated", transaction_id__in=arrivals.values("transaction_id")
    ).exists()
    # Every allocation is told by the event log.
    told = Event.objects.filter(name="Allocated").count()
    untold = Event.objects.filter(name="Deallocated").count()
    assert told - untold == len(line_ids)


def test_changing_lines_while_stock_is_reallocated_never_oversells(caplog):
    add_batch("warehouse", "LAMP", 20)
    add_batch("ship", "LAMP", 20, TOMORROW)
    add_batch("chairs", "CHAIR", 100)
    for number in range(12):
        place(f"o{number}", ("LAMP", 2), ("CHAIR", 1))
        services.submit_order(commands.SubmitOrder(f"o{number}"))
    caplog.set_level(logging.WARNING, logger="orders_write.services")

    tasks = (
        [
            lambda number=number, qty=qty: services.change_line_quantity(
                commands.ChangeLineQuantity(f"o{number}", "LAMP", qty)
            )
            for number, qty in zip(range(0, 6), (9, 1, 7, 12, 3, 5), strict=True)
        ]
        + [
            lambda number=number: services.remove_line(commands.RemoveLine(f"o{number}", "LAMP"))
            for number in range(6, 9)
        ]
        + [
            lambda number=number: services.remove_line(commands.RemoveLine(f"o{number}", "CHAIR"))
            for number in range(9, 12)
        ]
        + [
            lambda qty=qty: services.change_batch_quantity(
                commands.ChangeBatchQuantity(ref="warehouse", qty=qty)
            )
            for qty in (4, 18, 9)
        ]
    )
    errors = run_at_once(tasks)

    assert errors == []
    for batch in Batch.objects.all():
        assert batch.allocated_quantity == allocated_quantity(batch.reference)
        assert batch.allocated_quantity <= batch.purchased_quantity
    # Order first, then products in SKU order, as every command: no deadlock to retry.
    assert "retrying" not in caplog.text


def test_lines_added_to_one_order_at_once_are_added_once_each():
    add_batch("lamps", "LAMP", 100)
    add_batch("chairs", "CHAIR", 100)
    add_batch("desks", "DESK", 100)
    place("shared", ("DESK", 1))
    services.submit_order(commands.SubmitOrder("shared"))

    tasks = [
        lambda sku=sku: services.add_line(commands.AddLine("shared", sku, 2))
        for sku in ("LAMP", "CHAIR") * 3
    ]
    errors = run_at_once(tasks)

    # Each SKU once; the other tries are told the line exists.
    assert sorted(type(error).__name__ for error in errors) == ["Conflict"] * 4
    assert Allocation.objects.filter(line__order__reference="shared").count() == 3
    assert Event.objects.filter(name="LineAdded").count() == 2
