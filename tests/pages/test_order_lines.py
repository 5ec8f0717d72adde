"""Correcting a placed order's lines on the staff pages: the links on the order page, the
add and change forms (PRG), and removing a line through a confirmation."""

import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from orders_write import commands, services
from orders_write.models import OrderLine
from tests.database import allocation_of, database_state
from tests.factories import add_batch, place
from tests.pages.html import attribute, dom, errors_beside, form_errors, text, walk

pytestmark = pytest.mark.django_db


def assert_redirects_with_token(response, path: str) -> str:
    assert response.status_code == 303, response.content.decode()[:2000]
    token = response["X-Consistency-Token"]
    assert re.fullmatch(r"qm1-\d+", token)
    parts = urlsplit(response["Location"])
    assert parts.path == path
    assert parse_qs(parts.query) == {"consistency": [token]}
    return response["Location"]


def assert_refused_form(response) -> None:
    assert response.status_code == 200
    assert "X-Consistency-Token" not in response
    assert 'method="post"' in response.content.decode()


def messages_with_levels(response) -> list[tuple[str, str]]:
    return [
        (attribute(node, "class"), text(node))
        for node, ancestors in walk(dom(response))
        if node.name == "li" and any("messages" in (attribute(a, "class") or "") for a in ancestors)
    ]


def links(response) -> dict[str, str]:
    return {
        text(node): attribute(node, "href") for node, _ in walk(dom(response)) if node.name == "a"
    }


def quantities(reference):
    return dict(
        OrderLine.objects.filter(order__reference=reference).values_list("product_id", "quantity")
    )


@pytest.fixture
def submitted_order():
    add_batch("depot", "LAMP", 10)
    add_batch("chairs", "CHAIR", 3)
    place("o1", ("LAMP", 2))
    services.submit_order(commands.SubmitOrder("o1"))


# --- the order page ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_order_page_links_each_line_to_its_change_and_removal(staff, submitted_order):
    page = staff.get("/orders/o1/")

    found = links(page)
    assert found["Add a line"] == "/orders/o1/lines/"
    assert found["Change quantity"] == "/orders/o1/lines/LAMP/"
    assert found["Remove…"] == "/orders/o1/lines/LAMP/remove/"


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_order_offers_no_line_changes(staff, submitted_order):
    services.cancel_order(commands.CancelOrder("o1"))

    found = links(staff.get("/orders/o1/"))

    assert not {"Add a line", "Change quantity", "Remove…"} & set(found)


@pytest.mark.django_db(transaction=True)
def test_a_viewer_who_is_no_clerk_sees_no_line_changes(as_role, submitted_order):
    found = links(as_role("viewer").get("/orders/o1/"))

    assert not {"Add a line", "Change quantity", "Remove…"} & set(found)


# --- adding a line -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_adding_a_line_redirects_to_the_order_saying_where_it_went(staff, submitted_order):
    response = staff.post("/orders/o1/lines/", {"sku": "CHAIR", "qty": "2"})

    location = assert_redirects_with_token(response, "/orders/o1/")
    page = staff.get(location)
    assert messages_with_levels(page) == [
        ("success", "Added 2 x CHAIR to order o1. Allocated from batch chairs.")
    ]
    assert "chairs" in text(dom(page))


def test_adding_a_line_out_of_stock_succeeds_with_a_warning(staff, submitted_order):
    response = staff.post("/orders/o1/lines/", {"sku": "CHAIR", "qty": "5"}, follow=True)

    assert messages_with_levels(response) == [
        ("warning", "Added 5 x CHAIR to order o1. Out of stock: 5 x CHAIR waits for stock.")
    ]
    assert quantities("o1") == {"LAMP": 2, "CHAIR": 5}


def test_adding_a_line_the_order_has_is_refused_beside_the_sku(staff, submitted_order):
    before = database_state()

    response = staff.post("/orders/o1/lines/", {"sku": "LAMP", "qty": "0"})

    assert_refused_form(response)
    assert errors_beside(response, "sku") == [
        "Order o1 already has a line for LAMP: change its quantity instead"
    ]
    assert errors_beside(response, "qty") == ["Quantity must be positive"]
    assert database_state() == before


def test_an_unreadable_quantity_still_shows_the_rules_refusal_of_the_sku(staff, submitted_order):
    before = database_state()

    response = staff.post("/orders/o1/lines/", {"sku": "NOPE", "qty": "lots"})

    assert_refused_form(response)
    assert errors_beside(response, "sku") == ["Invalid sku NOPE"]
    assert errors_beside(response, "qty") == ["Enter a whole number."]
    assert database_state() == before


def test_the_line_pages_of_an_unknown_order_or_line_are_not_found(staff, submitted_order):
    assert staff.get("/orders/nope/lines/").status_code == 404
    assert staff.get("/orders/o1/lines/CHAIR/").status_code == 404
    assert staff.get("/orders/o1/lines/CHAIR/remove/").status_code == 404
    assert staff.post("/orders/nope/lines/", {"sku": "LAMP", "qty": "1"}).status_code == 404


def test_a_cancelled_orders_line_form_says_why_it_refuses(staff, submitted_order):
    services.cancel_order(commands.CancelOrder("o1"))
    before = database_state()

    response = staff.post("/orders/o1/lines/", {"sku": "CHAIR", "qty": "1"})

    assert response.status_code == 200
    assert "Order o1 is cancelled: its lines no longer change." in text(dom(response))
    assert database_state() == before


