"""The read pages: the order list (filters, search, sort, pages), an order, the stock,
the read models' state, and how fresh each answer is (headers, the stale notice)."""

import datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.formats import date_format

from orders_read import refresh
from orders_read.models import BaseState, RefreshState
from orders_read.read_models import READ_MODELS
from orders_write import commands, services
from tests.database import queries_made
from tests.factories import LATER, TOMORROW, add_batch, place, submit, watcher_row
from tests.pages.html import (
    attribute,
    children,
    classes,
    dom,
    shown_messages,
    text,
    walk,
)

pytestmark = pytest.mark.django_db(transaction=True)


# --- reading the pages -------------------------------------------------------------


def table_rows(response, label: str | None = None) -> list[list[str]]:
    """The cells' texts of each body row of the page's first table, or of the table
    labelled ``label``."""
    for node, _ in walk(dom(response)):
        if node.name != "table" or (label and attribute(node, "aria-label") != label):
            continue
        body = next(child for child in children(node) if child.name == "tbody")
        rows = [row for row in children(body) if row.name == "tr"]
        return [[text(cell) for cell in children(row)] for row in rows]
    return []


def references(response) -> list[str]:
    return [row[0] for row in table_rows(response)]


def links(response) -> dict[str, str]:
    """Each link's text and href."""
    return {
        text(node): attribute(node, "href") for node, _ in walk(dom(response)) if node.name == "a"
    }


def buttons(response) -> list[str]:
    return [text(node) for node, _ in walk(dom(response)) if node.name == "button"]


def empty_notice(response) -> str:
    return next(
        text(node)
        for node, _ in walk(dom(response))
        if node.name == "p" and "empty" in classes(node)
    )


def product(sku: str, price: str, name: str | None = None) -> None:
    services.handle(commands.CreateProduct(sku=sku, name=name or sku.title(), price=Decimal(price)))


def cancel(reference: str):
    return services.handle(commands.CancelOrder(reference))


def place_many(settings, count: int, **kwargs) -> None:
    """``count`` orders o01, o02, ... (placed in that order), the views refreshed once."""
    settings.READ_MODEL_REFRESH = "async"
    for number in range(1, count + 1):
        place(f"o{number:02}", **kwargs)
    settings.READ_MODEL_REFRESH = "sync"
    refresh.refresh(READ_MODELS)


# --- the order list ------------------------------------------------------------------


def test_the_order_list_shows_each_order_newest_first_with_its_totals(staff):
    product("LAMP", "12.50")
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 2), customer="Ada Lovelace")
    place("o2", customer="Grace Hopper")
    submit("o1")

    response = staff.get("/orders/")

    assert response.status_code == 200
    rows = table_rows(response)
    assert [row[:7] for row in rows] == [
        ["o2", "Grace Hopper", "Pending", "0", "0 / 0", "0", "0.00"],
        ["o1", "Ada Lovelace", "Submitted", "1", "1 / 1", "2", "25.00"],
    ]
    assert links(response)["o1"] == "/orders/o1/"
    assert "Page 1 of 1 · 2 orders" in text(dom(response))


def test_the_order_list_filters_by_status(staff):
    add_batch("b1", "LAMP", 10)
    place("pending-1", ("LAMP", 1))
    place("submitted-1", ("LAMP", 1))
    place("cancelled-1", ("LAMP", 1))
    submit("submitted-1")
    cancel("cancelled-1")

    for status in ("pending", "submitted", "cancelled"):
        response = staff.get("/orders/", {"status": status})
        assert references(response) == [f"{status}-1"]
        selected = [
            attribute(node, "value")
            for node, _ in walk(dom(response))
            if node.name == "option" and "selected" in node.attributes
        ]
        assert status in selected


def test_the_order_list_searches_references_and_customers_in_any_case(staff):
    place("web-1", customer="Ada Lovelace")
    place("web-2", customer="Grace Hopper")
    place("shop-3", customer="Alan Turing")

    by_customer = staff.get("/orders/", {"search": "hopper"})
    by_reference = staff.get("/orders/", {"search": "WEB"})

    assert references(by_customer) == ["web-2"]
    assert references(by_reference) == ["web-2", "web-1"]
    search_box = next(
        node for node, _ in walk(dom(by_customer)) if attribute(node, "name") == "search"
    )
    assert attribute(search_box, "value") == "hopper"


