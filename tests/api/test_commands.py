"""Every command of SPEC.md through HTTP: status, body, headers — and every refusal."""

import datetime

import pytest

from orders_write.models import Allocation, Batch, Order, Product
from tests.database import database_state
from tests.factories import TOMORROW, add_batch, place, submit

# In one transaction, rolled back: what a test writes is read back from the write tables.
# Tests that read it from the read models, refreshed only after a commit, are marked
# transaction=True.
pytestmark = pytest.mark.django_db


def post(api, path, body=None):
    return api.post(path, body, format="json")


def assert_token(response):
    assert response["X-Consistency-Token"].startswith("qm1-")


def assert_refused(response, status, message, *, field=None):
    assert response.status_code == status, response.content
    assert response.json()["message"] == message
    if field:
        assert response.json()["errors"][field] == [message]
    assert "X-Consistency-Token" not in response


# --- success: every row of the commands table ---------------------------------------


def test_create_product(api):
    response = post(
        api, "/api/products", {"sku": "RED-CHAIR", "name": "Red chair", "price": "49.90"}
    )

    assert response.status_code == 201
    assert response["Location"] == "/api/products/RED-CHAIR"
    assert_token(response)
    assert response.json() == {
        "events": [
            {
                "name": "ProductCreated",
                "data": {"sku": "RED-CHAIR", "name": "Red chair", "price": "49.90"},
            }
        ],
        "lines": [],
    }
    assert str(Product.objects.get(sku="RED-CHAIR").price) == "49.90"


def test_create_batch(api):
    response = post(
        api, "/api/batches", {"ref": "b1", "sku": "LAMP", "qty": 10, "eta": "2026-12-01"}
    )

    assert response.status_code == 201
    assert response["Location"] == "/api/products/LAMP"
    assert_token(response)
    batch = Batch.objects.get(reference="b1")
    assert (batch.product_id, batch.purchased_quantity, batch.eta) == (
        "LAMP",
        10,
        datetime.date(2026, 12, 1),
    )


def test_create_warehouse_batch_with_null_or_no_eta(api):
    assert (
        post(api, "/api/batches", {"ref": "b1", "sku": "LAMP", "qty": 1, "eta": None}).status_code
        == 201
    )
    assert post(api, "/api/batches", {"ref": "b2", "sku": "LAMP", "qty": 1}).status_code == 201
    assert list(Batch.objects.values_list("eta", flat=True)) == [None, None]


def test_location_of_a_sku_with_a_slash_is_escaped(api):
    response = post(api, "/api/batches", {"ref": "b1", "sku": "A/B 1", "qty": 1})

    assert response["Location"] == "/api/products/A%2FB%201"


def test_change_batch_quantity(api):
    add_batch("b1", "LAMP", 10)

    response = post(api, "/api/batches/b1/quantity", {"qty": 4})

    assert response.status_code == 202
    assert_token(response)
    assert Batch.objects.get(reference="b1").purchased_quantity == 4
    assert [event["name"] for event in response.json()["events"]] == ["BatchQuantityChanged"]


def test_place_order_with_its_reference(api):
    add_batch("b1", "LAMP", 10)
    body = {
        "reference": "o-1",
        "customer": "Ada Lovelace",
        "shipping_address": "12 St James's Square",
        "lines": [{"sku": "LAMP", "qty": 2}],
    }

    response = post(api, "/api/orders", body)

    assert response.status_code == 201
    assert response.json() == {"reference": "o-1"}
    assert response["Location"] == "/api/orders/o-1"
    assert_token(response)
    assert Order.objects.get(reference="o-1").status == "pending"


def test_place_order_without_reference_gets_one(api):
    add_batch("b1", "LAMP", 10)
    body = {"customer": "Ada", "shipping_address": "London", "lines": [{"sku": "LAMP", "qty": 1}]}

    response = post(api, "/api/orders", body)

    reference = response.json()["reference"]
    assert response.status_code == 201
    assert response["Location"] == f"/api/orders/{reference}"
    assert Order.objects.filter(reference=reference).exists()