# --- changing a quantity -----------------------------------------------------------------


def test_the_change_form_starts_from_the_lines_quantity(staff, submitted_order):
    response = staff.get("/orders/o1/lines/LAMP/")

    assert response.status_code == 200
    assert [
        attribute(node, "value")
        for node, _ in walk(dom(response))
        if attribute(node, "name") == "qty"
    ] == ["2"]


def test_changing_a_quantity_reallocates_and_says_so(staff, submitted_order):
    response = staff.post("/orders/o1/lines/LAMP/", {"qty": "7"})

    assert_redirects_with_token(response, "/orders/o1/")
    assert quantities("o1") == {"LAMP": 7}
    assert allocation_of("o1", "LAMP") == "depot"
    assert messages_with_levels(staff.get("/orders/o1/lines/LAMP/")) == [
        ("success", "LAMP on order o1 now has quantity 7. Allocated from batch depot.")
    ]


def test_raising_a_quantity_beyond_the_stock_warns(staff, submitted_order):
    response = staff.post("/orders/o1/lines/LAMP/", {"qty": "11"}, follow=True)

    assert messages_with_levels(response) == [
        (
            "warning",
            "LAMP on order o1 now has quantity 11. Out of stock: 11 x LAMP waits for stock.",
        )
    ]
    assert allocation_of("o1", "LAMP") is None


def test_a_refused_quantity_shows_the_rule_and_writes_nothing(staff, submitted_order):
    before = database_state()

    response = staff.post("/orders/o1/lines/LAMP/", {"qty": "-1"})

    assert_refused_form(response)
    assert errors_beside(response, "qty") == ["Quantity must be positive"]
    assert database_state() == before


# --- removing a line -----------------------------------------------------------------------


def test_removing_an_allocated_line_asks_to_confirm_what_it_releases(staff, submitted_order):
    services.add_line(commands.AddLine("o1", "CHAIR", 1))

    response = staff.get("/orders/o1/lines/LAMP/remove/")

    assert response.status_code == 200
    assert "releases the stock it holds: 2 x LAMP from batch depot" in text(dom(response))
    assert OrderLine.objects.filter(product_id="LAMP").exists()


def test_removing_a_line_redirects_to_the_order_saying_what_it_released(staff, submitted_order):
    services.add_line(commands.AddLine("o1", "CHAIR", 1))

    response = staff.post("/orders/o1/lines/LAMP/remove/", follow=False)

    assert_redirects_with_token(response, "/orders/o1/")
    assert quantities("o1") == {"CHAIR": 1}
    assert messages_with_levels(staff.get("/orders/o1/lines/CHAIR/")) == [
        ("success", "Removed 2 x LAMP from order o1. Released 2 from batch depot.")
    ]


def test_the_last_line_of_a_submitted_order_offers_cancelling_instead(staff, submitted_order):
    response = staff.get("/orders/o1/lines/LAMP/remove/")

    assert "a submitted order keeps at least one line" in text(dom(response))
    assert links(response)["Cancel order…"] == "/orders/o1/cancel/"
    assert "Remove line" not in text(dom(response))


def test_removing_the_last_line_of_a_submitted_order_is_refused(staff, submitted_order):
    before = database_state()

    response = staff.post("/orders/o1/lines/LAMP/remove/")

    assert_refused_form(response)
    assert form_errors(response) == [
        "Cannot remove the last line of submitted order o1: cancel the order instead"
    ]
    assert database_state() == before


def test_keys_with_slashes_have_line_pages_of_their_own(staff):
    add_batch("lamps", "LAMP/RED", 10)
    add_batch("oak", "CHAIR/lines/OAK", 10)
    place("shop/o1", ("LAMP/RED", 2), ("CHAIR/lines/OAK", 1))

    assert staff.get("/orders/shop/o1/lines/LAMP/RED/").status_code == 200
    assert (
        staff.post(
            f"/orders/{quote('shop/o1', safe='')}/lines/CHAIR/lines/OAK/", {"qty": "4"}
        ).status_code
        == 303
    )
    assert staff.post("/orders/shop/o1/lines/LAMP/RED/remove/").status_code == 303
    assert quantities("shop/o1") == {"CHAIR/lines/OAK": 4}


# --- permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/orders/o1/lines/", {"sku": "CHAIR", "qty": "1"}),
        ("/orders/o1/lines/LAMP/", {"qty": "1"}),
        ("/orders/o1/lines/LAMP/remove/", {}),
    ],
)
def test_a_viewer_may_not_change_lines(as_role, submitted_order, path, data):
    viewer = as_role("viewer")
    before = database_state()

    assert viewer.get(path).status_code == 403
    assert viewer.post(path, data).status_code == 403
    assert database_state() == before


@pytest.mark.parametrize(
    "path", ["/orders/o1/lines/", "/orders/o1/lines/LAMP/", "/orders/o1/lines/LAMP/remove/"]
)
def test_the_line_pages_of_a_cancelled_order_say_so_and_offer_no_change(
    staff, submitted_order, path
):
    services.cancel_order(commands.CancelOrder("o1"))

    page = staff.get(path)

    assert page.status_code == 200
    assert "Order o1 is cancelled: its lines no longer change." in text(dom(page))
    assert not [
        node
        for node, _ in walk(dom(page))
        if node.name == "button"
        and attribute(node, "type") == "submit"
        and "Log out" not in text(node)
    ]
