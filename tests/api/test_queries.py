"""Every query of SPEC.md through HTTP, with the freshness headers and read-your-writes."""

import datetime
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from orders_read.models import OrderSummary
from orders_write import commands, services
from tests.factories import TOMORROW, add_batch, place, submit, watcher_row

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop():
    services.create_product(commands.CreateProduct("LAMP", "Desk lamp", Decimal("12.50")))
    add_batch("lamps-depot", "LAMP", 10)
    add_batch("lamps-ship", "LAMP", 20, TOMORROW)
    add_batch("chairs", "CHAIR", 1)
    place("o1", ("LAMP", 2), ("CHAIR", 1), customer="Ada Lovelace")
    services.submit_order(commands.SubmitOrder("o1"))
    place("o2", ("LAMP", 1), customer="Grace Hopper")
    place("o3", ("CHAIR", 5), customer="Alan Turing")
    services.submit_order(commands.SubmitOrder("o3"))  # out of stock


def assert_fresh(response):
    refreshed_at = datetime.datetime.fromisoformat(response["X-Read-Model-Refreshed-At"])
    assert refreshed_at.tzinfo is not None
    assert "X-Read-Model-Stale" not in response


def test_allocations_of_an_order_sorted_by_sku(api, shop):
    response = api.get("/api/allocations/o1")

    assert response.status_code == 200
    assert response.json() == [
        {"sku": "CHAIR", "batchref": "chairs"},
        {"sku": "LAMP", "batchref": "lamps-depot"},
    ]
    assert_fresh(response)


@pytest.mark.parametrize("orderid", ["o2", "o3", "nope"])
def test_allocations_of_an_order_without_any_are_not_found(api, shop, orderid):
    response = api.get(f"/api/allocations/{orderid}")

    assert response.status_code == 404
    assert response.json() == {"message": f"Order {orderid} has no allocation."}


def test_orders_are_paginated_summaries_newest_first(api, shop):
    response = api.get("/api/orders")

    body = response.json()
    assert response.status_code == 200
    assert (body["count"], body["next"], body["previous"]) == (3, None, None)
    assert [order["reference"] for order in body["results"]] == ["o3", "o2", "o1"]
    assert body["results"][2] == {
        "reference": "o1",
        "customer_name": "Ada Lovelace",
        "shipping_address": "12 St James's Square, London",
        "status": "submitted",
        "line_count": 2,
        "total_quantity": 3,
        "total_amount": "25.00",
        "allocated_line_count": 2,
        "waiting": False,
        "stock_expected": None,
        "created_at": body["results"][2]["created_at"],
    }
    # o3 waits for chairs, and no batch has room for its five.
    assert (body["results"][0]["waiting"], body["results"][0]["stock_expected"]) == (True, None)
    assert_fresh(response)


def test_orders_pages_link_to_each_other(api, shop):
    first = api.get("/api/orders?page_size=2").json()
    second = api.get(first["next"]).json()

    assert [order["reference"] for order in first["results"]] == ["o3", "o2"]
    assert [order["reference"] for order in second["results"]] == ["o1"]
    assert second["next"] is None
    assert second["previous"] is not None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=pending", ["o2"]),
        ("status=submitted", ["o3", "o1"]),
        ("customer=grace", ["o2"]),
        ("search=o1", ["o1"]),
        ("search=TURING", ["o3"]),
        ("ordering=reference", ["o1", "o2", "o3"]),
        ("ordering=-total_amount", ["o1", "o2", "o3"]),
        ("status=submitted&ordering=created_at", ["o1", "o3"]),
        ("waiting=true", ["o3"]),  # submitted, and its chairs found no stock
        ("waiting=false", ["o2", "o1"]),
    ],
)
def test_orders_filters_and_ordering(api, shop, query, expected):
    response = api.get(f"/api/orders?{query}")

    assert response.status_code == 200
    assert [order["reference"] for order in response.json()["results"]] == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=lost", "status"),
        ("ordering=shipping_address", "ordering"),
        ("ordering=id;DROP TABLE orders_write_order", "ordering"),
        ("search=" + "x" * 300, "search"),
        ("waiting=maybe", "waiting"),
    ],
)
def test_orders_refuse_bad_filters_with_a_message(api, shop, query, field):
    response = api.get(f"/api/orders?{query}")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert response.json()["message"].startswith(f"{field}: ")