def test_the_order_list_sorts_by_a_column_either_way(staff):
    place("b-order", customer="Zed")
    place("c-order", customer="Amy")
    place("a-order", customer="Bob")

    assert references(staff.get("/orders/", {"ordering": "reference"})) == [
        "a-order",
        "b-order",
        "c-order",
    ]
    assert references(staff.get("/orders/", {"ordering": "-reference"})) == [
        "c-order",
        "b-order",
        "a-order",
    ]
    assert references(staff.get("/orders/", {"ordering": "customer_name"})) == [
        "c-order",
        "a-order",
        "b-order",
    ]
    assert references(staff.get("/orders/")) == ["a-order", "c-order", "b-order"]


def test_the_order_list_shows_25_orders_a_page(staff, settings):
    place_many(settings, 30)

    first = staff.get("/orders/", {"ordering": "reference"})
    second = staff.get("/orders/", {"ordering": "reference", "page": "2"})

    assert references(first) == [f"o{number:02}" for number in range(1, 26)]
    assert references(second) == [f"o{number:02}" for number in range(26, 31)]
    assert "Page 1 of 2 · 30 orders" in text(dom(first))
    assert "Page 2 of 2 · 30 orders" in text(dom(second))


def test_page_links_keep_the_filters(staff, settings):
    place_many(settings, 30, customer="Ada Lovelace")
    place("other", customer="Grace Hopper")
    token = services.handle(commands.CancelOrder("other")).consistency_token

    first = staff.get("/orders/", {"search": "ada", "ordering": "reference", "consistency": token})
    next_link = links(first)["Next →"]
    second = staff.get(f"/orders/{next_link}")
    previous_link = links(second)["← Previous"]

    assert parse_qs(urlsplit(next_link).query) == {
        "search": ["ada"],
        "ordering": ["reference"],
        "page": ["2"],
    }
    assert "Next →" not in links(second)
    assert references(second) == [f"o{number:02}" for number in range(26, 31)]
    assert parse_qs(urlsplit(previous_link).query) == {
        "search": ["ada"],
        "ordering": ["reference"],
        "page": ["1"],
    }
    assert "← Previous" not in links(first)


@pytest.mark.parametrize(("page", "shown"), [("99", "Page 2 of 2"), ("many", "Page 1 of 2")])
def test_a_page_number_out_of_range_shows_the_nearest_page(staff, settings, page, shown):
    place_many(settings, 26)

    response = staff.get("/orders/", {"page": page})

    assert response.status_code == 200
    assert shown in text(dom(response))


def test_no_orders_yet_offers_to_place_one(staff):
    response = staff.get("/orders/")

    assert response.status_code == 200
    assert table_rows(response) == []
    assert empty_notice(response) == "No orders yet. Place the first order."
    assert links(response)["Place the first order"] == "/orders/new/"


def test_a_viewer_is_not_offered_to_place_the_first_order(as_role):
    response = as_role("viewer").get("/orders/")

    assert empty_notice(response) == "No orders yet."


def test_no_matching_order_offers_to_show_all(staff):
    place("o1")

    response = staff.get("/orders/", {"status": "cancelled"})

    assert empty_notice(response) == "No order matches these filters. Show all orders."
    assert links(response)["Show all orders"] == "/orders/"


@pytest.mark.parametrize(
    ("query", "field", "error"),
    [
        (
            {"status": "lost"},
            "status",
            "Select a valid choice. lost is not one of the available choices.",
        ),
        (
            {"ordering": "password"},
            "ordering",
            "Select a valid choice. password is not one of the available choices.",
        ),
        (
            {"search": "x" * 256},
            "search",
            "Ensure this value has at most 255 characters (it has 256).",
        ),
    ],
)
def test_a_bad_filter_answers_400_with_a_message(staff, query, field, error):
    place("o1")

    response = staff.get("/orders/", query)

    assert response.status_code == 400
    page = text(dom(response))
    assert "These filters cannot be applied." in page
    assert f"{field}: {error}" in page


# --- one order -----------------------------------------------------------------------


CHANGE = "Change quantity Remove…"


