"""Bad input of every kind: a 4xx with a message, never a 5xx, and nothing written."""

import json
from urllib.parse import quote, unquote

import pytest
from django.core.cache import cache

from config.http.api import _first_message, flatten_errors
from orders_write.models import Order
from tests.database import database_state
from tests.factories import add_batch

# In one transaction, rolled back: what a test writes is read back from the write tables.
# Tests that read it from the read models, refreshed only after a commit, are marked
# transaction=True.
pytestmark = pytest.mark.django_db

COMMAND_PATHS = [
    "/api/products",
    "/api/batches",
    "/api/batches/b1/quantity",
    "/api/orders",
    "/api/allocate",
    "/api/deallocate",
    "/api/orders/o1/lines",
    "/api/orders/o1/lines/LAMP",
]

BAD_BODIES = [
    pytest.param("{not json", id="malformed-json"),
    pytest.param("[]", id="array"),
    pytest.param('"text"', id="string"),
    pytest.param("null", id="null"),
    pytest.param("{}", id="empty-object"),
    pytest.param(json.dumps({"qty": "three", "sku": 5}), id="wrong-types"),
    pytest.param(json.dumps({"qty": 1e400}), id="infinite-number"),
    pytest.param("\x00\x01", id="binary"),
]


@pytest.fixture
def batch():
    add_batch("b1", "LAMP", 10)