def test_orders_page_out_of_range_is_not_found(api, shop):
    response = api.get("/api/orders?page=99")

    assert response.status_code == 404
    assert response.json()["message"]


def test_one_order_with_its_lines(api, shop):
    response = api.get("/api/orders/o1")

    body = response.json()
    assert response.status_code == 200
    assert (body["reference"], body["status"], body["total_amount"]) == ("o1", "submitted", "25.00")
    assert body["lines"] == [
        {
            "sku": "CHAIR",
            "product_name": "CHAIR",
            "qty": 1,
            "unit_price": "0.00",
            "amount": "0.00",
            "batchref": "chairs",
        },
        {
            "sku": "LAMP",
            "product_name": "Desk lamp",
            "qty": 2,
            "unit_price": "12.50",
            "amount": "25.00",
            "batchref": "lamps-depot",
        },
    ]
    assert_fresh(response)


def test_an_unallocated_line_has_no_batch(api, shop):
    lines = api.get("/api/orders/o3").json()["lines"]

    assert lines == [
        {
            "sku": "CHAIR",
            "product_name": "CHAIR",
            "qty": 5,
            "unit_price": "0.00",
            "amount": "0.00",
            "batchref": None,
        }
    ]


def test_an_unknown_order_is_not_found(api, shop):
    response = api.get("/api/orders/nope")

    assert response.status_code == 404
    assert response.json() == {"message": "Unknown order nope."}


def test_products_are_paginated_availability(api, shop):
    response = api.get("/api/products")

    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 2
    assert body["results"][1] == {
        "sku": "LAMP",
        "name": "Desk lamp",
        "price": "12.50",
        "purchased": 30,
        "allocated": 2,
        "available": 28,
        "available_now": 8,
        "next_eta": TOMORROW.isoformat(),
        "batch_count": 2,
    }
    assert_fresh(response)


@pytest.mark.parametrize(("value", "expected"), [("true", ["LAMP"]), ("false", ["CHAIR"])])
def test_products_filter_in_stock(api, shop, value, expected):
    response = api.get(f"/api/products?in_stock={value}")

    assert [product["sku"] for product in response.json()["results"]] == expected


def test_products_refuse_a_non_boolean_in_stock(api, shop):
    response = api.get("/api/products?in_stock=maybe")

    assert response.status_code == 400
    assert "in_stock" in response.json()["errors"]


def test_one_product(api, shop):
    response = api.get("/api/products/CHAIR")

    assert response.status_code == 200
    assert response.json()["available"] == 0
    assert_fresh(response)


def test_an_unknown_product_is_not_found(api, shop):
    response = api.get("/api/products/NOPE")

    assert response.status_code == 404
    assert response.json() == {"message": "Unknown product NOPE."}


def test_read_models_state(api, shop):
    response = api.get("/api/read-models/")

    states = {state["name"]: state for state in response.json()}
    assert response.status_code == 200
    assert set(states) == {
        "allocations_view",
        "order_summary",
        "order_lines_view",
        "batch_availability",
        "product_availability",
        "line_days",
        "waiting_lines",
    }
    assert states["order_summary"]["row_count"] == 3
    assert states["allocations_view"]["row_count"] == 2
    for state in states.values():
        assert state["last_refreshed_at"] and state["snapshot"]
        assert state["last_duration_ms"] >= 0
        assert (state["last_error"], state["behind"]) == ("", False)
        assert (state["watcher_running"], state["watcher_heartbeat_at"]) == (False, None)