def test_an_order_shows_its_lines_and_their_batches(staff):
    product("LAMP", "12.50", name="Desk lamp")
    product("CHAIR", "40.00", name="Chair")
    product("TABLE", "99.99", name="Table")
    add_batch("depot-lamps", "LAMP", 10)
    add_batch("ship-chairs", "CHAIR", 10, TOMORROW)
    services.place_order(
        commands.PlaceOrder(
            customer="Ada Lovelace",
            shipping_address="12 St James's Square\nLondon",
            lines=(
                commands.OrderLineInput("LAMP", 2),
                commands.OrderLineInput("CHAIR", 3),
                commands.OrderLineInput("TABLE", 1),
            ),
            reference="o1",
        )
    )
    submit("o1")

    response = staff.get("/orders/o1/")

    assert response.status_code == 200
    # The last cell: a clerk's links to correct the line.
    assert table_rows(response) == [
        ["CHAIR", "Chair", "3", "40.00", "120.00", "ship-chairs (arrives 25 Nov 2026)", CHANGE],
        ["LAMP", "Desk lamp", "2", "12.50", "25.00", "depot-lamps (warehouse)", CHANGE],
        ["TABLE", "Table", "1", "99.99", "99.99", "Out of stock", CHANGE],
    ]
    page = text(dom(response))
    assert "Order o1 Submitted" in page
    assert "Customer Ada Lovelace" in page
    assert "Ship to 12 St James's Square London" in page
    assert "Allocated 2 of 3 lines" in page
    assert "Total 6 244.99" in page
    assert "<br>" in response.content.decode()  # the address keeps its lines


def waiting_orders():
    """o2 waits for lamps a shipment on LATER now has room for (o1's cancel released
    them), o4 for rugs in the warehouse (o3's cancel), o6 for chairs nobody has; o5 is
    pending."""
    add_batch("ship", "LAMP", 5, LATER)
    add_batch("rugs", "RUG", 2)
    add_batch("chairs", "CHAIR", 1)
    for reference, sku, qty in [
        ("o1", "LAMP", 5),
        ("o2", "LAMP", 4),
        ("o3", "RUG", 2),
        ("o4", "RUG", 2),
        ("o6", "CHAIR", 3),
    ]:
        place(reference, (sku, qty))
        submit(reference)
    cancel("o1")
    cancel("o3")
    place("o5", ("LAMP", 1))


def test_the_orders_page_lists_the_orders_waiting_for_stock_and_when_it_is_expected(staff):
    waiting_orders()

    response = staff.get("/orders/?waiting=true")

    rows = {row[0]: row[2] for row in table_rows(response)}
    assert rows == {
        "o6": "Submitted Waiting for stock: no stock expected",
        "o4": "Submitted Waiting for stock: in the warehouse now",
        "o2": f"Submitted Waiting for stock: expected {date_format(LATER, 'j M Y')}",
    }
    assert sorted(row[0] for row in table_rows(staff.get("/orders/?waiting=false"))) == [
        "o1",
        "o3",
        "o5",
    ]


def test_a_waiting_order_says_when_its_stock_is_expected(staff):
    waiting_orders()

    page = text(dom(staff.get("/orders/o2/")))

    assert f"Allocated 0 of 1 line Waiting for stock: expected {date_format(LATER, 'j M Y')}" in (
        page
    )
    assert "Waiting for stock" not in text(dom(staff.get("/orders/o5/")))


def test_the_lines_of_a_pending_order_are_not_allocated_yet(staff):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 2))

    response = staff.get("/orders/o1/")

    assert table_rows(response)[0][5] == "Not allocated"
    assert "Out of stock" not in text(dom(response))


@pytest.mark.parametrize(
    ("arrange", "expected"),
    [
        (lambda: None, ["Submit order", "Cancel order…"]),
        (lambda: submit("o1"), ["Cancel order…"]),
        (lambda: cancel("o1"), []),
    ],
    ids=["pending", "submitted", "cancelled"],
)
def test_an_order_offers_only_the_actions_its_status_allows(staff, arrange, expected):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 2))
    arrange()

    response = staff.get("/orders/o1/")

    offered = [button for button in buttons(response) if button != "Log out"]
    # Cancelling releases stock: the page asks to confirm first (a link to the form).
    assert offered + [link for link in links(response) if link == "Cancel order…"] == expected
    page = response.content.decode()
    assert ('action="/orders/o1/submit/"' in page) == ("Submit order" in expected)
    assert (links(response).get("Cancel order…") == "/orders/o1/cancel/") == (
        "Cancel order…" in expected
    )
    assert ("Allocate a line" in links(response)) == bool(expected)


