"""The write pages: every form's valid path (303 to the read page that shows it, with the
consistency token and a success message) and its refusals (200, the form again with the
error beside the field and the input kept, nothing written); CSRF and permissions."""

import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver

from orders_write import commands, domain, services
from orders_write.models import Batch, Order, OrderLine, Product
from tests.database import allocation_of, database_state, event_names
from tests.factories import TOMORROW, add_batch, make_user, place, submit
from tests.pages.html import (
    attribute,
    control,
    dom,
    errors_beside,
    form_errors,
    links_in_messages,
    message_levels,
    row_of,
    shown_messages,
    text,
    value_of,
    walk,
)

# In one transaction, rolled back: what a test writes is read back from the write tables.
# Tests that read it from the read models, refreshed only after a commit, are marked
# transaction=True.
pytestmark = pytest.mark.django_db


def assert_redirects_with_token(response, path: str) -> str:
    """A 303 to ``path`` carrying the write's consistency token; returns the Location."""
    assert response.status_code == 303, response.content.decode()[:2000]
    token = response["X-Consistency-Token"]
    assert re.fullmatch(r"qm1-\d+", token)
    location = response["Location"]
    parts = urlsplit(location)
    assert parts.path == path
    assert parse_qs(parts.query) == {"consistency": [token]}
    return location


def cancel(reference: str) -> None:
    services.handle(commands.CancelOrder(reference))


def assert_refused_form(response) -> None:
    assert response.status_code == 200
    assert "X-Consistency-Token" not in response
    assert 'method="post"' in response.content.decode()


# --- the order form ------------------------------------------------------------------


def order_form(
    *lines: tuple[str, str],
    reference: str = "web-1",
    customer: str = "Ada Lovelace",
    address: str = "12 St James's Square\nLondon",
    rows: int | None = None,
) -> dict[str, str]:
    """The order form's POST data; ``rows`` (default: lines + 1) includes empty rows."""
    rows = len(lines) + 1 if rows is None else rows
    data = {
        "reference": reference,
        "customer": customer,
        "shipping_address": address,
        "lines-TOTAL_FORMS": str(rows),
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
    }
    for index in range(rows):
        sku, qty = lines[index] if index < len(lines) else ("", "")
        data[f"lines-{index}-sku"] = sku
        data[f"lines-{index}-qty"] = qty
    return data


def test_the_order_form_starts_with_two_empty_rows(staff):
    response = staff.get("/orders/new/")

    assert response.status_code == 200
    assert value_of(response, "lines-TOTAL_FORMS") == "2"
    assert value_of(response, "lines-0-sku") == ""
    assert value_of(response, "lines-1-qty") == ""
    with pytest.raises(AssertionError):
        control(response, "lines-2-sku")


@pytest.mark.django_db(transaction=True)
def test_placing_an_order_redirects_to_its_page_with_the_consistency_token(staff):
    add_batch("depot-lamps", "LAMP", 10)
    add_batch("ship-chairs", "CHAIR", 10, TOMORROW)

    response = staff.post("/orders/new/", order_form(("LAMP", "2"), ("CHAIR", "3")))

    location = assert_redirects_with_token(response, "/orders/web-1/")
    order = Order.objects.get(reference="web-1")
    assert (order.customer_name, order.status) == ("Ada Lovelace", "pending")
    assert order.shipping_address == "12 St James's Square\nLondon"
    assert sorted(order.lines.values_list("product_id", "quantity")) == [
        ("CHAIR", 3),
        ("LAMP", 2),
    ]
    page = staff.get(location)
    assert page.status_code == 200
    assert shown_messages(page) == ["Order web-1 placed."]
    assert "Order web-1" in text(dom(page))
    assert row_of(page, "LAMP").startswith("LAMP LAMP 2")
    assert "Not allocated" in row_of(page, "CHAIR")


def test_empty_rows_of_the_order_form_are_ignored(staff):
    add_batch("b1", "LAMP", 10)
    data = order_form(("", ""), ("LAMP", "4"), rows=4)

    response = staff.post("/orders/new/", data)

    assert_redirects_with_token(response, "/orders/web-1/")
    assert list(OrderLine.objects.values_list("product_id", "quantity")) == [("LAMP", 4)]


def test_an_order_without_a_reference_gets_one(staff):
    add_batch("b1", "LAMP", 10)

    response = staff.post("/orders/new/", order_form(("LAMP", "1"), reference=""))

    reference = Order.objects.get().reference
    assert reference.startswith("ORD-")
    location = assert_redirects_with_token(response, f"/orders/{reference}/")
    assert shown_messages(staff.get(location)) == [f"Order {reference} placed."]


def test_add_line_shows_one_more_row_keeps_the_input_and_writes_nothing(staff):
    add_batch("b1", "LAMP", 10)
    data = {**order_form(("LAMP", "2"), rows=2), "add_line": "1"}
    before = database_state()

    response = staff.post("/orders/new/", data)

    assert response.status_code == 200
    assert value_of(response, "lines-TOTAL_FORMS") == "3"
    assert value_of(response, "lines-2-sku") == ""
    assert value_of(response, "lines-0-sku") == "LAMP"
    assert value_of(response, "lines-0-qty") == "2"
    assert value_of(response, "customer") == "Ada Lovelace"
    assert value_of(response, "shipping_address") == "12 St James's Square\nLondon"
    # The rows are not judged yet: the new empty row is no error.
    assert errors_beside(response, "lines-2-sku") == []
    assert database_state() == before


def test_an_unknown_sku_is_shown_beside_its_line_and_nothing_is_written(staff):
    add_batch("b1", "LAMP", 10)
    before = database_state()

    response = staff.post("/orders/new/", order_form(("NOPE", "2"), ("LAMP", "1")))

    assert_refused_form(response)
    assert errors_beside(response, "lines-0-sku") == ["Invalid sku NOPE"]
    assert errors_beside(response, "lines-1-sku") == []
    assert value_of(response, "lines-0-sku") == "NOPE"
    assert value_of(response, "lines-1-sku") == "LAMP"
    assert value_of(response, "reference") == "web-1"
    assert database_state() == before