def test_read_models_state_says_which_views_a_running_watcher_keeps_fresh(api, shop):
    beat = watcher_row(units=["order_summary", "order_lines_view"]).heartbeat_at

    states = {state["name"]: state for state in api.get("/api/read-models/").json()}

    watched = {name for name, state in states.items() if state["watcher_running"]}
    assert watched == {"order_summary", "order_lines_view"}
    assert parse_datetime(states["order_summary"]["watcher_heartbeat_at"]) == beat
    assert states["allocations_view"]["watcher_heartbeat_at"] is None


# --- read-your-writes through HTTP -------------------------------------------------


def test_a_read_with_the_token_of_a_write_shows_it(api):
    add_batch("b1", "LAMP", 10)
    write = api.post("/api/allocate", {"orderid": "o1", "sku": "LAMP", "qty": 3}, format="json")

    read = api.get(write["Location"], HTTP_X_CONSISTENCY_TOKEN=write["X-Consistency-Token"])

    assert read.status_code == 200
    assert read.json() == [{"sku": "LAMP", "batchref": "b1"}]
    assert_fresh(read)


def test_a_read_whose_write_is_not_refreshed_answers_stale_after_the_wait(api, settings):
    add_batch("b1", "LAMP", 10)
    settings.READ_MODEL_REFRESH = "async"  # and no watcher runs
    settings.READ_MODEL_MAX_WAIT = 0.2
    write = api.post("/api/allocate", {"orderid": "o1", "sku": "LAMP", "qty": 3}, format="json")

    read = api.get("/api/products/LAMP", HTTP_X_CONSISTENCY_TOKEN=write["X-Consistency-Token"])

    assert read.status_code == 200
    assert read["X-Read-Model-Stale"] == "true"
    assert read.json()["allocated"] == 0  # what it has: the view before the write
    assert read["X-Read-Model-Refreshed-At"]


def test_without_replicas_the_primary_answers_and_says_so(api, shop):
    write = api.post("/api/allocate", {"orderid": "o2", "sku": "LAMP", "qty": 1}, format="json")
    token = write["X-Consistency-Token"]

    for path in ["/api/allocations/o2", "/api/orders", "/api/orders/o2", "/api/products"]:
        read = api.get(path, HTTP_X_CONSISTENCY_TOKEN=token)
        assert read.status_code == 200
        assert read["X-Read-Model-Source"] == "primary"


@pytest.mark.parametrize("token", ["nonsense", "qm1-", "qm1-99999999999999"])
def test_a_read_with_a_token_not_issued_here_is_refused(api, token):
    response = api.get("/api/orders", HTTP_X_CONSISTENCY_TOKEN=token)

    assert response.status_code == 400
    assert "consistency token" in response.json()["message"]
    assert "X-Consistency-Token" in response.json()["errors"]


def test_a_waiting_order_says_when_its_stock_is_expected(api):
    add_batch("ship", "LAMP", 5, TOMORROW)
    add_batch("rugs", "RUG", 2)
    for reference, sku, qty in [("o1", "LAMP", 5), ("o2", "LAMP", 4), ("o3", "RUG", 2)]:
        place(reference, (sku, qty))
        services.submit_order(commands.SubmitOrder(reference))
    place("o4", ("RUG", 2))
    services.submit_order(commands.SubmitOrder("o4"))  # o3 holds the rugs: o4 waits
    # Cancels release stock after o2 and o4 waited (only arriving stock fills them).
    services.cancel_order(commands.CancelOrder("o1"))
    services.cancel_order(commands.CancelOrder("o3"))

    detail = api.get("/api/orders/o2").json()
    listed = api.get("/api/orders?waiting=true").json()["results"]

    assert (detail["waiting"], detail["stock_expected"]) == (True, TOMORROW.isoformat())
    assert {order["reference"]: order["stock_expected"] for order in listed} == {
        "o2": TOMORROW.isoformat(),
        "o4": "now",
    }


# --- counts without counting -------------------------------------------------------


def counts_of_the_orders_view(api, path: str) -> list[str]:
    """The statements that counted order_summary while ``path`` was read."""
    with CaptureQueriesContext(connection) as captured:
        response = api.get(path)
    assert response.status_code == 200
    return [
        query["sql"]
        for query in captured
        if "COUNT(" in query["sql"].upper() and "order_summary" in query["sql"]
    ]


