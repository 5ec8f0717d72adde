"""The managers' pages: the dashboard (server-rendered SVG charts with their figures), the
CSV exports of the orders and stock lists (streamed, with the lists' filters), and the
stock page's search and in-stock filter."""

import csv
import io
from decimal import Decimal

import pytest
from django.db import connection

from orders_read import exports, queries, refresh
from orders_read.models import WaitingLine
from orders_read.read_models import READ_MODELS
from orders_write import commands, services
from orders_write.models import Event
from tests.database import queries_made
from tests.factories import add_batch, browser_for, place
from tests.pages.html import attribute, children, dom, text, walk

pytestmark = pytest.mark.django_db(transaction=True)


# --- reading the pages -------------------------------------------------------------


def elements(response, name: str) -> list:
    return [node for node, _ in walk(dom(response)) if node.name == name]


def table(response, label: str) -> list[list[str]]:
    """The cells' texts of each body row of the table labelled ``label``."""
    for node in elements(response, "table"):
        if attribute(node, "aria-label") == label:
            body = next(child for child in children(node) if child.name == "tbody")
            return [[text(cell) for cell in children(row)] for row in children(body)]
    raise AssertionError(f"no table {label!r}")


def headings(response) -> list[str]:
    for node in elements(response, "table"):
        head = next(child for child in children(node) if child.name == "thead")
        return [text(cell) for cell in children(children(head)[0])]
    return []


def links(response) -> dict[str, str]:
    return {text(node): attribute(node, "href") for node in elements(response, "a")}


def csv_rows(response) -> list[list[str]]:
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def product(sku: str, name: str, price: str = "10.00") -> None:
    services.handle(commands.CreateProduct(sku=sku, name=name, price=Decimal(price)))


def submit(reference: str):
    return services.handle(commands.SubmitOrder(reference))


# --- the dashboard -----------------------------------------------------------------


def test_the_dashboard_draws_thirty_days_of_units_ordered_and_allocated(staff):
    add_batch("lamps", "LAMP", 100)
    place("o1", ("LAMP", 3))
    submit("o1")

    response = staff.get("/dashboard/")

    assert response.status_code == 200
    charts = [svg for svg in elements(response, "svg") if "chart" in attribute(svg, "class")]
    per_day = charts[0]
    assert attribute(per_day, "role") == "img"
    titles = [text(node) for node, _ in walk(per_day) if node.name == "title"]
    assert titles[0] == "Units ordered and allocated per day, last 30 days"
    bars = [node for node, _ in walk(per_day) if node.name == "rect"]
    assert len(bars) == 60  # two a day
    today = table(response, "Units per day")[-1]
    assert today[1:] == ["3", "3"]
    assert titles[-2:] == [f"{today[0][4:]}: 3 ordered", f"{today[0][4:]}: 3 allocated"]


def test_the_dashboard_shows_top_products_stock_alerts_and_what_waits(staff):
    product("LAMP", "Desk lamp")
    product("CHAIR", "Chair")
    product("RUG", "Rug")
    add_batch("lamps", "LAMP", 10)
    add_batch("rugs", "RUG", 100)
    place("o1", ("LAMP", 6), ("CHAIR", 2), ("RUG", 1))
    place("o2", ("CHAIR", 3))
    submit("o1")
    submit("o2")

    response = staff.get("/dashboard/")

    assert table(response, "Top products") == [
        ["LAMP", "Desk lamp", "6", "6"],
        ["CHAIR", "Chair", "5", "0"],
        ["RUG", "Rug", "1", "1"],
    ]
    assert table(response, "Out of stock") == [["CHAIR", "Chair", "5", "5"]]
    assert table(response, "Running low") == [["LAMP", "Desk lamp", "4", "4", "—", "6", "0"]]
    assert table(response, "Waiting by product") == [["CHAIR", "2", "5"]]
    page = text(dom(response))
    assert "2 orders waiting for stock" in page
    assert "5 units waiting, in 2 lines" in page
    assert "1 product out of stock" in page
    assert "1 product running low" in page
    assert links(response)["2 orders waiting for stock"] == "/orders/?waiting=true"
    assert links(response)["LAMP"] == "/stock/?search=LAMP"


def test_an_empty_dashboard_says_there_is_nothing_yet(staff):
    response = staff.get("/dashboard/")

    assert response.status_code == 200
    page = text(dom(response))
    assert "Nothing was ordered in the last 30 days." in page
    assert "No order waits for stock." in page
    assert "Every product has stock available." in page


def test_the_dashboard_costs_the_same_queries_for_many_orders_as_for_one(staff):
    add_batch("lamps", "LAMP", 5)
    place("o0", ("LAMP", 1))
    submit("o0")
    queries_made(
        staff, "/dashboard/"
    )  # the first request also prepares statements of its connection
    one = queries_made(staff, "/dashboard/")
    for number in range(1, 15):
        sku = f"SKU-{number}"
        add_batch(f"b{number}", sku, 2)
        place(f"o{number}", (sku, 3), ("LAMP", 1))
        submit(f"o{number}")

    assert queries_made(staff, "/dashboard/") == one
    assert one <= 10  # session, user, permissions, freshness and the five reads