def test_a_refused_line_after_an_empty_row_is_marked_on_its_own_row(staff):
    add_batch("b1", "LAMP", 10)
    before = database_state()
    data = order_form(("", ""), ("NOPE", "2"), rows=3)

    response = staff.post("/orders/new/", data)

    assert_refused_form(response)
    assert errors_beside(response, "lines-0-sku") == []
    assert errors_beside(response, "lines-1-sku") == ["Invalid sku NOPE"]
    assert database_state() == before


def test_a_line_quantity_of_zero_is_shown_beside_its_quantity(staff):
    add_batch("b1", "LAMP", 10)
    before = database_state()

    response = staff.post("/orders/new/", order_form(("LAMP", "0")))

    assert_refused_form(response)
    assert errors_beside(response, "lines-0-qty") == ["Quantity must be positive"]
    assert errors_beside(response, "lines-0-sku") == []
    assert value_of(response, "lines-0-qty") == "0"
    assert database_state() == before


def test_a_line_quantity_that_is_not_a_number_is_refused_by_the_form(staff):
    add_batch("b1", "LAMP", 10)
    before = database_state()

    response = staff.post("/orders/new/", order_form(("LAMP", "two")))

    assert_refused_form(response)
    assert errors_beside(response, "lines-0-qty") == ["Enter a whole number."]
    assert value_of(response, "lines-0-qty") == "two"
    assert database_state() == before


def test_a_blank_customer_is_shown_beside_the_customer(staff):
    add_batch("b1", "LAMP", 10)
    before = database_state()

    missing = staff.post("/orders/new/", order_form(("LAMP", "1"), customer=""))
    blank = staff.post("/orders/new/", order_form(("LAMP", "1"), customer="   "))

    assert_refused_form(missing)
    assert errors_beside(missing, "customer") == ["This field is required."]
    assert_refused_form(blank)
    assert errors_beside(blank, "customer") == ["Customer must not be blank"]
    assert value_of(blank, "lines-0-sku") == "LAMP"
    assert database_state() == before


def test_a_duplicate_order_reference_is_shown_beside_the_reference(staff):
    add_batch("b1", "LAMP", 10)
    place("web-1", ("LAMP", 1))
    before = database_state()

    response = staff.post("/orders/new/", order_form(("LAMP", "2")))

    assert_refused_form(response)
    assert errors_beside(response, "reference") == ["Order web-1 already exists"]
    assert database_state() == before


def test_the_same_sku_on_two_lines_is_refused_beside_the_second(staff):
    add_batch("b1", "LAMP", 10)
    before = database_state()

    response = staff.post("/orders/new/", order_form(("LAMP", "1"), ("LAMP", "2")))

    assert_refused_form(response)
    assert errors_beside(response, "lines-0-sku") == []
    assert errors_beside(response, "lines-1-sku") == ["SKU LAMP appears on more than one line"]
    assert database_state() == before


# --- submitting and cancelling -------------------------------------------------------


def test_the_submit_page_asks_to_confirm_without_writing(staff):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 1))
    before = database_state()

    response = staff.get("/orders/o1/submit/")

    assert response.status_code == 200
    assert "Submit order o1" in text(dom(response))
    assert database_state() == before


@pytest.mark.django_db(transaction=True)
def test_submitting_an_order_shows_the_batches_of_its_lines(staff):
    add_batch("depot-lamps", "LAMP", 10)
    add_batch("ship-lamps", "LAMP", 10, TOMORROW)
    add_batch("ship-chairs", "CHAIR", 10, TOMORROW)
    add_batch("depot-tables", "TABLE", 1)
    place("o1", ("LAMP", 2), ("CHAIR", 3), ("TABLE", 5))

    response = staff.post("/orders/o1/submit/")

    location = assert_redirects_with_token(response, "/orders/o1/")
    assert Order.objects.get(reference="o1").status == "submitted"
    page = staff.get(location)
    assert shown_messages(page) == ["Order o1 submitted."]
    assert "depot-lamps (warehouse)" in row_of(page, "LAMP")
    assert "ship-chairs (arrives" in row_of(page, "CHAIR")
    assert "Out of stock" in row_of(page, "TABLE")
    assert "2 of 3 lines" in text(dom(page))


def test_submitting_an_empty_order_is_refused_and_writes_nothing(staff):
    place("o1")
    before = database_state()

    response = staff.post("/orders/o1/submit/")

    assert_refused_form(response)
    assert form_errors(response) == ["Cannot submit empty order"]
    assert database_state() == before


def test_submitting_a_submitted_order_is_refused(staff):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 1))
    submit("o1")
    before = database_state()

    response = staff.post("/orders/o1/submit/")

    assert_refused_form(response)
    assert form_errors(response) == ["Order o1 is already submitted"]
    assert database_state() == before


@pytest.mark.django_db(transaction=True)
def test_cancelling_an_order_releases_its_stock(staff):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 4))
    submit("o1")
    assert allocation_of("o1", "LAMP") == "b1"

    response = staff.post("/orders/o1/cancel/")

    location = assert_redirects_with_token(response, "/orders/o1/")
    assert allocation_of("o1", "LAMP") is None
    page = staff.get(location)
    assert shown_messages(page) == ["Order o1 cancelled."]
    assert "Cancelled" in text(dom(page))
    assert "b1" not in row_of(page, "LAMP")