def test_an_order_without_lines_offers_to_allocate_one(staff):
    place("o1")

    response = staff.get("/orders/o1/")

    assert empty_notice(response) == "This order has no lines. Allocate a line to it."
    assert links(response)["Allocate a line to it"] == "/allocate/?orderid=o1"


def test_an_unknown_order_is_not_found(staff):
    place("o1")

    response = staff.get("/orders/o2/")

    assert response.status_code == 404


# --- stock ---------------------------------------------------------------------------


def test_the_stock_page_shows_availability_per_product(staff):
    product("LAMP", "12.50", name="Desk lamp")
    add_batch("depot", "LAMP", 10)
    add_batch("ship", "LAMP", 20, TOMORROW)
    add_batch("chairs", "CHAIR", 5)
    services.handle(commands.Allocate("o1", "LAMP", 8))

    response = staff.get("/stock/")

    assert response.status_code == 200
    products = [row for row in table_rows(response) if row[0]]
    assert products == [
        ["CHAIR", "5", "—", "CHAIR", "5", "5", "0", "0.00"],
        ["LAMP", "22", "25 Nov 2026", "Desk lamp", "2", "30", "8", "12.50"],
    ]
    assert 'id="sku-LAMP"' in response.content.decode()


def test_the_stock_page_lists_warehouse_batches_first_then_by_eta(staff):
    add_batch("ship-late", "LAMP", 5, LATER)
    add_batch("ship-b", "LAMP", 5, TOMORROW)
    add_batch("ship-a", "LAMP", 5, TOMORROW)
    add_batch("z-depot", "LAMP", 5)
    services.handle(commands.Allocate("o1", "LAMP", 3))

    response = staff.get("/stock/")

    assert table_rows(response, label="Batches of LAMP") == [
        ["z-depot", "Warehouse", "5", "3", "2", "Change quantity"],
        ["ship-a", "Arrives 25 Nov 2026", "5", "0", "5", "Change quantity"],
        ["ship-b", "Arrives 25 Nov 2026", "5", "0", "5", "Change quantity"],
        ["ship-late", "Arrives 4 Dec 2026", "5", "0", "5", "Change quantity"],
    ]
    assert links(response)["Change quantity"].startswith("/batches/")


def test_a_product_without_batches_says_so(staff):
    product("LAMP", "12.50")

    response = staff.get("/stock/")

    assert "No batches." in text(dom(response))
    assert table_rows(response, label="Batches of LAMP") == []


def test_no_stock_yet_offers_to_receive_a_batch(staff):
    response = staff.get("/stock/")

    assert response.status_code == 200
    assert empty_notice(response) == (
        "No stock yet. Receive the first batch: a new SKU creates its product."
    )
    assert links(response)["Receive the first batch"] == "/batches/new/"


def stock_many(settings, count: int) -> None:
    """``count`` products P01, P02, ... each with one batch b01, b02, ... of 5 units, the
    views refreshed once."""
    settings.READ_MODEL_REFRESH = "async"
    for number in range(1, count + 1):
        add_batch(f"b{number:02}", f"P{number:02}", 5)
    settings.READ_MODEL_REFRESH = "sync"
    refresh.refresh(READ_MODELS)


def skus(response) -> list[str]:
    """The SKUs of the stock page's products, in order (each product's row is followed
    by the row of its batches, whose first cell is empty)."""
    return [row[0] for row in table_rows(response) if row[0]]


def test_the_stock_page_shows_25_products_a_page_with_their_batches(staff, settings):
    stock_many(settings, 30)

    first = staff.get("/stock/")
    second = staff.get("/stock/", {"page": "2"})

    assert skus(first) == [f"P{number:02}" for number in range(1, 26)]
    assert skus(second) == [f"P{number:02}" for number in range(26, 31)]
    assert "Page 1 of 2 · 30 products" in text(dom(first))
    assert "Page 2 of 2 · 30 products" in text(dom(second))
    assert table_rows(second, label="Batches of P30") == [
        ["b30", "Warehouse", "5", "0", "5", "Change quantity"]
    ]
    assert "b30" not in text(dom(first))


