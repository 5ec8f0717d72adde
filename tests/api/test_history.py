"""GET /api/orders/<reference>/history: an order's events, oldest first, each with its
time, the user or integration that acted, and why a line moved."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from orders_read import queries
from orders_write import commands, services
from tests.factories import add_batch, client_for, place

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lamps():
    services.create_product(commands.CreateProduct("LAMP", "Desk lamp", Decimal("12.50")))
    add_batch("lamps-depot", "LAMP", 10)


def history(api, reference: str, **headers) -> list[dict]:
    response = api.get(f"/api/orders/{reference}/history", **headers)
    assert response.status_code == 200, response.json()
    return response.json()


def test_history_lists_the_orders_events_oldest_first_with_time_and_actor(api, lamps):
    before = datetime.datetime.now(datetime.UTC)
    placed = api.post(
        "/api/orders",
        {
            "reference": "o1",
            "customer": "Ada Lovelace",
            "shipping_address": "London",
            "lines": [{"sku": "LAMP", "qty": 2}],
        },
        format="json",
    )
    assert placed.status_code == 201
    assert api.post("/api/orders/o1/submit").status_code == 202

    events = history(api, "o1")

    assert [(event["event"], event["actor"]) for event in events] == [
        ("OrderPlaced", "staff-user"),
        ("OrderSubmitted", "staff-user"),
        ("Allocated", "staff-user"),
    ]
    assert [event["description"] for event in events] == [
        "Placed for Ada Lovelace: LAMP.",
        "Submitted.",
        "Allocated 2 x LAMP from batch lamps-depot.",
    ]
    times = [datetime.datetime.fromisoformat(event["time"]) for event in events]
    assert before <= times[0] <= times[1] <= times[2] <= datetime.datetime.now(datetime.UTC)
    assert events[2]["data"] == {
        "orderid": "o1",
        "sku": "LAMP",
        "qty": 2,
        "batchref": "lamps-depot",
    }
    assert events[2]["reason"] is None
    assert [event["id"] for event in events] == sorted(event["id"] for event in events)


def test_history_names_the_integration_whose_token_issued_each_command(lamps):
    shop, clerk = client_for("staff"), client_for("superuser")
    body = {"orderid": "o1", "sku": "LAMP", "qty": 1}
    assert shop.post("/api/allocate", body, format="json").status_code == 202
    deallocate = {"orderid": "o1", "sku": "LAMP"}
    assert clerk.post("/api/deallocate", deallocate, format="json").status_code == 202

    events = history(clerk, "o1")

    assert [(event["event"], event["actor"]) for event in events] == [
        ("OrderPlaced", "staff-user"),
        ("Allocated", "staff-user"),
        ("Deallocated", "superuser-user"),
    ]
    assert events[0]["description"] == (
        "Placed, submitted at once, by allocating a line to a new order."
    )
    assert events[2]["description"] == "Released 1 x LAMP from batch lamps-depot on request."


def test_history_says_a_line_was_released_because_its_batch_was_reduced(api, lamps):
    add_batch("lamps-ship", "LAMP", 20, datetime.date(2026, 12, 24))
    services.allocate(commands.Allocate("o1", "LAMP", 8))
    services.change_batch_quantity(commands.ChangeBatchQuantity("lamps-depot", 5))

    events = history(api, "o1")

    assert [event["description"] for event in events[-2:]] == [
        "Released 8 x LAMP from batch lamps-depot because batch lamps-depot was reduced to 5.",
        "Allocated 8 x LAMP from batch lamps-ship when batch lamps-depot was reduced to 5.",
    ]
    assert events[-2]["reason"] == "because batch lamps-depot was reduced to 5"
    assert [event["actor"] for event in events] == ["system"] * 4


def test_history_says_a_line_was_released_because_the_order_was_cancelled(api, lamps):
    place("o1", ("LAMP", 3))
    services.submit_order(commands.SubmitOrder("o1"))
    with services.acting_as("grace"):
        services.cancel_order(commands.CancelOrder("o1"))

    events = history(api, "o1")

    assert [(event["event"], event["actor"]) for event in events[-2:]] == [
        ("OrderCancelled", "grace"),
        ("Deallocated", "grace"),
    ]
    assert events[-1]["description"] == (
        "Released 3 x LAMP from batch lamps-depot because the order was cancelled."
    )


def test_history_says_a_waiting_line_was_allocated_when_stock_arrived(api, lamps):
    place("o1", ("LAMP", 30))
    services.submit_order(commands.SubmitOrder("o1"))
    add_batch("lamps-big", "LAMP", 50)

    events = history(api, "o1")

    assert [event["description"] for event in events[-2:]] == [
        "Out of stock: no batch could hold 30 x LAMP.",
        "Allocated 30 x LAMP from batch lamps-big when batch lamps-big was received.",
    ]


def test_history_of_an_order_whose_reference_has_a_slash(api, lamps):
    place("shop/o1", ("LAMP", 1))

    events = history(api, "shop%2Fo1")

    assert [event["event"] for event in events] == ["OrderPlaced"]
    assert events[0]["data"]["reference"] == "shop/o1"


def test_history_of_an_unknown_order_is_not_found(api, lamps):
    place("o1", ("LAMP", 1))

    response = api.get("/api/orders/o2/history")

    assert response.status_code == 404
    assert response.json() == {"message": "Unknown order o2."}


def test_history_is_fresh_at_once_even_with_the_token_of_a_write(api, lamps):
    write = api.post("/api/allocate", {"orderid": "o1", "sku": "LAMP", "qty": 1}, format="json")

    response = api.get(
        "/api/orders/o1/history", HTTP_X_CONSISTENCY_TOKEN=write["X-Consistency-Token"]
    )

    assert response.status_code == 200
    assert [event["event"] for event in response.json()] == ["OrderPlaced", "Allocated"]
    assert "X-Read-Model-Stale" not in response
    refreshed_at = datetime.datetime.fromisoformat(response["X-Read-Model-Refreshed-At"])
    assert refreshed_at.tzinfo is not None


def test_history_refuses_a_token_not_issued_here(api, lamps):
    place("o1", ("LAMP", 1))

    response = api.get("/api/orders/o1/history", HTTP_X_CONSISTENCY_TOKEN="nonsense")

    assert response.status_code == 400
    assert "X-Consistency-Token" in response.json()["errors"]


def test_history_takes_one_query_however_long_it_is(lamps):
    add_batch("lamps-ship", "LAMP", 100, datetime.date(2026, 12, 24))
    place("o1", ("LAMP", 4))
    services.submit_order(commands.SubmitOrder("o1"))
    for _ in range(3):
        services.deallocate(commands.Deallocate("o1", "LAMP"))
        services.allocate(commands.Allocate("o1", "LAMP", 4))
    services.change_batch_quantity(commands.ChangeBatchQuantity("lamps-depot", 2))

    with CaptureQueriesContext(connection) as queried:
        entries = queries.order_history("o1")

    assert len(entries) == 11
    assert len(queried) == 1


def test_history_says_how_the_orders_lines_were_corrected(api, lamps):
    services.create_product(commands.CreateProduct("CHAIR", "Chair", Decimal("40.00")))
    add_batch("chairs-depot", "CHAIR", 10)
    place("o1", ("LAMP", 2))
    services.submit_order(commands.SubmitOrder("o1"))
    assert (
        api.post("/api/orders/o1/lines", {"sku": "CHAIR", "qty": 1}, format="json").status_code
        == 202
    )
    assert api.post("/api/orders/o1/lines/LAMP", {"qty": 3}, format="json").status_code == 202
    assert api.post("/api/orders/o1/lines/CHAIR/remove").status_code == 202

    corrections = [event["description"] for event in history(api, "o1")[3:]]

    assert corrections == [
        "Line added: 1 x CHAIR.",
        "Allocated 1 x CHAIR from batch chairs-depot when the line was added.",
        "Released 2 x LAMP from batch lamps-depot because the line's quantity changed to 3.",
        "Quantity of LAMP changed from 2 to 3.",
        "Allocated 3 x LAMP from batch lamps-depot because the line's quantity changed to 3.",
        "Released 1 x CHAIR from batch chairs-depot because the line was removed.",
        "Line removed: 1 x CHAIR.",
    ]


def test_lines_corrected_together_each_move_for_their_own_correction(api, lamps):
    services.create_product(commands.CreateProduct("CHAIR", "Chair", Decimal("40.00")))
    add_batch("chairs-depot", "CHAIR", 10)
    place("o1", ("CHAIR", 1), ("LAMP", 2))
    services.submit_order(commands.SubmitOrder("o1"))

    with transaction.atomic():  # as the admin's lines inline saves them
        services.remove_line(commands.RemoveLine("o1", "CHAIR"))
        services.change_line_quantity(commands.ChangeLineQuantity("o1", "LAMP", 3))

    corrections = [event["description"] for event in history(api, "o1")[4:]]
    assert corrections == [
        "Released 1 x CHAIR from batch chairs-depot because the line was removed.",
        "Line removed: 1 x CHAIR.",
        "Released 2 x LAMP from batch lamps-depot because the line's quantity changed to 3.",
        "Quantity of LAMP changed from 2 to 3.",
        "Allocated 3 x LAMP from batch lamps-depot because the line's quantity changed to 3.",
    ]