@pytest.mark.parametrize("path", COMMAND_PATHS)
@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_bodies_are_refused_with_a_message(api, batch, path, body):
    before = database_state()

    response = api.generic("POST", path, body, content_type="application/json")

    assert 400 <= response.status_code < 500, response.content
    assert response.json()["message"]
    assert database_state() == before


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"orderid": "o1", "sku": "LAMP", "qty": 10**30},
            "qty",
            "Quantity must be at most 2147483647",
        ),
        ({"orderid": "o1", "sku": "LAMP", "qty": 1.5}, "qty", "A valid integer is required."),
        ({"orderid": "o1", "sku": "LAMP", "qty": True}, "qty", "A valid integer is required."),
        ({"orderid": "o1", "sku": "LAMP", "qty": None}, "qty", "This field may not be null."),
        ({"orderid": "o1", "sku": "LAMP"}, "qty", "This field is required."),
        ({"orderid": "o1", "sku": "LAMP", "qty": 1, "batch": "x"}, "batch", "Unknown field."),
        (
            {"orderid": "x" * 256, "sku": "LAMP", "qty": 1},
            "orderid",
            "Order reference must be at most 255 characters",
        ),
        ({"orderid": "", "sku": "LAMP", "qty": 1}, "orderid", "Order reference must not be blank"),
        ({"orderid": "o1", "sku": ["LAMP"], "qty": 1}, "sku", "Not a valid string."),
        (
            {"orderid": "o1\x01", "sku": "LAMP", "qty": 1},
            "orderid",
            "Order reference must not contain control characters",
        ),
        (
            {"orderid": "o1\x00", "sku": "LAMP", "qty": 1},
            "orderid",
            "Null characters are not allowed.",
        ),
        (
            {"orderid": "o1", "sku": "x" * 100_000, "qty": 1},
            "sku",
            "SKU must be at most 255 characters",
        ),
    ],
)
def test_bad_fields_are_refused_per_field(api, batch, body, field, message):
    before = database_state()

    response = api.post("/api/allocate", body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][field] == [message]
    assert database_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer": "A", "shipping_address": "x", "lines": "LAMP"}, "lines"),
        ({"customer": "A", "shipping_address": "x", "lines": [{"sku": "LAMP"}]}, "lines.0.qty"),
        (
            {
                "customer": "A",
                "shipping_address": "x",
                "lines": [{"sku": "LAMP", "qty": 1, "x": 1}],
            },
            "lines.0.x",
        ),
        (
            {"customer": "A", "shipping_address": "x", "lines": [{"sku": "LAMP", "qty": 1}] * 501},
            "lines",
        ),
        (
            {"customer": "A", "shipping_address": "x", "lines": [{"sku": "LAMP", "qty": 1}] * 2},
            "lines.1.sku",
        ),
        (
            {"customer": "<script>alert(1)</script>" * 20, "shipping_address": "x", "lines": []},
            "customer",
        ),
        ({"customer": "A", "shipping_address": "x" * 2001, "lines": []}, "shipping_address"),
    ],
)
def test_bad_orders_are_refused_per_field(api, batch, body, field):
    before = database_state()

    response = api.post("/api/orders", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert database_state() == before


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("-1", "Price must not be negative"),
        ("1.001", "Price must have at most 2 decimal places"),
        ("1e20", "Price must be at most 9999999999.99"),
        ("NaN", "A valid number is required."),
        ("lots", "A valid number is required."),
    ],
)
def test_bad_prices_are_refused(api, price, message):
    response = api.post("/api/products", {"sku": "X", "name": "X", "price": price}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["price"] == [message]


@pytest.mark.django_db(transaction=True)
def test_unicode_names_are_kept_exactly(api):
    name = "Ørsted ✓ 椅子 — \u200b"
    response = api.post("/api/products", {"sku": "ÜBER-1", "name": name}, format="json")

    assert response.status_code == 201
    assert api.get("/api/products/%C3%9CBER-1").json()["name"] == name


def test_a_non_json_body_is_unsupported(api):
    response = api.post(
        "/api/allocate", "orderid=o1", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert response.json()["message"]


def test_a_huge_body_is_refused(api):
    body = json.dumps({"orderid": "o1", "sku": "LAMP", "qty": 1, "pad": "x" * 3_000_000})

    response = api.generic("POST", "/api/allocate", body, content_type="application/json")

    assert response.status_code in (400, 413)
    assert response.json()["message"]


def test_an_unknown_api_path_is_a_json_404(api):
    response = api.get("/api/nothing/here")

    assert response.status_code == 404
    assert response.json() == {"message": "No API endpoint at /api/nothing/here."}


@pytest.mark.parametrize(
    "path",
    ["/api/nothing/here", "/api/orders/line%0Aone/submit", "/api/batches/b%0A1/quantity"],
)
def test_a_post_to_an_unknown_api_path_is_a_json_404_not_a_csrf_page(api, path):
    # The API's clients send no CSRF token; a path no endpoint serves (a reference with a
    # newline matches no route) must still answer the API's JSON 404.
    api.handler.enforce_csrf_checks = True
    response = api.post(path, {}, format="json")

    assert response.status_code == 404
    assert response.json() == {"message": f"No API endpoint at {unquote(path)}."}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/orders/o%00"),
        ("get", "/api/products/LAMP%00"),
        ("get", "/api/allocations/o%1B1"),
        ("post", "/api/orders/o%00/submit"),
        ("post", "/api/orders/o%C2%85/cancel"),
        ("post", "/api/batches/b%00/quantity"),
    ],
)
def test_a_key_with_a_control_character_in_the_path_is_a_json_404(api, method, path):
    # No key holds one, and PostgreSQL cannot compare a NUL: a 500 before.
    response = getattr(api, method)(path, {"qty": 1}, format="json")

    assert response.status_code == 404
    assert response.json() == {"message": f"No API endpoint at {unquote(path)}."}


def test_a_wrong_method_is_a_json_405(api):
    response = api.put("/api/allocate", {}, format="json")

    assert response.status_code == 405
    assert response.json()["message"] == 'Method "PUT" not allowed.'


@pytest.mark.parametrize("path", ["/api/products/a%0Ab", "/api/allocations/%0A", "/api/x%0Ay"])
def test_a_path_with_a_newline_is_a_json_404(api, path):
    response = api.get(path)

    assert response.status_code == 404
    assert response.json()["message"]


# --- deeply nested JSON -------------------------------------------------------------------


def nested(depth: int, inner: str = "1") -> dict[str, str]:
    """Bodies ``depth`` levels deep: arrays, objects, and arrays inside a field."""
    return {
        "arrays": "[" * depth + "]" * depth,
        "objects": '{"a":' * depth + inner + "}" * depth,
        "in-a-field": '{"orderid": "o1", "sku": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}",
    }