def test_cancelling_asks_first_and_says_what_it_will_release(staff):
    add_batch("b1", "LAMP", 10)
    add_batch("b2", "CHAIR", 10)
    add_batch("b3", "RUG", 1)
    place("o1", ("LAMP", 4), ("CHAIR", 1), ("RUG", 2))
    submit("o1")  # not enough rugs: that line holds nothing
    before = database_state()

    response = staff.get("/orders/o1/cancel/")

    assert response.status_code == 200
    page = text(dom(response))
    assert "Cancelling releases the stock the order holds:" in page
    assert "1 x CHAIR from batch b2 4 x LAMP from batch b1" in page
    assert "It cannot be undone" in page
    assert "Keep the order" in page
    assert database_state() == before  # asking changes nothing


def test_cancelling_an_order_that_holds_nothing_says_so(staff):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 1))  # pending: nothing allocated

    page = text(dom(staff.get("/orders/o1/cancel/")))

    assert "The order holds no stock, so cancelling releases none." in page


def test_asking_to_cancel_an_unknown_order_is_not_found(staff):
    assert staff.get("/orders/nope/cancel/").status_code == 404


@pytest.mark.parametrize("action", ["submit", "cancel"])
def test_a_cancelled_order_refuses_every_action(staff, action):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 1))
    cancel("o1")
    before = database_state()

    response = staff.post(f"/orders/o1/{action}/")

    assert_refused_form(response)
    assert form_errors(response) == ["Order o1 is cancelled"]
    assert database_state() == before


@pytest.mark.parametrize("action", ["submit", "cancel"])
def test_an_action_on_an_unknown_order_is_not_found(staff, action):
    before = database_state()

    response = staff.post(f"/orders/nope/{action}/")

    assert response.status_code == 404
    assert form_errors(response) == ["Unknown order nope"]
    assert database_state() == before


def test_an_order_reference_with_a_slash_works_end_to_end(staff):
    add_batch("b1", "LAMP", 10)
    response = staff.post("/orders/new/", order_form(("LAMP", "1"), reference="2026/07"))
    location = assert_redirects_with_token(response, "/orders/2026/07/")
    assert "Order 2026/07" in text(dom(staff.get(location)))

    response = staff.post("/orders/2026/07/submit/")

    assert_redirects_with_token(response, "/orders/2026/07/")
    assert allocation_of("2026/07", "LAMP") == "b1"


def form_actions(page) -> list[str]:
    return [
        attribute(element, "action")
        for element, _ in walk(dom(page))
        if element.name == "form" and attribute(element, "method") == "post"
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("reference", "path"),
    [
        ("a?b#c", "/orders/a%3Fb%23c/"),
        ("100%", "/orders/100%25/"),
        ("a\\b", "/orders/a%5Cb/"),
        ("..a", "/orders/..a/"),
        ("o1/submit/", "/orders/o1/submit//"),
        ("new/1", "/orders/new/1/"),
    ],
)
def test_an_order_reference_with_url_characters_works_end_to_end(staff, reference, path):
    add_batch("b1", "LAMP", 10)
    response = staff.post("/orders/new/", order_form(("LAMP", "1"), reference=reference))
    location = assert_redirects_with_token(response, path)
    page = staff.get(location)
    assert page.status_code == 200
    assert f"Order {reference}" in text(dom(page))
    submit = form_actions(page)[-1]
    assert submit == f"{path}submit/"
    [cancel] = [
        attribute(element, "href")
        for element, _ in walk(dom(page))
        if element.name == "a" and text(element) == "Cancel order…"
    ]
    assert cancel == f"{path}cancel/"
    assert staff.get(cancel).status_code == 200  # the confirmation, at the same URL

    response = staff.post(submit)

    assert_redirects_with_token(response, path)
    assert allocation_of(reference, "LAMP") == "b1"
    assert Order.objects.get(reference=reference).status == "submitted"


DOT_SEGMENT = '{what} must not be "." or "..", alone or between slashes'


@pytest.mark.parametrize("key", [".", "..", "a/../b"])
@pytest.mark.parametrize(
    ("path", "data", "field", "what"),
    [
        (
            "/orders/new/",
            lambda key: order_form(("LAMP", "1"), reference=key),
            "reference",
            "Order reference",
        ),
        ("/orders/new/", lambda key: order_form((key, "1")), "lines-0-sku", "SKU"),
        ("/batches/new/", lambda key: batch_form(ref=key), "ref", "Batch reference"),
        ("/batches/new/", lambda key: batch_form(sku=key), "sku", "SKU"),
        ("/allocate/", lambda key: allocate_form(orderid=key), "orderid", "Order reference"),
        ("/allocate/", lambda key: allocate_form(sku=key), "sku", "SKU"),
    ],
)
def test_a_key_with_a_dot_segment_is_refused_beside_its_field(staff, key, path, data, field, what):
    add_batch("depot", "LAMP", 10)
    before = database_state()

    response = staff.post(path, data(key))

    assert_refused_form(response)
    assert errors_beside(response, field) == [DOT_SEGMENT.format(what=what)]
    assert value_of(response, field) == key
    assert database_state() == before


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("new", 'Order reference must not be "new"'),
        ("o1/cancel", 'Order reference must not end in "/cancel"'),
    ],
)
@pytest.mark.parametrize(
    ("path", "data", "field"),
    [
        ("/orders/new/", lambda key: order_form(("LAMP", "1"), reference=key), "reference"),
        ("/allocate/", lambda key: allocate_form(orderid=key), "orderid"),
    ],
)
def test_an_order_reference_that_names_another_page_is_refused_beside_it(
    staff, reference, message, path, data, field
):
    add_batch("depot", "LAMP", 10)
    before = database_state()

    response = staff.post(path, data(reference))

    assert_refused_form(response)
    assert errors_beside(response, field) == [message]
    assert database_state() == before


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        else:
            yield route