def test_stock_page_links_keep_the_filters_and_the_export_takes_every_row(staff, settings):
    stock_many(settings, 30)
    add_batch("other", "Q-OTHER", 5)

    first = staff.get("/stock/", {"search": "p", "in_stock": "true"})
    next_link = links(first)["Next →"]
    second = staff.get(f"/stock/{next_link}")

    assert parse_qs(urlsplit(next_link).query) == {
        "search": ["p"],
        "in_stock": ["true"],
        "page": ["2"],
    }
    assert skus(second) == [f"P{number:02}" for number in range(26, 31)]
    assert parse_qs(urlsplit(links(second)["← Previous"]).query)["page"] == ["1"]
    export = staff.get(links(second)["Export CSV"])
    assert len(b"".join(export.streaming_content).decode().splitlines()) == 1 + 30


def test_the_stock_page_opens_on_the_page_that_holds_a_sku(staff, settings):
    stock_many(settings, 60)

    landed = staff.get("/stock/", {"sku": "P27"})
    filtered = staff.get("/stock/", {"sku": "P27", "search": "P2"})  # P20-P29
    missing = staff.get("/stock/", {"sku": "P265"})  # would be between P26 and P27

    assert "Page 2 of 3 · 60 products" in text(dom(landed))
    assert "P27" in skus(landed)
    assert links(landed)["Next →"] == "?page=3"  # the pages go on from there
    assert "Page 1 of 1 · 10 products" in text(dom(filtered))
    assert "Page 2 of 3" in text(dom(missing))
    assert "Page 1 of 3" in text(dom(staff.get("/stock/", {"sku": "P27", "page": "1"})))


def test_a_bad_landing_sku_answers_400_with_a_message(staff):
    add_batch("b1", "LAMP", 5)

    response = staff.get("/stock/", {"sku": "x" * 256})

    assert response.status_code == 400
    assert "Ensure this value has at most 255 characters (it has 256)." in text(dom(response))


@pytest.mark.parametrize("path", ["/orders/", "/stock/", "/read-models/"])
def test_a_user_without_the_viewers_permissions_may_not_read(as_role, path):
    assert as_role("nobody").get(path).status_code == 403
    assert as_role("viewer").get(path).status_code == 200


# --- the read models -------------------------------------------------------------------


def refresh_counts() -> dict[str, int]:
    return dict(RefreshState.objects.values_list("unit", "refresh_count"))


def test_the_read_models_page_shows_each_view_and_its_state(staff):
    add_batch("b1", "LAMP", 10)

    response = staff.get("/read-models/")

    assert response.status_code == 200
    rows = {row[0]: row for row in table_rows(response, "Read models")}
    assert sorted(rows) == sorted(READ_MODELS)
    counts = refresh_counts()
    for unit, row in rows.items():
        assert row[4] == str(counts[unit])
        assert row[-1] == "Up to date"
    assert rows["batch_availability"][3] == "1"  # rows


def test_the_read_models_page_shows_each_base_with_its_rows_or_without_when_unknown(staff):
    add_batch("b1", "LAMP", 10)
    BaseState.objects.filter(unit="order_summary").update(row_count=None, duration_ms=12.0)

    rows = {row[0]: row for row in table_rows(staff.get("/read-models/"), "Read models")}

    assert "(0 rows, " in rows["batch_availability"][6]  # rebuilt empty; b1 is in the delta
    assert rows["order_summary"][6].endswith("(12 ms)")
    assert "None" not in rows["order_summary"][6]


def test_the_read_models_page_shows_a_view_that_is_behind(staff, settings):
    settings.READ_MODEL_REFRESH = "async"
    place("o1")

    rows = {row[0]: row for row in table_rows(staff.get("/read-models/"), "Read models")}

    assert rows["order_summary"][-1] == "Behind: a refresh is due"
    assert rows["batch_availability"][-1] == "Up to date"


def test_the_read_models_page_warns_when_no_watcher_runs_in_async_mode(staff, settings):
    settings.READ_MODEL_REFRESH = "async"

    page = dom(staff.get("/read-models/"))

    (notice,) = [node for node, _ in walk(page) if attribute(node, "id") == "watcher-state"]
    assert "stale" in classes(notice)
    assert text(notice).startswith("No watcher (refresh_views --watch) is running.")
    assert "stay behind until one runs" in text(notice)


def test_the_read_models_page_shows_the_running_watcher(staff):
    watcher_row(silent_for=datetime.timedelta(seconds=1))

    (row,) = table_rows(staff.get("/read-models/"), "Watchers")

    assert row[0] == "app-1:4242"
    assert row[1] == "Running"