def test_submit_order(api):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 2))

    response = post(api, "/api/orders/o1/submit")

    assert response.status_code == 202
    assert_token(response)
    assert Order.objects.get(reference="o1").status == "submitted"
    assert Allocation.objects.filter(line__order__reference="o1").count() == 1


def test_cancel_order(api):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 2))
    post(api, "/api/orders/o1/submit")

    response = post(api, "/api/orders/o1/cancel")

    assert response.status_code == 202
    assert_token(response)
    assert Order.objects.get(reference="o1").status == "cancelled"
    assert not Allocation.objects.exists()


def test_allocate(api):
    add_batch("b1", "LAMP", 10)

    response = post(api, "/api/allocate", {"orderid": "o1", "sku": "LAMP", "qty": 3})

    assert response.status_code == 202
    assert response["Location"] == "/api/allocations/o1"
    assert_token(response)
    assert [event["name"] for event in response.json()["events"]] == ["OrderPlaced", "Allocated"]


def test_allocate_out_of_stock_is_accepted_and_says_so(api):
    add_batch("b1", "LAMP", 1)

    response = post(api, "/api/allocate", {"orderid": "o1", "sku": "LAMP", "qty": 3})

    assert response.status_code == 202
    assert response.json()["events"][-1] == {
        "name": "OutOfStock",
        "data": {"sku": "LAMP", "orderid": "o1", "qty": 3},
    }


def test_deallocate(api):
    add_batch("b1", "LAMP", 10)
    post(api, "/api/allocate", {"orderid": "o1", "sku": "LAMP", "qty": 3})

    response = post(api, "/api/deallocate", {"orderid": "o1", "sku": "LAMP"})

    assert response.status_code == 202
    assert_token(response)
    assert not Allocation.objects.exists()


# --- every refusal of SPEC.md through HTTP: status, message, nothing written ---------


@pytest.fixture
def stocked():
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 1))
    place("empty")  # no lines
    place("gone", ("LAMP", 1))
    from orders_write import commands, services

    services.cancel_order(commands.CancelOrder("gone"))


REFUSALS = [
    # (path, body, status, message, field)
    ("/api/allocate", {"orderid": "o2", "sku": "NOPE", "qty": 1}, 400, "Invalid sku NOPE", "sku"),
    (
        "/api/orders",
        {"customer": "Ada", "shipping_address": "x", "lines": [{"sku": "NOPE", "qty": 1}]},
        400,
        "Invalid sku NOPE",
        "lines.0.sku",
    ),
    (
        "/api/allocate",
        {"orderid": "o2", "sku": "LAMP", "qty": 0},
        400,
        "Quantity must be positive",
        "qty",
    ),
    (
        "/api/allocate",
        {"orderid": "o2", "sku": "LAMP", "qty": -4},
        400,
        "Quantity must be positive",
        "qty",
    ),
    (
        "/api/batches",
        {"ref": "b2", "sku": "LAMP", "qty": 0},
        400,
        "Quantity must be positive",
        "qty",
    ),
    ("/api/batches/b1/quantity", {"qty": -1}, 400, "Quantity must be positive", "qty"),
    (
        "/api/orders",
        {"customer": "Ada", "shipping_address": "x", "lines": [{"sku": "LAMP", "qty": 0}]},
        400,
        "Quantity must be positive",
        "lines.0.qty",
    ),
    ("/api/orders/empty/submit", None, 400, "Cannot submit empty order", "lines"),
    ("/api/orders/gone/submit", None, 400, "Order gone is cancelled", "reference"),
    ("/api/orders/gone/cancel", None, 400, "Order gone is cancelled", "reference"),
    (
        "/api/allocate",
        {"orderid": "gone", "sku": "LAMP", "qty": 1},
        400,
        "Order gone is cancelled",
        "orderid",
    ),
    (
        "/api/deallocate",
        {"orderid": "gone", "sku": "LAMP"},
        400,
        "Order gone is cancelled",
        "orderid",
    ),
    ("/api/batches", {"ref": "b1", "sku": "LAMP", "qty": 5}, 409, "Batch b1 already exists", "ref"),
    (
        "/api/orders",
        {"reference": "o1", "customer": "Ada", "shipping_address": "x", "lines": []},
        409,
        "Order o1 already exists",
        "reference",
    ),
    ("/api/products", {"sku": "LAMP", "name": "Lamp"}, 409, "Product LAMP already exists", "sku"),
    ("/api/batches/nope/quantity", {"qty": 3}, 404, "Unknown batch nope", "ref"),
    ("/api/orders/nope/submit", None, 404, "Unknown order nope", "reference"),
    ("/api/orders/nope/cancel", None, 404, "Unknown order nope", "reference"),
    ("/api/deallocate", {"orderid": "nope", "sku": "LAMP"}, 404, "Unknown order nope", "orderid"),
    ("/api/deallocate", {"orderid": "o1", "sku": "NOPE"}, 400, "Invalid sku NOPE", "sku"),
]