@pytest.mark.parametrize("path", [*COMMAND_PATHS, "/api/auth/token/"])
@pytest.mark.parametrize("depth", [33, 1_000, 100_000])
def test_json_nested_too_deep_is_refused_with_a_message(api, batch, path, depth):
    cache.clear()  # the token endpoint's failed-login throttle
    before = database_state()

    for shape, body in nested(depth).items():
        response = api.generic("POST", path, body, content_type="application/json")

        assert response.status_code == 400, (shape, response.content[:300])
        assert response.json() == {
            "message": "JSON parse error - nested more than 32 levels deep"
        }, shape
    assert database_state() == before


def test_json_nested_32_levels_deep_is_read_as_usual(api, batch):
    before = database_state()

    response = api.generic(
        "POST", "/api/allocate", nested(32)["in-a-field"], content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["errors"]["sku"] == ["Not a valid string."]
    assert database_state() == before


@pytest.mark.django_db(transaction=True)
def test_brackets_inside_json_strings_do_not_count_as_nesting(api, batch):
    orderid = '[{"' * 50 + '\\"]'

    response = api.post(
        "/api/allocate", {"orderid": orderid, "sku": "LAMP", "qty": 1}, format="json"
    )

    assert response.status_code == 202, response.content
    assert api.get(response["Location"]).json() == [{"sku": "LAMP", "batchref": "b1"}]


def test_an_error_nested_deeper_than_python_recurses_is_still_answered():
    # Only the parser's limit keeps input this deep from a serializer; the answer's own
    # walk through the errors must not depend on it.
    detail: object = ["too deep"]
    for _ in range(5_000):
        detail = {"a": detail}

    assert _first_message(detail) == "a" + ".a" * 4_999 + ": too deep"
    assert flatten_errors(detail) == {"a" + ".a" * 4_999: ["too deep"]}


def test_errors_are_flattened_per_field_and_per_line():
    detail = {
        "non_field_errors": ["Bad order."],
        "lines": [{}, {"qty": ["Too many."], "sku": ["Unknown."]}],
        "customer": ["Blank."],
    }

    assert _first_message(detail) == "Bad order."
    assert flatten_errors(detail) == {
        "non_field_errors": ["Bad order."],
        "lines.1.qty": ["Too many."],
        "lines.1.sku": ["Unknown."],
        "customer": ["Blank."],
    }


# --- keys that name URLs ----------------------------------------------------------------

DOT_SEGMENT = '{what} must not be "." or "..", alone or between slashes'


def order_body(reference: str, sku: str = "LAMP") -> dict:
    return {
        "reference": reference,
        "customer": "Ada",
        "shipping_address": "12 St James's Square",
        "lines": [{"sku": sku, "qty": 1}],
    }


@pytest.mark.parametrize("key", [".", "..", "a/../b"])
@pytest.mark.parametrize(
    ("path", "body", "field", "what"),
    [
        ("/api/products", lambda key: {"sku": key, "name": "N"}, "sku", "SKU"),
        (
            "/api/batches",
            lambda key: {"ref": key, "sku": "LAMP", "qty": 1},
            "ref",
            "Batch reference",
        ),
        ("/api/batches", lambda key: {"ref": "b2", "sku": key, "qty": 1}, "sku", "SKU"),
        ("/api/orders", order_body, "reference", "Order reference"),
        ("/api/orders", lambda key: order_body("o1", sku=key), "lines.0.sku", "SKU"),
        (
            "/api/allocate",
            lambda key: {"orderid": key, "sku": "LAMP", "qty": 1},
            "orderid",
            "Order reference",
        ),
        ("/api/allocate", lambda key: {"orderid": "o1", "sku": key, "qty": 1}, "sku", "SKU"),
    ],
)
def test_a_key_with_a_dot_segment_is_refused(api, batch, key, path, body, field, what):
    before = database_state()

    response = api.post(path, body(key), format="json")

    assert response.status_code == 400, response.content
    message = DOT_SEGMENT.format(what=what)
    assert response.json() == {"message": message, "errors": {field: [message]}}
    assert database_state() == before


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("new", 'Order reference must not be "new"'),
        ("o1/submit", 'Order reference must not end in "/submit"'),
        ("2026/07/cancel", 'Order reference must not end in "/cancel"'),
    ],
)
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/orders", order_body, "reference"),
        ("/api/allocate", lambda key: {"orderid": key, "sku": "LAMP", "qty": 1}, "orderid"),
    ],
)
def test_an_order_reference_that_names_another_page_is_refused(
    api, batch, reference, message, path, body, field
):
    before = database_state()

    response = api.post(path, body(reference), format="json")

    assert response.status_code == 400, response.content
    assert response.json() == {"message": message, "errors": {field: [message]}}
    assert database_state() == before