def test_no_order_reference_the_rules_accept_names_another_page():
    # Each route under an order's own URL ends in a word the rules refuse as the end of a
    # reference, and one that goes on past the word (an order's lines) in a word they
    # refuse anywhere after a slash; each fixed page beside the orders' is a reference
    # they refuse.
    for route in _routes(get_resolver().url_patterns):
        under_an_order = re.fullmatch(r"(?:api/)?orders/<\w+:reference>/(\w+)(/?.*)", route)
        if under_an_order:
            assert under_an_order[1] in domain.RESERVED_ORDER_REFERENCE_ENDINGS, route
            if under_an_order[2].strip("/"):
                assert under_an_order[1] in domain.RESERVED_ORDER_REFERENCE_PARTS, route
                assert "<order_of_lines:reference>" in route, route  # read up to the part
        after_a_sku = re.fullmatch(r".*<key:sku>/(\w+)/?", route)
        if after_a_sku:
            assert after_a_sku[1] in domain.RESERVED_SKU_ENDINGS, route
        beside_the_orders = re.fullmatch(r"orders/(\w+)/", route)
        if beside_the_orders:
            assert beside_the_orders[1] in domain.RESERVED_ORDER_REFERENCES, route


def test_a_json_body_nested_deep_is_no_form_and_writes_nothing(staff):
    add_batch("b1", "LAMP", 10)
    before = database_state()

    response = staff.post("/orders/new/", "[" * 100_000, content_type="application/json")

    assert_refused_form(response)
    assert errors_beside(response, "customer") == ["This field is required."]
    assert database_state() == before


def test_a_form_value_of_nested_brackets_is_only_text(staff):
    add_batch("b1", "LAMP", 10)
    before = database_state()

    response = staff.post("/allocate/", allocate_form(orderid="[" * 100_000, sku="{" * 100_000))

    assert_refused_form(response)
    assert errors_beside(response, "orderid") == ["Order reference must be at most 255 characters"]
    assert database_state() == before


# --- receiving a batch ----------------------------------------------------------------


def batch_form(
    ref="b1", sku="LAMP", qty="10", eta="", new_product: tuple[str, str] | None = None
) -> dict[str, str]:
    """The batch form's POST data; ``new_product`` (name, price) ticks "New product"."""
    data = {"ref": ref, "sku": sku, "qty": qty, "eta": eta}
    if new_product:
        data.update(new_product="on", name=new_product[0], price=new_product[1])
    return data


DESK_LAMP = ("Desk lamp", "24.90")


@pytest.mark.django_db(transaction=True)
def test_receiving_a_batch_shows_it_on_the_stock_page(staff):
    data = batch_form(eta=TOMORROW.isoformat(), new_product=DESK_LAMP)
    response = staff.post("/batches/new/", data)

    assert response.status_code == 303
    assert re.fullmatch(r"qm1-\d+", response["X-Consistency-Token"])
    assert urlsplit(response["Location"]).path == "/stock/"
    batch = Batch.objects.get(reference="b1")
    assert (batch.product_id, batch.purchased_quantity, batch.eta) == ("LAMP", 10, TOMORROW)
    assert Product.objects.get(sku="LAMP").name == "Desk lamp"
    page = staff.get(response["Location"])
    assert shown_messages(page) == ["Batch b1 received: 10 x LAMP."]
    assert row_of(page, "b1").startswith("b1 Arrives")
    assert 'id="sku-LAMP"' in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_batch_without_eta_is_warehouse_stock(staff):
    response = staff.post("/batches/new/", batch_form(new_product=DESK_LAMP))

    assert response.status_code == 303
    assert Batch.objects.get(reference="b1").eta is None
    assert row_of(staff.get("/stock/"), "b1") == "b1 Warehouse 10 0 10 Change quantity"


@pytest.mark.django_db(transaction=True)
def test_a_received_batch_goes_to_the_orders_waiting_for_it_and_says_which(staff):
    add_batch("small", "LAMP", 1)
    for reference in ("o1", "o2"):
        place(reference, ("LAMP", 4))
        submit(reference)  # out of stock: waiting
    assert (allocation_of("o1", "LAMP"), allocation_of("o2", "LAMP")) == (None, None)

    response = staff.post("/batches/new/", batch_form(ref="arrived", qty="10"))

    assert response.status_code == 303
    assert (allocation_of("o1", "LAMP"), allocation_of("o2", "LAMP")) == ("arrived", "arrived")
    page = staff.get(response["Location"])
    assert shown_messages(page) == [
        "Batch arrived received: 10 x LAMP. "
        "4 x LAMP of order o1 allocated from batch arrived. "
        "4 x LAMP of order o2 allocated from batch arrived."
    ]
    assert links_in_messages(page) == ["/orders/o1/", "/orders/o2/"]
    assert row_of(page, "arrived") == "arrived Warehouse 10 8 2 Change quantity"


@pytest.mark.django_db(transaction=True)
def test_raising_a_batch_fills_a_waiting_order_and_says_so(staff):
    add_batch("depot", "LAMP", 10)
    place("o1", ("LAMP", 8))
    place("o2", ("LAMP", 5))
    submit("o1")
    submit("o2")  # 2 left: waiting

    response = staff.post("/batches/depot/quantity/", {"qty": "13"})

    assert allocation_of("o2", "LAMP") == "depot"
    page = staff.get(response["Location"])
    assert shown_messages(page) == [
        "Batch depot now holds 13. 5 x LAMP of order o2 allocated from batch depot."
    ]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (batch_form(qty="0"), "qty", "Quantity must be positive"),
        (batch_form(qty="-3"), "qty", "Quantity must be positive"),
        (batch_form(qty="ten"), "qty", "Enter a whole number."),
        (batch_form(sku=""), "sku", "This field is required."),
        (batch_form(sku="  "), "sku", "SKU must not be blank"),
        (batch_form(ref=""), "ref", "This field is required."),
        (batch_form(eta="next week"), "eta", "Enter a valid date."),
    ],
)
def test_a_refused_batch_shows_the_error_beside_its_field(staff, data, field, message):
    before = database_state()

    response = staff.post("/batches/new/", data)

    assert_refused_form(response)
    assert errors_beside(response, field) == [message]
    for name in ("ref", "sku", "qty", "eta"):
        assert value_of(response, name) == data[name]
    assert database_state() == before