@pytest.mark.parametrize(
    ("query", "count"),
    [("", 3), ("status=submitted", 2), ("status=cancelled&ordering=reference", 0)],
)
def test_the_orders_list_answers_its_count_without_counting_the_orders(api, shop, query, count):
    assert api.get(f"/api/orders?{query}").json()["count"] == count
    assert counts_of_the_orders_view(api, f"/api/orders?{query}") == []


@pytest.mark.parametrize("query", ["customer=grace", "search=o1", "waiting=true"])
def test_the_orders_list_counts_what_other_filters_find(api, shop, query):
    assert len(counts_of_the_orders_view(api, f"/api/orders?{query}")) == 1
    assert api.get(f"/api/orders?{query}").json()["count"] == 1


def test_the_orders_count_includes_the_write_whose_token_the_query_carries(api, shop):
    write = api.post(
        "/api/orders",
        {"customer": "Ada", "shipping_address": "Here", "lines": [{"sku": "LAMP", "qty": 1}]},
        format="json",
    )

    read = api.get(
        "/api/orders?status=pending", HTTP_X_CONSISTENCY_TOKEN=write["X-Consistency-Token"]
    )

    assert read.json()["count"] == 2
    assert_fresh(read)


def test_deep_pages_of_the_orders_show_their_orders_and_links(api, shop):
    for number in range(4, 8):
        place(f"o{number}", ("LAMP", 1))

    third = api.get("/api/orders?page_size=2&page=3&ordering=reference").json()
    last = api.get("/api/orders?page_size=2&page=4&ordering=reference").json()
    pending = api.get("/api/orders?page_size=2&page=3&status=pending&ordering=reference")

    assert (third["count"], [order["reference"] for order in third["results"]]) == (
        7,
        ["o5", "o6"],
    )
    assert "page=4" in third["next"] and "page=2" in third["previous"]
    assert ([order["reference"] for order in last["results"]], last["next"]) == (["o7"], None)
    assert pending.json()["count"] == 5  # o2, o4, o5, o6, o7
    assert [order["reference"] for order in pending.json()["results"]] == ["o7"]
    assert api.get("/api/orders?page_size=2&page=5").status_code == 404


def test_an_order_of_the_largest_amounts_the_rules_allow_reads_back(api):
    price = "9999999999.99"
    assert (
        api.post(
            "/api/products", {"sku": "GOLD", "name": "Gold bar", "price": price}, format="json"
        ).status_code
        == 201
    )
    lines = [{"sku": "GOLD", "qty": 2_147_483_647}]
    placed = api.post(
        "/api/orders",
        {"reference": "big", "customer": "Croesus", "shipping_address": "Lydia", "lines": lines},
        format="json",
    )
    assert placed.status_code == 201

    response = api.get("/api/orders/big", HTTP_X_CONSISTENCY_TOKEN=placed["X-Consistency-Token"])

    assert response.status_code == 200
    assert response.get("X-Read-Model-Stale") is None
    assert response.json()["lines"][0]["amount"] == "21474836469978525163.53"
    assert response.json()["total_amount"] == "21474836469978525163.53"


# --- the exact bodies --------------------------------------------------------------


@pytest.fixture
def settled_orders():
    """Orders in every state a summary shows: cancelled, waiting for stock expected on a
    date or in the warehouse now, pending, and submitted with every line allocated."""
    services.create_product(commands.CreateProduct("LAMP", "Desk lamp", Decimal("12.50")))
    add_batch("lamps-ship", "LAMP", 5, TOMORROW)
    add_batch("rugs", "RUG", 2)
    place("o1", ("LAMP", 5), customer="Zoë Ångström")
    submit("o1")
    place("o2", ("LAMP", 4), customer="Grace Hopper")
    submit("o2")  # o1 holds the lamps: o2 waits
    place("o3", ("RUG", 2))
    submit("o3")
    place("o4", ("RUG", 1))
    submit("o4")  # o3 holds the rugs: o4 waits
    services.cancel_order(commands.CancelOrder("o1"))
    services.cancel_order(commands.CancelOrder("o3"))
    place("o5", ("LAMP", 1), ("RUG", 1))
    submit("o5")
    place("o6", ("RUG", 1), customer="Alan Turing")