def test_the_read_models_page_shows_a_watcher_that_stopped_beating(staff):
    watcher = watcher_row(silent_for=datetime.timedelta(minutes=2))

    (row,) = table_rows(staff.get("/read-models/"), "Watchers")

    silent_since = timezone.localtime(watcher.heartbeat_at).strftime("%H:%M:%S")
    assert row[1] == f"Not responding since {silent_since}: it died or is stuck"


def test_the_refresh_button_refreshes_every_view_and_says_so(staff, settings):
    settings.READ_MODEL_REFRESH = "async"
    place("o1")
    before = refresh_counts()
    assert "Refresh all read models now" in buttons(staff.get("/read-models/"))

    response = staff.post("/read-models/refresh/")

    assert response.status_code == 303
    assert response["Location"] == "/read-models/"
    after = refresh_counts()
    assert all(after[unit] > before[unit] for unit in READ_MODELS)
    page = staff.get("/read-models/")
    assert shown_messages(page) == [f"Refreshed {len(READ_MODELS)} read models."]
    rows = {row[0]: row for row in table_rows(page, "Read models")}
    assert rows["order_summary"][4] == str(after["order_summary"])
    assert rows["order_summary"][-1] == "Up to date"
    assert references(staff.get("/orders/")) == ["o1"]


def test_refreshing_needs_a_post(staff):
    before = refresh_counts()

    response = staff.get("/read-models/refresh/")

    assert response.status_code == 405
    assert refresh_counts() == before


# --- freshness ---------------------------------------------------------------------------


def refreshed_at(response) -> datetime.datetime:
    value = datetime.datetime.fromisoformat(response["X-Read-Model-Refreshed-At"])
    assert value.tzinfo is not None
    return value


@pytest.mark.parametrize("path", ["/orders/", "/orders/o1/", "/stock/", "/read-models/"])
def test_every_read_page_tells_how_fresh_it_is(staff, path):
    place("o1")
    oldest = min(RefreshState.objects.values_list("last_refreshed_at", flat=True))

    response = staff.get(path)

    assert response.status_code == 200
    assert refreshed_at(response) >= oldest
    assert "X-Read-Model-Stale" not in response


def test_the_freshness_header_moves_on_after_a_write(staff):
    place("o1")
    before = refreshed_at(staff.get("/orders/"))

    place("o2")
    # The page also reads the batches (when a waiting order's stock is expected): the
    # header is its oldest view's time.
    add_batch("b1", "LAMP", 1)

    assert refreshed_at(staff.get("/orders/")) > before


def test_a_page_waits_for_the_write_its_token_names(staff):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 1))

    response = staff.post("/orders/o1/submit/")
    page = staff.get(response["Location"])

    assert "X-Read-Model-Stale" not in page
    assert "not shown yet" not in text(dom(page))
    assert "Order o1 Submitted" in text(dom(page))


def test_a_write_not_shown_yet_is_flagged_stale(staff, settings):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 1))
    settings.READ_MODEL_REFRESH = "async"
    settings.READ_MODEL_MAX_WAIT = 0.2

    response = staff.post("/orders/o1/submit/")
    assert response.status_code == 303
    page = staff.get(response["Location"])

    assert page.status_code == 200
    assert page["X-Read-Model-Stale"] == "true"
    assert "Your last change is not shown yet" in text(dom(page))
    assert shown_messages(page) == ["Order o1 submitted."]
    assert "Order o1 Pending" in text(dom(page))  # what the views still say

    refresh.refresh(READ_MODELS)
    caught_up = staff.get(response["Location"])

    assert "X-Read-Model-Stale" not in caught_up
    assert "not shown yet" not in text(dom(caught_up))
    assert "Order o1 Submitted" in text(dom(caught_up))


def test_the_token_may_come_as_a_header(staff, settings):
    place("o1")
    settings.READ_MODEL_REFRESH = "async"
    settings.READ_MODEL_MAX_WAIT = 0.2
    token = place("o2").consistency_token

    response = staff.get("/orders/", headers={"X-Consistency-Token": token})

    assert response["X-Read-Model-Stale"] == "true"
    assert references(response) == ["o1"]


def test_without_a_token_a_page_does_not_wait_or_warn(staff, settings):
    place("o1")
    settings.READ_MODEL_REFRESH = "async"
    place("o2")

    response = staff.get("/orders/")

    assert "X-Read-Model-Stale" not in response
    assert references(response) == ["o1"]


