"""Events go out as signals only after their transaction commits."""

import pytest
from django.db import transaction

from orders_write import commands, domain, events, services
from orders_write.models import Event
from tests.factories import add_batch

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def received():
    """Every (event, transaction id) sent on event_committed while the test runs."""
    seen = []

    def receiver(sender, event, transaction_id, **kwargs):
        seen.append((event, transaction_id))

    events.event_committed.connect(receiver, weak=False)
    yield seen
    events.event_committed.disconnect(receiver)


def test_receiver_sees_events_only_after_commit(received):
    add_batch("lamps", "LAMP", 10)
    received.clear()

    with transaction.atomic():
        result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=1))
        assert received == []

    assert [event for event, _ in received] == list(result.events)
    assert {transaction_id for _, transaction_id in received} == {result.transaction_id}
    assert [type(event) for event, _ in received] == [events.OrderPlaced, events.Allocated]


def test_receiver_never_sees_a_rolled_back_command(received):
    add_batch("lamps", "LAMP", 10)
    received.clear()

    with pytest.raises(RuntimeError), transaction.atomic():
        services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=1))
        raise RuntimeError("the caller changes its mind")

    assert received == []


def test_receiver_never_sees_a_refused_command(received):
    with pytest.raises(domain.InvalidSku):
        services.allocate(commands.Allocate(orderid="o1", sku="NOPE", qty=1))

    assert received == []


def test_receivers_can_listen_to_one_kind_of_event():
    allocated = []

    def on_allocated(sender, event, **kwargs):
        allocated.append(event)

    events.event_committed.connect(on_allocated, sender=events.Allocated, weak=False)
    try:
        add_batch("lamps", "LAMP", 10)
        services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))
    finally:
        events.event_committed.disconnect(on_allocated, sender=events.Allocated)

    assert allocated == [events.Allocated("o1", "LAMP", 2, "lamps")]


def test_a_failing_receiver_does_not_fail_the_committed_command(caplog):
    def broken(sender, **kwargs):
        raise ValueError("receiver bug")

    events.events_committed.connect(broken, weak=False)
    try:
        add_batch("lamps", "LAMP", 10)
    finally:
        events.events_committed.disconnect(broken)

    from orders_write.models import Batch

    assert Batch.objects.filter(reference="lamps").exists()
    assert "receiver bug" in caplog.text


# --- who acted, and which order -------------------------------------------------------


def test_events_of_commands_run_outside_a_request_are_the_systems():
    add_batch("lamps", "LAMP", 10)
    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=1))

    assert set(Event.objects.values_list("actor", flat=True)) == {services.SYSTEM}


def test_events_record_the_actor_the_commands_run_as():
    add_batch("lamps", "LAMP", 10)
    with services.acting_as("ada"):
        services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=1))
    services.deallocate(commands.Deallocate(orderid="o1", sku="LAMP"))

    assert list(Event.objects.order_by("id").values_list("name", "actor")) == [
        ("ProductCreated", "system"),
        ("BatchCreated", "system"),
        ("OrderPlaced", "ada"),
        ("Allocated", "ada"),
        ("Deallocated", "system"),
    ]


def test_the_actor_may_be_told_only_when_the_events_are_recorded():
    asked = []

    def actor() -> str:
        asked.append(True)
        return "shop-front"

    with services.acting_as(actor):
        assert asked == []
        add_batch("lamps", "LAMP", 10)

    assert asked == [True]
    assert set(Event.objects.values_list("actor", flat=True)) == {"shop-front"}


def test_a_refused_command_records_no_actor_or_event():
    with services.acting_as("ada"), pytest.raises(domain.InvalidSku):
        services.allocate(commands.Allocate(orderid="o1", sku="NOPE", qty=1))

    assert not Event.objects.exists()


def test_each_event_records_the_order_it_concerns():
    add_batch("lamps", "LAMP", 1)
    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=1))
    services.allocate(commands.Allocate(orderid="o2", sku="LAMP", qty=1))  # out of stock
    services.cancel_order(commands.CancelOrder("o1"))

    assert list(Event.objects.order_by("id").values_list("name", "order_reference")) == [
        ("ProductCreated", None),
        ("BatchCreated", None),
        ("OrderPlaced", "o1"),
        ("Allocated", "o1"),
        ("OrderPlaced", "o2"),
        ("OutOfStock", "o2"),
        ("OrderCancelled", "o1"),
        ("Deallocated", "o1"),
    ]