def test_the_dashboard_shows_a_write_at_once_with_its_token(staff, settings):
    add_batch("lamps", "LAMP", 10)
    place("o1", ("LAMP", 2))
    settings.READ_MODEL_REFRESH = "async"
    settings.READ_MODEL_MAX_WAIT = 0.2
    token = submit("o1").consistency_token

    stale = staff.get("/dashboard/", {"consistency": token})
    assert stale["X-Read-Model-Stale"] == "true"
    assert table(stale, "Units per day")[-1][1:] == ["2", "0"]

    refresh.refresh(READ_MODELS)
    fresh = staff.get("/dashboard/", {"consistency": token})

    assert "X-Read-Model-Stale" not in fresh
    assert "X-Read-Model-Refreshed-At" in fresh
    assert table(fresh, "Units per day")[-1][1:] == ["2", "2"]


def test_the_dashboard_reads_only_its_read_models():
    assert set(queries.VIEWS["dashboard"]) == {
        "line_days",
        "waiting_lines",
        "product_availability",
    }


@pytest.mark.parametrize(
    ("role", "status"),
    [("nobody", 403), ("clerk", 403), ("viewer", 200), ("staff", 200), ("superuser", 200)],
)
def test_the_dashboard_needs_the_viewers_permissions(role, status):
    assert browser_for(role).get("/dashboard/").status_code == status


def test_the_navigation_links_the_dashboard_for_viewers_only():
    assert links(browser_for("viewer").get("/orders/")).get("Dashboard") == "/dashboard/"
    assert "Dashboard" not in links(browser_for("clerk").get("/orders/new/"))


def test_the_admin_lists_waiting_lines_read_only(admin_client):
    add_batch("lamps", "LAMP", 1)
    place("o1", ("LAMP", 2))
    submit("o1")

    listing = admin_client.get("/admin/orders_read/waitingline/", {"q": "LAMP"})
    delete = admin_client.post("/admin/orders_read/waitingline/", {"action": "delete_selected"})

    assert listing.status_code == 200
    assert "o1" in text(dom(listing))
    assert delete.status_code in (200, 302, 403)
    assert WaitingLine.objects.count() == 1


# --- CSV exports -------------------------------------------------------------------


def test_the_orders_export_streams_every_matching_order_with_the_lists_filters(staff):
    add_batch("lamps", "LAMP", 100)
    for number in range(30):  # more than a page of the list
        place(f"web-{number:02}", ("LAMP", 1), customer="Ada Lovelace")
    place("shop-1", ("LAMP", 2), customer="Grace Hopper")
    submit("web-03")

    response = staff.get("/orders.csv", {"search": "web", "ordering": "reference"})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="orders.csv"'
    assert "X-Read-Model-Refreshed-At" in response
    header, *rows = csv_rows(response)
    assert header == [
        "reference",
        "customer",
        "shipping_address",
        "status",
        "lines",
        "allocated_lines",
        "quantity",
        "amount",
        "created_at",
        "waiting_for_stock",
    ]
    assert [row[0] for row in rows] == [f"web-{number:02}" for number in range(30)]
    assert rows[3][:8] == [
        "web-03",
        "Ada Lovelace",
        "12 St James's Square, London",
        "submitted",
        "1",
        "1",
        "1",
        "0.00",
    ]
    assert rows[3][9] == "False"


def test_the_orders_export_says_which_orders_wait_for_stock(staff):
    add_batch("lamps", "LAMP", 1)
    place("o1", ("LAMP", 1))
    place("o2", ("LAMP", 1))
    submit("o1")
    submit("o2")

    rows = csv_rows(staff.get("/orders.csv", {"waiting": "true"}))

    assert [(row[0], row[9]) for row in rows[1:]] == [("o2", "True")]


def test_the_export_keeps_spreadsheet_formulas_as_text(staff):
    place("=HYPERLINK(1)", customer="+cmd|' /C calc'!A0")

    (row,) = csv_rows(staff.get("/orders.csv"))[1:]

    assert row[:2] == ["'=HYPERLINK(1)", "'+cmd|' /C calc'!A0"]


def test_the_export_reads_rows_through_a_server_side_cursor_as_it_sends_them(staff, monkeypatch):
    for number in range(5):
        place(f"o{number}")
    monkeypatch.setattr(exports, "CHUNK_ROWS", 2)
    monkeypatch.setattr(exports, "FLUSH_BYTES", 1)  # a piece per row

    def open_cursors() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_cursors")
            return cursor.fetchone()[0]

    response = staff.get("/orders.csv")
    pieces = iter(response.streaming_content)
    first = next(pieces)

    # The first row went out while the cursor on the server still holds the rest.
    assert first.decode().splitlines()[1].startswith("o4,")
    assert open_cursors() == 1
    rest = b"".join(pieces).decode().splitlines()
    assert [line.split(",")[0] for line in rest] == ["o3", "o2", "o1", "o0"]
    assert open_cursors() == 0


