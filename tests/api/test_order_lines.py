"""Correcting a placed order's lines through the API: POST /api/orders/<reference>/lines,
.../lines/<sku> and .../lines/<sku>/remove; status, body, headers, and every refusal."""

from urllib.parse import quote

import pytest

from orders_write import commands, services
from orders_write.models import OrderLine
from tests.database import allocation_of, database_state
from tests.factories import add_batch, place

pytestmark = pytest.mark.django_db


def post(api, path, body=None):
    return api.post(path, body, format="json")


def assert_refused(response, status, message, *, field=None):
    assert response.status_code == status, response.content
    assert response.json()["message"] == message
    if field:
        assert response.json()["errors"][field] == [message]
    assert "X-Consistency-Token" not in response


def quantities(reference):
    return dict(
        OrderLine.objects.filter(order__reference=reference).values_list("product_id", "quantity")
    )


@pytest.fixture
def shop():
    add_batch("lamps", "LAMP", 10)
    add_batch("chairs", "CHAIR", 10)
    place("o1", ("LAMP", 2))
    services.submit_order(commands.SubmitOrder("o1"))


def test_adding_a_line_answers_202_with_its_events_and_allocates_it(api, shop):
    response = post(api, "/api/orders/o1/lines", {"sku": "CHAIR", "qty": 3})

    assert response.status_code == 202, response.content
    assert response["X-Consistency-Token"].startswith("qm1-")
    assert response["Location"] == "/api/orders/o1"
    assert [event["name"] for event in response.json()["events"]] == ["LineAdded", "Allocated"]
    assert allocation_of("o1", "CHAIR") == "chairs"


def test_changing_a_quantity_answers_202_and_reallocates(api, shop):
    response = post(api, "/api/orders/o1/lines/LAMP", {"qty": 7})

    assert response.status_code == 202, response.content
    assert [event["name"] for event in response.json()["events"]] == [
        "Deallocated",
        "LineQuantityChanged",
        "Allocated",
    ]
    assert quantities("o1") == {"LAMP": 7}


def test_removing_a_line_answers_202_and_releases_it(api, shop):
    services.add_line(commands.AddLine("o1", "CHAIR", 1))

    response = post(api, "/api/orders/o1/lines/LAMP/remove")

    assert response.status_code == 202, response.content
    assert [event["name"] for event in response.json()["events"]] == ["Deallocated", "LineRemoved"]
    assert quantities("o1") == {"CHAIR": 1}


def test_keys_with_slashes_reach_their_line_escaped_or_not(api):
    add_batch("lamps", "LAMP/RED", 10)
    add_batch("chairs", "CHAIR/lines/OAK", 10)
    place("shop/o1", ("LAMP/RED", 2), ("CHAIR/lines/OAK", 1))
    order, sku = quote("shop/o1", safe=""), quote("LAMP/RED", safe="")

    assert post(api, f"/api/orders/{order}/lines/{sku}", {"qty": 4}).status_code == 202
    assert post(api, "/api/orders/shop/o1/lines/CHAIR/lines/OAK", {"qty": 5}).status_code == 202
    assert quantities("shop/o1") == {"LAMP/RED": 4, "CHAIR/lines/OAK": 5}
    assert post(api, f"/api/orders/{order}/lines/{sku}/remove").status_code == 202
    assert quantities("shop/o1") == {"CHAIR/lines/OAK": 5}


@pytest.mark.parametrize(
    ("path", "body", "status", "message", "field"),
    [
        ("/api/orders/nope/lines", {"sku": "CHAIR", "qty": 1}, 404, "Unknown order nope", None),
        ("/api/orders/o1/lines", {"sku": "NOPE", "qty": 1}, 400, "Invalid sku NOPE", "sku"),
        (
            "/api/orders/o1/lines",
            {"sku": "CHAIR", "qty": 0},
            400,
            "Quantity must be positive",
            "qty",
        ),
        (
            "/api/orders/o1/lines",
            {"sku": "LAMP", "qty": 1},
            409,
            "Order o1 already has a line for LAMP: change its quantity instead",
            "sku",
        ),
        ("/api/orders/nope/lines/LAMP", {"qty": 1}, 404, "Unknown order nope", None),
        (
            "/api/orders/o1/lines/CHAIR",
            {"qty": 1},
            400,
            "Order o1 has no line for CHAIR",
            "sku",
        ),
        ("/api/orders/o1/lines/LAMP", {"qty": -1}, 400, "Quantity must be positive", "qty"),
        ("/api/orders/nope/lines/LAMP/remove", None, 404, "Unknown order nope", None),
        (
            "/api/orders/o1/lines/LAMP/remove",
            None,
            400,
            "Cannot remove the last line of submitted order o1: cancel the order instead",
            "sku",
        ),
    ],
)
def test_line_refusals_say_why_and_write_nothing(api, shop, path, body, status, message, field):
    before = database_state()

    response = post(api, path, body)

    assert_refused(response, status, message, field=field)
    assert database_state() == before


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"qty": "many"}, "qty", "A valid integer is required."),
        ({}, "qty", "This field is required."),
        ({"qty": 1, "sku": "X"}, "sku", "Unknown field."),
    ],
)
def test_a_quantity_body_of_the_wrong_shape_is_refused_beside_its_field(
    api, shop, body, field, message
):
    before = database_state()

    response = post(api, "/api/orders/o1/lines/LAMP", body)

    assert response.status_code == 400
    assert response.json()["errors"] == {field: [message]}
    assert database_state() == before


def test_a_cancelled_order_takes_no_line(api, shop):
    services.cancel_order(commands.CancelOrder("o1"))
    before = database_state()

    response = post(api, "/api/orders/o1/lines", {"sku": "CHAIR", "qty": 1})

    assert_refused(response, 400, "Order o1 is cancelled", field="reference")
    assert database_state() == before


def test_every_mistake_is_reported_at_once(api, shop):
    services.cancel_order(commands.CancelOrder("o1"))

    response = post(api, "/api/orders/o1/lines", {"sku": "LAMP", "qty": 0})

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "qty": ["Quantity must be positive"],
        "reference": ["Order o1 is cancelled"],
        "sku": ["Order o1 already has a line for LAMP: change its quantity instead"],
    }


def test_a_body_the_serializer_refuses_carries_the_rules_refusals_too(api, shop):
    response = post(api, "/api/orders/o1/lines", {"sku": "NOPE", "qty": "x"})

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "qty": ["A valid integer is required."],
        "sku": ["Invalid sku NOPE"],
    }


def test_the_schema_documents_the_line_operations(api):
    response = api.get("/api/schema/", {"format": "json"})

    operations = {
        operation["operationId"]: operation
        for path in response.json()["paths"].values()
        for operation in path.values()
    }
    for operation_id in ("add_line", "change_line_quantity", "remove_line"):
        assert operations[operation_id]["summary"]
        assert "202" in operations[operation_id]["responses"]