REACHABLE_KEYS = [
    "a/b",
    "a?b",
    "a#b",
    "100%",
    "a%2Fb",
    "a b",
    "..a",
    "a.",
    "...",
    "x/submit/",
    "new/1",
    "NEW",
    "submit",
    "a\\b",
    "é/ü",
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", REACHABLE_KEYS)
def test_every_location_of_a_key_reads_what_was_written(api, batch, key):
    received = api.post("/api/batches", {"ref": key, "sku": key, "qty": 5}, format="json")
    assert received.status_code == 201, received.content
    assert api.get(received["Location"]).json()["sku"] == key
    changed = api.post(f"/api/batches/{quote(key, safe='')}/quantity", {"qty": 6}, format="json")
    assert changed.status_code == 202, changed.content

    placed = api.post("/api/orders", order_body(key), format="json")
    assert placed.status_code == 201, placed.content
    assert placed.json() == {"reference": key}
    assert api.get(placed["Location"]).json()["reference"] == key

    allocated = api.post("/api/allocate", {"orderid": key, "sku": key, "qty": 1}, format="json")
    assert allocated.status_code == 202, allocated.content
    assert api.get(allocated["Location"]).json() == [{"sku": key, "batchref": key}]

    submitted = api.post(f"{placed['Location']}/submit", format="json")
    assert submitted.status_code == 202, submitted.content
    assert Order.objects.get(reference=key).status == "submitted"


# --- every mistake at once (rule 11) ---------------------------------------------------


def test_an_order_with_several_mistakes_reports_them_all(api, batch):
    before = database_state()
    body = {
        "customer": "",
        "shipping_address": "x",
        "lines": [{"sku": "NOPE", "qty": 1}, {"sku": "LAMP", "qty": "three"}, {"sku": "LAMP"}],
    }

    response = api.post("/api/orders", body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "customer": ["Customer must not be blank"],
        "lines.0.sku": ["Invalid sku NOPE"],
        "lines.1.qty": ["A valid integer is required."],
        "lines.2.sku": ["SKU LAMP appears on more than one line"],
        "lines.2.qty": ["This field is required."],
    }
    assert database_state() == before


def test_a_bad_quantity_does_not_hide_an_unknown_sku(api):
    before = database_state()

    response = api.post("/api/allocate", {"orderid": "o1", "sku": "NOPE", "qty": 0}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == {
        "qty": ["Quantity must be positive"],
        "sku": ["Invalid sku NOPE"],
    }
    assert body["message"] == "2 problems: Quantity must be positive; Invalid sku NOPE"
    assert database_state() == before


def test_an_unreadable_quantity_does_not_hide_an_unknown_sku(api):
    before = database_state()

    body = {"ref": "b1", "sku": "", "qty": "lots"}
    response = api.post("/api/batches", body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "qty": ["A valid integer is required."],
        "sku": ["SKU must not be blank"],
    }
    assert database_state() == before


def test_several_refusals_of_one_kind_keep_its_status(api, batch):
    before = database_state()

    response = api.post("/api/deallocate", {"orderid": "nope", "sku": "LAMP"}, format="json")

    assert response.status_code == 404
    assert database_state() == before