def test_a_duplicate_batch_reference_is_shown_beside_the_reference(staff):
    add_batch("b1", "LAMP", 10)
    before = database_state()

    response = staff.post("/batches/new/", batch_form(sku="CHAIR", qty="5"))

    assert_refused_form(response)
    assert errors_beside(response, "ref") == ["Batch b1 already exists"]
    assert value_of(response, "sku") == "CHAIR"
    assert database_state() == before


# --- changing a batch's quantity ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_reducing_a_batch_allocates_its_lines_again_and_says_so(staff):
    add_batch("depot", "LAMP", 10)
    add_batch("ship", "LAMP", 10, TOMORROW)
    place("o1", ("LAMP", 8))
    submit("o1")
    assert allocation_of("o1", "LAMP") == "depot"

    response = staff.post("/batches/depot/quantity/", {"qty": "5"})

    assert response.status_code == 303
    assert re.fullmatch(r"qm1-\d+", response["X-Consistency-Token"])
    assert urlsplit(response["Location"]).path == "/stock/"
    assert allocation_of("o1", "LAMP") == "ship"
    page = staff.get(response["Location"])
    assert shown_messages(page) == [
        "Batch depot now holds 5. 8 x LAMP of order o1 moved from batch depot to batch ship."
    ]
    assert message_levels(page) == ["success"]
    assert row_of(page, "depot") == "depot Warehouse 5 0 5 Change quantity"
    assert row_of(page, "ship").endswith("10 8 2 Change quantity")


@pytest.mark.django_db(transaction=True)
def test_raising_a_batch_moves_nothing(staff):
    add_batch("depot", "LAMP", 10)
    place("o1", ("LAMP", 8))
    submit("o1")

    response = staff.post("/batches/depot/quantity/", {"qty": "20"})

    assert response.status_code == 303
    assert allocation_of("o1", "LAMP") == "depot"
    page = staff.get(response["Location"])
    assert shown_messages(page) == ["Batch depot now holds 20."]
    assert row_of(page, "depot") == "depot Warehouse 20 8 12 Change quantity"


@pytest.mark.parametrize(
    ("qty", "message"), [("0", "Quantity must be positive"), ("", "This field is required.")]
)
def test_a_refused_batch_quantity_is_shown_beside_the_quantity(staff, qty, message):
    add_batch("b1", "LAMP", 10)
    before = database_state()

    response = staff.post("/batches/b1/quantity/", {"qty": qty})

    assert_refused_form(response)
    assert errors_beside(response, "qty") == [message]
    assert value_of(response, "qty") == qty
    assert database_state() == before


def test_changing_an_unknown_batch_is_not_found(staff):
    add_batch("b1", "LAMP", 10)
    before = database_state()

    assert staff.get("/batches/nope/quantity/").status_code == 404
    response = staff.post("/batches/nope/quantity/", {"qty": "5"})

    assert response.status_code == 404
    assert "Unknown batch nope" in text(dom(response))
    assert database_state() == before