def summary(reference, status, lines, quantity, amount, allocated, waiting=False, expected=None):
    """An order summary as the API answers it, its keys in the API's order."""
    return {
        "reference": reference,
        "customer_name": OrderSummary.objects.get(reference=reference).customer_name,
        "shipping_address": "12 St James's Square, London",
        "status": status,
        "line_count": lines,
        "total_quantity": quantity,
        "total_amount": amount,
        "allocated_line_count": allocated,
        "waiting": waiting,
        "stock_expected": expected,
        "created_at": drf_time(OrderSummary.objects.get(reference=reference).created_at),
    }


def drf_time(moment: datetime.datetime) -> str:
    """DRF's rendering of a time: ISO 8601 in the current time zone, UTC written Z."""
    text = timezone.localtime(moment).isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def json_bytes(value) -> bytes:
    """``value`` as the API writes it: compact JSON, UTF-8, keys in their order."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def page(*results) -> dict:
    return {"count": len(results), "next": None, "previous": None, "results": list(results)}


ORDERS = {
    "o6": ("o6", "pending", 1, 1, "0.00", 0),
    "o5": ("o5", "submitted", 2, 2, "12.50", 2),
    "o4": ("o4", "submitted", 1, 1, "0.00", 0, True, "now"),
    "o3": ("o3", "cancelled", 1, 2, "0.00", 0),
    "o2": ("o2", "submitted", 1, 4, "50.00", 0, True, TOMORROW.isoformat()),
    "o1": ("o1", "cancelled", 1, 5, "62.50", 0),
}
LAMP = {
    "sku": "LAMP",
    "name": "Desk lamp",
    "price": "12.50",
    "purchased": 5,
    "allocated": 1,
    "available": 4,
    "available_now": 0,
    "next_eta": TOMORROW.isoformat(),
    "batch_count": 1,
}
RUG = {
    "sku": "RUG",
    "name": "RUG",
    "price": "0.00",
    "purchased": 2,
    "allocated": 1,
    "available": 1,
    "available_now": 1,
    "next_eta": None,
    "batch_count": 1,
}


def line(sku, name, qty, unit_price, amount, batchref) -> dict:
    keys = ("sku", "product_name", "qty", "unit_price", "amount", "batchref")
    return dict(zip(keys, (sku, name, qty, unit_price, amount, batchref), strict=True))


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/orders", lambda: page(*(summary(*ORDERS[ref]) for ref in ORDERS))),
        (
            "/api/orders?status=submitted",
            lambda: page(*(summary(*ORDERS[ref]) for ref in ("o5", "o4", "o2"))),
        ),
        (
            "/api/orders/o2",
            lambda: {
                **summary(*ORDERS["o2"]),
                "lines": [line("LAMP", "Desk lamp", 4, "12.50", "50.00", None)],
            },
        ),
        (
            "/api/orders/o5",
            lambda: {
                **summary(*ORDERS["o5"]),
                "lines": [
                    line("LAMP", "Desk lamp", 1, "12.50", "12.50", "lamps-ship"),
                    line("RUG", "RUG", 1, "0.00", "0.00", "rugs"),
                ],
            },
        ),
        ("/api/products", lambda: page(LAMP, RUG)),
        ("/api/products?in_stock=true", lambda: page(LAMP, RUG)),
        ("/api/products/LAMP", lambda: LAMP),
        ("/api/products/RUG", lambda: RUG),
    ],
)
def test_the_queries_answer_these_exact_bytes(api, settled_orders, settings, zone, path, expected):
    settings.TIME_ZONE = zone  # times are written in the server's zone, as DRF writes them

    response = api.get(path)

    assert response.status_code == 200
    assert response.content == json_bytes(expected())