def test_a_bad_filter_on_an_export_is_a_400_with_a_message_and_writes_nothing(staff):
    events = Event.objects.count()

    response = staff.get("/orders.csv", {"status": "lost"})

    assert response.status_code == 400
    assert "These filters cannot be applied." in text(dom(response))
    assert Event.objects.count() == events
    assert staff.get("/stock.csv", {"in_stock": "maybe"}).status_code == 400


@pytest.mark.parametrize(
    ("path", "role", "status"),
    [
        ("/orders.csv", "nobody", 403),
        ("/orders.csv", "clerk", 403),
        ("/orders.csv", "viewer", 200),
        ("/stock.csv", "nobody", 403),
        ("/stock.csv", "viewer", 200),
    ],
)
def test_exports_need_the_lists_permissions(path, role, status):
    assert browser_for(role).get(path).status_code == status


def test_the_stock_export_streams_the_stock_pages_filters(staff):
    product("LAMP", "Desk lamp", "24.99")
    product("CHAIR", "Blue chair")
    add_batch("lamps", "LAMP", 10)
    add_batch("lamps-later", "LAMP", 5)
    services.change_batch_quantity(commands.ChangeBatchQuantity(ref="lamps-later", qty=6))

    response = staff.get("/stock.csv", {"search": "lamp", "in_stock": "true"})

    assert response["Content-Disposition"] == 'attachment; filename="stock.csv"'
    assert csv_rows(response) == [
        [
            "sku",
            "product",
            "price",
            "purchased",
            "allocated",
            "available",
            "available_now_in_warehouse",
            "next_eta",
            "batches",
        ],
        ["LAMP", "Desk lamp", "24.99", "16", "0", "16", "16", "", "2"],
    ]


def test_the_lists_export_links_keep_their_filters(staff):
    place("o1")
    add_batch("lamps", "LAMP", 1)

    orders = staff.get("/orders/", {"status": "pending", "page": "1"})
    stock = staff.get("/stock/", {"search": "la", "in_stock": "true"})

    assert links(orders)["Export CSV"] == "/orders.csv?status=pending"
    assert links(stock)["Export CSV"] == "/stock.csv?search=la&in_stock=true"


# --- the stock page ----------------------------------------------------------------


def test_the_stock_page_searches_skus_and_names_in_any_case(staff):
    product("LAMP-1", "Desk lamp")
    product("CHAIR-1", "Blue chair")
    product("RUG-1", "Lamp-shaped rug")

    by_name = staff.get("/stock/", {"search": "LAMP"})
    by_sku = staff.get("/stock/", {"search": "chair-"})

    assert [row[0] for row in table_of_products(by_name)] == ["LAMP-1", "RUG-1"]
    assert [row[0] for row in table_of_products(by_sku)] == ["CHAIR-1"]
    search_box = next(
        node for node in elements(by_sku, "input") if attribute(node, "name") == "search"
    )
    assert attribute(search_box, "value") == "chair-"


def test_the_stock_page_filters_in_and_out_of_stock(staff):
    add_batch("lamps", "LAMP", 2)
    add_batch("chairs", "CHAIR", 1)
    place("o1", ("CHAIR", 1))
    submit("o1")

    in_stock = staff.get("/stock/", {"in_stock": "true"})
    out_of_stock = staff.get("/stock/", {"in_stock": "false"})

    assert [row[0] for row in table_of_products(in_stock)] == ["LAMP"]
    assert [row[0] for row in table_of_products(out_of_stock)] == ["CHAIR"]
    assert "No product matches these filters." in text(
        dom(staff.get("/stock/", {"search": "nothing like it"}))
    )


def test_the_stock_page_refuses_a_filter_it_cannot_apply(staff):
    response = staff.get("/stock/", {"in_stock": "maybe"})

    assert response.status_code == 400
    assert "These filters cannot be applied." in text(dom(response))


def test_the_stock_pages_columns_say_what_they_count(staff):
    add_batch("depot", "LAMP", 600)

    response = staff.get("/stock/")

    assert headings(response) == [
        "SKU",
        "Available warehouse and on its way",
        "Next ETA with stock left",
        "Product",
        "Available now in the warehouse",
        "Purchased all batches",
        "Allocated to orders",
        "Price",
    ]


def table_of_products(response) -> list[list[str]]:
    """The product rows of the stock table (each is followed by its batches' row)."""
    body = next(
        child for child in children(elements(response, "table")[0]) if child.name == "tbody"
    )
    return [[text(cell) for cell in children(row)] for row in children(body)][::2]
