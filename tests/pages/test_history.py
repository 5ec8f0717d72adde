"""The order page's history: the order's events oldest first, each with its time, a
sentence and who acted; the staff pages and the admin record their user as the actor."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders_write import commands, services
from orders_write.models import Event, Order
from tests.factories import add_batch, place
from tests.pages.html import dom, text, walk

pytestmark = pytest.mark.django_db(transaction=True)


def timeline(response) -> list[str]:
    """The text of each entry of the page's history, in order."""
    for node, _ in walk(dom(response)):
        if node.name == "ol" and "timeline" in (node.attributes.get("class") or ""):
            return [text(entry) for entry in node.children if getattr(entry, "name", "") == "li"]
    return []


def actors(name: str) -> set[str]:
    return set(Event.objects.filter(name=name).values_list("actor", flat=True))


def test_the_order_page_shows_its_history_oldest_first_with_who_acted(staff):
    add_batch("lamps", "LAMP", 2)
    place("o1", ("LAMP", 2))
    with services.acting_as("shop"):
        services.submit_order(commands.SubmitOrder("o1"))
    services.change_batch_quantity(commands.ChangeBatchQuantity("lamps", 1))

    response = staff.get("/orders/o1/")

    assert response.status_code == 200
    entries = timeline(response)
    assert len(entries) == 5
    assert entries[0].endswith("Placed for Ada Lovelace: LAMP. by system")
    assert entries[1].endswith("Submitted. by shop")
    assert entries[2].endswith("Allocated 2 x LAMP from batch lamps. by shop")
    assert entries[3].endswith(
        "Released 2 x LAMP from batch lamps because batch lamps was reduced to 1. by system"
    )
    assert entries[4].endswith(
        "Out of stock: no batch could hold 2 x LAMP when batch lamps was reduced to 1. by system"
    )
    times = [node.attributes["datetime"] for node, _ in walk(dom(response)) if node.name == "time"]
    assert len(times) == 5
    assert times == sorted(times)


def test_the_history_costs_the_page_one_query_however_long_it_is(staff):
    add_batch("lamps", "LAMP", 10)
    place("o1", ("LAMP", 1))
    place("o2", ("LAMP", 1))
    short = staff.get("/orders/o1/")
    services.submit_order(commands.SubmitOrder("o2"))
    for _ in range(5):
        services.deallocate(commands.Deallocate("o2", "LAMP"))
        services.allocate(commands.Allocate("o2", "LAMP", 1))

    with CaptureQueriesContext(connection) as for_short:
        staff.get("/orders/o1/")
    with CaptureQueriesContext(connection) as for_long:
        long = staff.get("/orders/o2/")

    assert len(timeline(short)) == 1
    assert len(timeline(long)) == 13
    assert len(for_long) == len(for_short)


def test_the_staff_pages_record_their_user_as_the_actor(staff):
    add_batch("lamps", "LAMP", 10)
    form = {
        "customer": "Ada Lovelace",
        "shipping_address": "London",
        "reference": "o1",
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "0",
        "lines-0-sku": "LAMP",
        "lines-0-qty": "2",
    }

    placed = staff.post("/orders/new/", form)
    submitted = staff.post("/orders/o1/submit/")
    received = staff.post("/batches/new/", {"ref": "more", "sku": "LAMP", "qty": "5"})

    assert [placed.status_code, submitted.status_code, received.status_code] == [303] * 3
    assert (
        actors("OrderPlaced") == actors("OrderSubmitted") == actors("Allocated") == {"staff-user"}
    )
    assert list(Event.objects.filter(name="BatchCreated").values_list("actor", flat=True)) == [
        "system",  # the test's own add_batch
        "staff-user",
    ]
    assert "by staff-user" in " ".join(timeline(staff.get("/orders/o1/")))


def test_the_admin_records_its_user_as_the_actor(admin_client):
    add_batch("lamps", "LAMP", 10)
    place("o1", ("LAMP", 2))

    response = admin_client.post(
        "/admin/orders_write/order/",
        {"action": "submit_orders", "_selected_action": [str(Order.objects.get().pk)]},
    )

    assert response.status_code == 302
    assert actors("OrderSubmitted") == actors("Allocated") == {"superuser-user"}
    assert actors("OrderPlaced") == {"system"}


def result_rows(response) -> list[str]:
    """The text of each row of an admin list."""
    return [
        text(node)
        for node, ancestors in walk(dom(response))
        if node.name == "tr"
        and any(above.attributes.get("id") == "result_list" for above in ancestors)
    ]


def test_the_admins_event_log_shows_who_acted_and_on_which_order(admin_client):
    add_batch("lamps", "LAMP", 10)
    with services.acting_as("shop"):
        place("o1", ("LAMP", 2))

    everything = result_rows(admin_client.get("/admin/orders_write/event/"))
    by_actor = result_rows(admin_client.get("/admin/orders_write/event/", {"q": "shop"}))

    assert len(everything) == 4  # a header row, and three events
    assert len(by_actor) == 2
    assert "OrderPlaced" in by_actor[1]
    assert "o1" in by_actor[1]
    assert "shop" in by_actor[1]


def test_an_order_page_without_events_says_so(staff):
    add_batch("lamps", "LAMP", 10)
    place("o1", ("LAMP", 2))
    Event.objects.filter(order_reference="o1").delete()  # as for orders loaded before events

    response = staff.get("/orders/o1/")

    assert response.status_code == 200
    assert timeline(response) == []
    assert "No events are recorded for this order." in response.content.decode()