def test_the_batch_forms_put_the_token_before_the_fragment(staff):
    response = staff.post("/batches/new/", batch_form(new_product=DESK_LAMP))

    location = urlsplit(response["Location"])
    assert (location.path, location.fragment) == ("/stock/", "sku-LAMP")
    assert parse_qs(location.query) == {
        "sku": ["LAMP"],
        "consistency": [response["X-Consistency-Token"]],
    }

    changed = staff.post("/batches/b1/quantity/", {"qty": "4"})

    location = urlsplit(changed["Location"])
    assert (location.path, location.fragment) == ("/stock/", "sku-LAMP")
    assert parse_qs(location.query) == {
        "sku": ["LAMP"],
        "consistency": [changed["X-Consistency-Token"]],
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sku", ["P27a", "P27/#?%"])  # between P27 and P28
def test_the_batch_forms_land_on_the_stock_page_that_holds_the_sku(staff, settings, sku):
    settings.READ_MODEL_REFRESH = "async"
    for number in range(1, 61):
        add_batch(f"b{number:02}", f"P{number:02}", 5)
    settings.READ_MODEL_REFRESH = "sync"

    received = staff.post("/batches/new/", batch_form(ref="new", sku=sku, new_product=DESK_LAMP))
    page = staff.get(received["Location"])

    assert urlsplit(received["Location"]).fragment == f"sku-{quote(sku, safe='')}"
    assert "Page 2 of 3 · 61 products" in text(dom(page))
    assert f'id="sku-{quote(sku, safe="")}"' in page.content.decode()
    assert shown_messages(page) == [f"Batch new received: 10 x {sku}."]
    assert row_of(page, "new") == "new Warehouse 10 0 10 Change quantity"

    changed = staff.post("/batches/new/quantity/", {"qty": "4"})
    page = staff.get(changed["Location"])

    assert "Page 2 of 3 · 61 products" in text(dom(page))
    assert row_of(page, "new") == "new Warehouse 4 0 4 Change quantity"


# --- allocating -----------------------------------------------------------------------


def allocate_form(orderid="o1", sku="LAMP", qty="3") -> dict[str, str]:
    return {"orderid": orderid, "sku": sku, "qty": qty}


def test_the_allocate_form_takes_the_order_and_sku_from_the_link(staff):
    response = staff.get("/allocate/", {"orderid": "o1", "sku": "LAMP"})

    assert response.status_code == 200
    assert value_of(response, "orderid") == "o1"
    assert value_of(response, "sku") == "LAMP"


@pytest.mark.django_db(transaction=True)
def test_allocating_to_an_order_shows_the_line_and_its_batch(staff):
    add_batch("depot", "LAMP", 10)
    place("o1")

    response = staff.post("/allocate/", allocate_form())

    location = assert_redirects_with_token(response, "/orders/o1/")
    assert allocation_of("o1", "LAMP") == "depot"
    page = staff.get(location)
    assert shown_messages(page) == ["Allocated 3 x LAMP from batch depot."]
    assert "depot (warehouse)" in row_of(page, "LAMP")


@pytest.mark.django_db(transaction=True)
def test_allocating_out_of_stock_succeeds_and_warns(staff):
    add_batch("depot", "LAMP", 10)
    place("o1")

    response = staff.post("/allocate/", allocate_form(qty="30"))

    location = assert_redirects_with_token(response, "/orders/o1/")
    assert allocation_of("o1", "LAMP") is None
    assert event_names()[-1] == "OutOfStock"
    page = staff.get(location)
    assert shown_messages(page) == ["Out of stock: 30 x LAMP stays unallocated."]
    assert message_levels(page) == ["warning"]
    assert "Not allocated" in row_of(page, "LAMP")


def test_allocating_an_allocated_line_again_changes_nothing_and_says_so(staff):
    add_batch("depot", "LAMP", 10)
    services.handle(commands.Allocate("o1", "LAMP", 3))
    events_before = event_names()

    response = staff.post("/allocate/", allocate_form())

    location = assert_redirects_with_token(response, "/orders/o1/")
    assert event_names() == events_before
    page = staff.get(location)
    assert shown_messages(page) == ["LAMP was already allocated to order o1."]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (allocate_form(sku="NOPE"), "sku", "Invalid sku NOPE"),
        (allocate_form(qty="0"), "qty", "Quantity must be positive"),
        (allocate_form(qty="1.5"), "qty", "Enter a whole number."),
        (allocate_form(orderid=""), "orderid", "This field is required."),
        (allocate_form(orderid=" "), "orderid", "Order reference must not be blank"),
    ],
)
def test_a_refused_allocation_shows_the_error_beside_its_field(staff, data, field, message):
    add_batch("depot", "LAMP", 10)
    before = database_state()

    response = staff.post("/allocate/", data)

    assert_refused_form(response)
    assert errors_beside(response, field) == [message]
    for name in ("orderid", "sku", "qty"):
        assert value_of(response, name) == data[name]
    assert database_state() == before


def test_allocating_to_a_cancelled_order_is_refused(staff):
    add_batch("depot", "LAMP", 10)
    place("o1")
    cancel("o1")
    before = database_state()

    response = staff.post("/allocate/", allocate_form())

    assert_refused_form(response)
    assert errors_beside(response, "orderid") == ["Order o1 is cancelled"]
    assert value_of(response, "orderid") == "o1"
    assert database_state() == before


def test_a_different_quantity_for_an_existing_line_is_shown_beside_the_quantity(staff):
    add_batch("depot", "LAMP", 10)
    services.handle(commands.Allocate("o1", "LAMP", 3))
    before = database_state()

    response = staff.post("/allocate/", allocate_form(qty="4"))

    assert_refused_form(response)
    assert errors_beside(response, "qty") == ["Order o1 already has a line of 3 LAMP"]
    assert database_state() == before


# --- CSRF, permissions, hostile input ---------------------------------------------------


def arrange_every_form():
    """Orders and a batch for the write URLs below to act on."""
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 1))
    place("o3")


WRITE_POSTS = [
    ("/orders/new/", order_form(("LAMP", "1"), reference="o2")),
    ("/orders/o1/submit/", {}),
    ("/orders/o1/cancel/", {}),
    ("/batches/new/", batch_form(ref="b2", sku="LAMP")),
    ("/batches/b1/quantity/", {"qty": "3"}),
    ("/allocate/", allocate_form(orderid="o3")),
]


@pytest.mark.parametrize(("path", "data"), WRITE_POSTS)
def test_a_post_without_csrf_token_is_forbidden_and_writes_nothing(path, data):
    arrange_every_form()
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("staff"))
    before = database_state()

    response = client.post(path, data)

    assert response.status_code == 403
    assert "CSRF" in response.content.decode()
    assert database_state() == before


def test_the_forms_carry_a_csrf_token(staff):
    arrange_every_form()
    for path in ("/orders/new/", "/orders/o1/submit/", "/batches/new/", "/allocate/"):
        response = staff.get(path)
        assert value_of(response, "csrfmiddlewaretoken"), path


@pytest.mark.parametrize(("path", "data"), WRITE_POSTS)
def test_a_viewer_may_not_post_any_form(as_role, path, data):
    arrange_every_form()
    viewer = as_role("viewer")
    before = database_state()

    response = viewer.post(path, data)

    assert response.status_code == 403
    assert database_state() == before


@pytest.mark.parametrize("path", [path for path, _ in WRITE_POSTS])
def test_a_viewer_may_not_open_any_form(as_role, path):
    arrange_every_form()

    response = as_role("viewer").get(path)

    assert response.status_code == 403


@pytest.mark.parametrize(("path", "data"), WRITE_POSTS)
def test_a_clerk_may_post_every_form(as_role, path, data):
    """The other side of the viewer's 403s: the clerks' permissions are enough."""
    arrange_every_form()
    before = database_state()

    response = as_role("clerk").post(path, data)

    assert response.status_code == 303
    assert database_state() != before