@pytest.mark.parametrize(("path", "body", "status", "message", "field"), REFUSALS)
def test_refused_command_answers_its_rule_and_writes_nothing(
    api, stocked, path, body, status, message, field
):
    before = database_state()

    response = post(api, path, body)

    assert_refused(response, status, message, field=field)
    assert database_state() == before


def test_a_duplicate_batch_for_a_new_sku_creates_no_product(api, stocked):
    response = post(api, "/api/batches", {"ref": "b1", "sku": "NEW-SKU", "qty": 5})

    assert response.status_code == 409
    assert not Product.objects.filter(sku="NEW-SKU").exists()


def test_batch_eta_in_the_past_is_accepted_as_a_shipment(api):
    response = post(
        api, "/api/batches", {"ref": "late", "sku": "LAMP", "qty": 1, "eta": "2020-01-01"}
    )

    assert response.status_code == 201
    assert Batch.objects.get(reference="late").eta == datetime.date(2020, 1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_shipment_batch_is_used_after_warehouse_stock(api):
    post(
        api, "/api/batches", {"ref": "ship", "sku": "LAMP", "qty": 10, "eta": TOMORROW.isoformat()}
    )
    post(api, "/api/batches", {"ref": "depot", "sku": "LAMP", "qty": 10})

    post(api, "/api/allocate", {"orderid": "o1", "sku": "LAMP", "qty": 3})

    assert api.get("/api/allocations/o1").json() == [{"sku": "LAMP", "batchref": "depot"}]


def test_changing_a_batch_answers_where_each_line_went(api):
    add_batch("depot", "LAMP", 10)
    add_batch("ship", "LAMP", 4, TOMORROW)
    for reference, qty in (("o1", 3), ("o2", 5)):
        place(reference, ("LAMP", qty))
        submit(reference)

    response = post(api, "/api/batches/depot/quantity", {"qty": 1})

    assert response.status_code == 202
    assert response.json()["lines"] == [
        {
            "orderid": "o1",
            "sku": "LAMP",
            "qty": 3,
            "outcome": "allocated",
            "from_batch": "depot",
            "to_batch": "ship",
        },
        {
            "orderid": "o2",
            "sku": "LAMP",
            "qty": 5,
            "outcome": "out_of_stock",
            "from_batch": "depot",
            "to_batch": None,
        },
    ]


def test_the_api_still_creates_an_order_and_a_product_it_does_not_know(api):
    add_batch("depot", "LAMP", 10)

    allocated = post(api, "/api/allocate", {"orderid": "new-1", "sku": "LAMP", "qty": 1})
    received = post(api, "/api/batches", {"ref": "b9", "sku": "NEW-SKU", "qty": 5, "eta": None})

    assert (allocated.status_code, received.status_code) == (202, 201)
    assert Order.objects.get(reference="new-1").status == "submitted"
    assert Product.objects.get(sku="NEW-SKU").name == "NEW-SKU"