@pytest.mark.parametrize("path", ["/orders/", "/orders/o1/", "/stock/"])
@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("bogus", "Malformed consistency token"),
        ("qm1-", "Malformed consistency token"),
        ("qm1-" + "9" * 20, "Malformed consistency token"),
        ("qm1-999999999999", "Unknown consistency token"),
    ],
)
def test_a_bad_consistency_token_answers_400_with_a_message(staff, path, token, message):
    place("o1")

    response = staff.get(path, {"consistency": token})

    assert response.status_code == 400
    assert message in text(dom(response))


@pytest.mark.parametrize("path", ["/orders/", "/orders/o1/", "/stock/"])
def test_the_data_pages_say_as_of_when(staff, path):
    place("o1")

    assert "As of " in text(dom(staff.get(path)))


def test_a_new_order_not_shown_yet_says_so_instead_of_not_found(staff, settings):
    add_batch("b1", "LAMP", 10)
    settings.READ_MODEL_REFRESH = "async"
    settings.READ_MODEL_MAX_WAIT = 0.2

    response = staff.post(
        "/orders/new/",
        {
            "reference": "late-1",
            "customer": "Ada",
            "shipping_address": "London",
            "lines-TOTAL_FORMS": "1",
            "lines-INITIAL_FORMS": "0",
            "lines-MIN_NUM_FORMS": "0",
            "lines-MAX_NUM_FORMS": "500",
            "lines-0-sku": "LAMP",
            "lines-0-qty": "1",
        },
    )
    page = staff.get(response["Location"])

    assert page.status_code == 404
    assert page["X-Read-Model-Stale"] == "true"
    assert "Not shown yet" in text(dom(page))
    assert shown_messages(page) == ["Order late-1 placed."]

    refresh.refresh(READ_MODELS)
    assert staff.get(response["Location"]).status_code == 200


def test_an_unknown_page_is_a_not_found_page_with_navigation(staff):
    response = staff.get("/orders/nope/")

    assert response.status_code == 404
    assert "Not found" in text(dom(response))
    assert 'href="/stock/"' in response.content.decode()


# --- a bounded number of queries, whatever the size --------------------------------------


def test_the_read_pages_make_as_many_queries_for_many_rows_as_for_one(staff):
    add_batch("depot-0", "SKU-0", 10)
    place("o0", ("SKU-0", 1))
    submit("o0")
    paths = ["/orders/", "/orders/?waiting=true", "/orders/o0/", "/stock/"]
    for path in paths:
        queries_made(staff, path)  # the first request also prepares its statements
    with_one = {path: queries_made(staff, path) for path in paths}

    for number in range(1, 12):
        sku = f"SKU-{number}"
        add_batch(f"depot-{number}", sku, 2)
        add_batch(f"ship-{number}", sku, 3, TOMORROW)
        place(f"o{number}", (sku, 1), ("SKU-0", 1))
        submit(f"o{number}")
    services.create_batch(commands.CreateBatch("depot-more", "SKU-0", 5))

    assert {path: queries_made(staff, path) for path in paths} == with_one


def counts_of_the_orders_view(client, path: str) -> list[str]:
    """The statements that counted order_summary while ``path`` was read."""
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return [
        query["sql"]
        for query in captured
        if "COUNT(" in query["sql"].upper() and "order_summary" in query["sql"]
    ]


def test_the_orders_page_counts_its_orders_without_counting_them(staff, settings):
    place_many(settings, 30)
    cancel("o03")

    assert counts_of_the_orders_view(staff, "/orders/") == []
    assert counts_of_the_orders_view(staff, "/orders/?status=cancelled&page=1") == []
    assert counts_of_the_orders_view(staff, "/orders/?search=o0") != []  # on its indexes
    assert "Page 2 of 2 · 29 orders" in text(dom(staff.get("/orders/?status=pending&page=2")))
    assert "Page 1 of 1 · 1 order" in text(dom(staff.get("/orders/?status=cancelled")))
    assert "Page 1 of 1 · 9 orders" in text(dom(staff.get("/orders/?search=o0")))


def test_the_orders_page_shows_the_last_page_for_one_past_it(staff, settings):
    place_many(settings, 30)

    beyond = staff.get("/orders/", {"ordering": "reference", "page": "9"})

    assert references(beyond) == [f"o{number:02}" for number in range(26, 31)]
    assert "Page 2 of 2 · 30 orders" in text(dom(beyond))