@pytest.mark.django_db(transaction=True)
def test_a_viewer_sees_no_write_buttons_or_links(as_role):
    arrange_every_form()
    viewer, staff = as_role("viewer"), as_role("staff")
    write_marks = [
        "Submit order",
        "Cancel order",
        "/orders/o1/submit/",
        "/orders/o1/cancel/",
        "/allocate/",
        "/batches/new/",
        "/batches/b1/quantity/",
        "/orders/new/",
        "Receive a batch",
        "Change quantity",
    ]

    for path in ("/orders/o1/", "/stock/", "/orders/"):
        viewer_page = viewer.get(path).content.decode()
        staff_page = staff.get(path).content.decode()
        assert [mark for mark in write_marks if mark in viewer_page] == [], path
        assert any(mark in staff_page for mark in write_marks), path


@pytest.mark.parametrize(
    "path",
    [
        "/orders/new/",
        "/orders/o1/submit/",
        "/batches/new/",
        "/batches/b1/quantity/",
        "/allocate/",
        "/orders/",
        "/orders/o1/",
        "/stock/",
        "/read-models/",
    ],
)
def test_anonymous_users_are_sent_to_log_in(as_role, path):
    response = as_role("anonymous").get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


@pytest.mark.parametrize(("path", "data"), WRITE_POSTS)
def test_anonymous_posts_write_nothing(as_role, path, data):
    arrange_every_form()
    before = database_state()

    response = as_role("anonymous").post(path, data)

    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == "/accounts/login/"
    assert database_state() == before


def test_the_login_page_keeps_where_to_go_next(as_role):
    response = as_role("anonymous").get("/accounts/login/", {"next": "/stock/"})

    assert response.status_code == 200
    assert value_of(response, "next") == "/stock/"


def test_the_home_page_redirects_to_the_orders(staff):
    response = staff.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/orders/"


@pytest.mark.django_db(transaction=True)
def test_html_in_a_customer_name_is_shown_as_text(staff):
    add_batch("b1", "LAMP", 10)
    hostile = "<script>alert(1)</script>"
    response = staff.post(
        "/orders/new/",
        order_form(("LAMP", "1"), customer=hostile, address='<img src=x onerror="alert(2)">'),
    )
    assert response.status_code == 303

    for path in ("/orders/", "/orders/web-1/"):
        page = staff.get(path).content.decode()
        assert hostile not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
        assert "<img src=x" not in page, path


def test_html_in_a_refused_input_is_shown_as_text(staff):
    hostile = "<script>alert(1)</script>"

    response = staff.post("/orders/new/", order_form((hostile, "1")))

    assert_refused_form(response)
    page = response.content.decode()
    assert hostile not in page
    assert errors_beside(response, "lines-0-sku") == [f"Invalid sku {hostile}"]


@pytest.mark.parametrize(("path", "data"), WRITE_POSTS)
def test_a_clerk_who_may_not_view_goes_back_to_the_form_with_the_success_message(
    as_role, path, data
):
    """A clerk only (no viewer) may not open the read page a form sends to: 303 back
    to the form instead, which answers 200 and shows what was done."""
    arrange_every_form()
    clerk = as_role("clerk")

    response = clerk.post(path, data)

    assert response.status_code == 303
    location = response["Location"]
    assert urlsplit(location).path == path
    assert "consistency" in parse_qs(urlsplit(location).query)
    page = clerk.get(location)
    assert page.status_code == 200
    assert len(shown_messages(page)) == 1


@pytest.mark.parametrize("key", ["b?1", "b/1 %"])
def test_a_clerk_who_may_not_view_goes_back_to_a_form_whose_url_holds_a_key(as_role, key):
    add_batch(key, "LAMP", 5)
    clerk = as_role("clerk")
    path = f"/batches/{quote(key, safe='/')}/quantity/"

    response = clerk.post(path, {"qty": "3"})

    assert response.status_code == 303
    page = clerk.get(response["Location"])
    assert page.status_code == 200
    assert shown_messages(page) == [f"Batch {key} now holds 3."]


def test_staff_who_may_view_still_go_to_the_read_page(staff):
    arrange_every_form()

    response = staff.post("/batches/b1/quantity/", {"qty": "3"})

    assert urlsplit(response["Location"]).path == "/stock/"


# --- every mistake at once (rule 11) ---------------------------------------------------


def test_an_order_with_four_mistakes_shows_them_all_after_one_submit(staff):
    add_batch("b1", "LAMP", 10)
    before = database_state()
    data = order_form(("NOPE", "1"), ("LAMP", "0"), ("LAMP", "2"), customer="")

    response = staff.post("/orders/new/", data)

    assert_refused_form(response)
    assert errors_beside(response, "customer") == ["This field is required."]
    assert errors_beside(response, "lines-0-sku") == ["Invalid sku NOPE"]
    assert errors_beside(response, "lines-1-qty") == ["Quantity must be positive"]
    assert errors_beside(response, "lines-2-sku") == ["SKU LAMP appears on more than one line"]
    assert database_state() == before


def test_a_batch_with_a_bad_quantity_and_a_taken_reference_shows_both(staff):
    add_batch("b1", "LAMP", 10)
    before = database_state()

    response = staff.post("/batches/new/", {"ref": "b1", "sku": "LAMP", "qty": "0", "eta": ""})

    assert_refused_form(response)
    assert errors_beside(response, "ref") == ["Batch b1 already exists"]
    assert errors_beside(response, "qty") == ["Quantity must be positive"]
    assert database_state() == before


def test_an_unreadable_quantity_still_shows_the_unknown_sku(staff):
    place("o1")
    before = database_state()

    response = staff.post("/allocate/", {"orderid": "o1", "sku": "NOPE", "qty": "many"})

    assert_refused_form(response)
    assert errors_beside(response, "qty") == ["Enter a whole number."]
    assert errors_beside(response, "sku") == ["Invalid sku NOPE"]
    assert database_state() == before


# --- no silent creation from the staff pages ------------------------------------------


def test_allocating_to_an_unknown_order_is_refused_and_creates_nothing(staff):
    add_batch("depot", "LAMP", 10)
    place("DEMO-0001100")
    before = database_state()

    response = staff.post("/allocate/", allocate_form(orderid="DEMO-000110"))

    assert_refused_form(response)
    assert errors_beside(response, "orderid") == ["Unknown order DEMO-000110"]
    assert database_state() == before


def test_a_batch_for_an_unknown_sku_is_refused_unless_new_product_is_ticked(staff):
    add_batch("depot", "DESK-LAMP", 10)
    before = database_state()

    response = staff.post("/batches/new/", batch_form(ref="b2", sku="DESKLAMP"))

    assert_refused_form(response)
    assert errors_beside(response, "sku") == ["Invalid sku DESKLAMP. Did you mean DESK-LAMP?"]
    assert database_state() == before


def test_a_new_product_is_created_with_its_name_and_price(staff):
    response = staff.post("/batches/new/", batch_form(sku="DESK-LAMP", new_product=DESK_LAMP))

    assert response.status_code == 303
    product = Product.objects.get(sku="DESK-LAMP")
    assert (product.name, str(product.price)) == ("Desk lamp", "24.90")


@pytest.mark.parametrize(
    ("new_product", "field", "message"),
    [
        (("", "24.90"), "name", "A new product needs its name and price."),
        (("Desk lamp", ""), "price", "A new product needs its name and price."),
        (("Desk lamp", "-1"), "price", "Price must not be negative"),
        (("   ", "1"), "name", "Name must not be blank"),
    ],
)
def test_a_new_product_needs_a_name_and_a_valid_price(staff, new_product, field, message):
    before = database_state()

    response = staff.post("/batches/new/", batch_form(new_product=new_product))

    assert_refused_form(response)
    assert errors_beside(response, field) == [message]
    assert database_state() == before


def test_new_product_for_a_known_sku_is_refused(staff):
    add_batch("depot", "LAMP", 10)
    before = database_state()

    response = staff.post("/batches/new/", batch_form(ref="b2", new_product=DESK_LAMP))

    assert_refused_form(response)
    assert errors_beside(response, "sku") == ["Product LAMP already exists"]
    assert database_state() == before


@pytest.mark.parametrize("path", ["/batches/new/", "/allocate/", "/orders/new/"])
def test_sku_fields_offer_the_known_skus(staff, path):
    add_batch("depot", "LAMP", 10)
    add_batch("shelf", "DESK-LAMP", 10)

    page = dom(staff.get(path))

    datalists = [node for node, _ in walk(page) if node.name == "datalist"]
    assert [attribute(datalist, "id") for datalist in datalists] == ["known-skus"]
    offered = [
        attribute(option, "value") for option, _ in walk(datalists[0]) if option.name == "option"
    ]
    assert offered == ["DESK-LAMP", "LAMP"]
    sku_inputs = [
        node
        for node, _ in walk(page)
        if node.name == "input" and (attribute(node, "name") or "").endswith("sku")
    ]
    assert sku_inputs and all(attribute(node, "list") == "known-skus" for node in sku_inputs)


# --- a batch's quantity: what it holds, and what a change did --------------------------


def test_the_quantity_form_starts_from_the_quantity_and_shows_what_is_allocated(staff):
    add_batch("depot", "LAMP", 790)
    place("o1", ("LAMP", 30))
    submit("o1")

    page = staff.get("/batches/depot/quantity/")

    assert value_of(page, "qty") == "790"
    assert "Allocated 30 to 1 line" in text(dom(page))
    assert "Available 760" in text(dom(page))
    assert row_of(page, "o1").startswith("o1 30")


@pytest.mark.django_db(transaction=True)
def test_reducing_a_batch_warns_of_each_line_left_without_stock(staff):
    add_batch("depot", "LAMP", 10)
    add_batch("ship", "LAMP", 4, TOMORROW)
    for reference, qty in (("o1", 3), ("o2", 5)):
        place(reference, ("LAMP", qty))
        submit(reference)

    response = staff.post("/batches/depot/quantity/", {"qty": "1"})

    page = staff.get(response["Location"])
    assert shown_messages(page) == [
        "Batch depot now holds 1. "
        "3 x LAMP of order o1 moved from batch depot to batch ship. "
        "5 x LAMP of order o2 is now out of stock (it was on batch depot)."
    ]
    assert message_levels(page) == ["warning"]
    assert links_in_messages(page) == ["/orders/o1/", "/orders/o2/"]


# --- what a second reading of the pages found --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_batch_reference_with_an_ampersand_reads_as_typed_in_the_message(staff):
    response = staff.post("/batches/new/", batch_form(ref="B&Q-1", new_product=DESK_LAMP))

    page = staff.get(response["Location"])
    assert shown_messages(page) == ["Batch B&Q-1 received: 10 x LAMP."]


@pytest.mark.django_db(transaction=True)
def test_the_stock_page_after_a_form_is_not_shown_as_filtered(staff):
    add_batch("depot", "CHAIR", 5)
    response = staff.post("/batches/new/", batch_form(new_product=DESK_LAMP))

    page = staff.get(response["Location"])

    assert row_of(page, "CHAIR").startswith("CHAIR")
    link_texts = [text(node) for node, _ in walk(dom(page)) if node.name == "a"]
    assert "Clear" not in link_texts


@pytest.mark.parametrize(
    "path",
    [
        "/orders/NOPE/lines/",
        "/orders/NOPE/lines/LAMP/",
        "/orders/NOPE/lines/LAMP/remove/",
        "/batches/NOPE/quantity/",
    ],
)
def test_a_viewer_is_refused_before_learning_whether_an_order_or_batch_exists(as_role, path):
    assert as_role("viewer").get(path).status_code == 403
    assert as_role("staff").get(path).status_code == 404
