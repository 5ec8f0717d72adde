"""Hostile input to every staff form and read-page filter, with Hypothesis: very long
strings, RTL and combining marks, emoji, NUL and other control characters, lone
surrogates (sent as their UTF-8 bytes, which are invalid), HTML and JavaScript, SQL.

Whatever is posted: never a 5xx; a refused form writes nothing (every write table the
same before and after); a value that is accepted is shown escaped on the pages that show
it, and no page ever holds a hostile payload raw. Filters with garbage answer 200, or a
400/404 page with a message.

``pytest -s`` prints the examples per form and what they got; FORM_FUZZ_EXAMPLES=500
searches harder than CI does.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from urllib.parse import quote, urlencode, urlsplit

import pytest
from django.test import Client
from django.utils.html import escape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders_write import commands, services
from tests.database import database_state, empty_write_tables
from tests.factories import add_batch, place

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("FORM_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(1)>'
MARKUP = (SCRIPT, IMAGE)
PAYLOADS = [
    SCRIPT,
    IMAGE,
    "' OR 1=1 --",
    "'; DROP TABLE orders_write_order; --",
    "1; DROP TABLE orders_write_batch",
    "x" * 10_001,
    "\u202eLAMP\u202c",  # right-to-left override
    "مصباح مكتب",
    "e\u0301\u0302\u0303\u0304",  # combining marks
    "📦🚚👩‍👩‍👧",
    "a\x00b",
    "\x01\x07\x1b[31m\x7f",
    "line\r\nbreak",
    "\ud800",  # a lone surrogate
    "%00%2e%2e/%2F..",
    " ",
    "",
    "-1",
    "0",
    "2147483648",
    "1e400",
    "NaN",
    "9" * 400,
]
# A hostile value: one of the payloads, two of them joined, or any text at all.
HOSTILE = st.one_of(
    st.sampled_from(PAYLOADS),
    st.tuples(st.sampled_from(PAYLOADS), st.sampled_from(PAYLOADS)).map("".join),
    st.text(st.characters(exclude_categories=()), max_size=40),
)


def hostile_or(*plausible: str) -> st.SearchStrategy[str]:
    """A hostile value, or (as often) one the form accepts, so that hostile values in
    the other fields get written and shown."""
    return st.one_of(st.sampled_from(plausible), st.sampled_from([*plausible, *MARKUP]), HOSTILE)


HOSTILE_FIELD = st.sampled_from(MARKUP) | HOSTILE


def form_body(data: dict[str, str]) -> str:
    """An urlencoded body; lone surrogates go as their (invalid) UTF-8 bytes."""
    return urlencode(data, encoding="utf-8", errors="surrogatepass")


def path_part(value: str) -> str:
    return quote(value, safe="", encoding="utf-8", errors="surrogatepass")


OUTCOMES: dict[str, Counter[str]] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_outcomes():
    yield
    width = max(map(len, OUTCOMES), default=0)
    print(f"\nHostile examples per form (max_examples={EXAMPLES}):")
    for form, outcomes in sorted(OUTCOMES.items()):
        counts = ", ".join(f"{outcome}: {n}" for outcome, n in sorted(outcomes.items()))
        print(f"  {form:<{width}}  {sum(outcomes.values()):>4}  ({counts})")


class Shop:
    """The data each example starts from: a product, its batch, an allocated order (o1)
    and a pending one (o2), and a product without stock or lines. Made again only after
    an example wrote: a refusal writes nothing (which each example checks), so the data
    are still the same."""

    fresh = False

    @classmethod
    def open(cls) -> None:
        if cls.fresh:
            return
        empty_write_tables()  # the views follow: the seeding refreshes every one
        services.create_product(commands.CreateProduct("LAMP", "Desk lamp", Decimal("12.50")))
        add_batch("lamps", "LAMP", 100)
        place("o1", ("LAMP", 2))
        services.submit_order(commands.SubmitOrder("o1"))
        place("o2", ("LAMP", 1))
        # A product no order has a line for yet: a line for it may be added.
        services.create_product(commands.CreateProduct("CHAIR", "Chair", Decimal("40.00")))
        cls.fresh = True


@pytest.fixture(autouse=True)
def _new_shop_per_test():
    Shop.fresh = False  # each test starts on an empty database


def assert_no_raw_markup(response, *, where: str) -> str:
    html = response.content.decode()
    for payload in MARKUP:
        assert payload not in html, f"{payload!r} unescaped on {where}"
    return html


def post_hostile(
    client: Client,
    form: str,
    path: str,
    data: dict[str, str],
    *,
    shown_on: Callable[[str], list[str]] = lambda location: [location],
    displayed: tuple[str, ...] | None = None,
) -> None:
    """Post ``data`` and check the answer: no 5xx; a refusal writes nothing; an accepted
    value carrying markup is shown escaped, never raw, on the pages ``shown_on`` the
    redirect's location (for the ``displayed`` fields; None: every field)."""
    before = database_state()
    response = client.post(path, form_body(data), content_type="application/x-www-form-urlencoded")
    status = response.status_code
    OUTCOMES.setdefault(form, Counter())[
        "accepted" if status in (302, 303) else f"refused {status}"
    ] += 1
    assert status < 500, response.content.decode()[:2000]
    # 414: a hostile reference too long for a URL (config.http.middleware).
    assert status in (200, 302, 303, 400, 403, 404, 414), status
    assert_no_raw_markup(response, where=f"the answer to {form}")
    if status not in (302, 303):
        assert database_state() == before, f"{form} refused ({status}) but wrote"
        return
    Shop.fresh = False
    pages = []
    for page in shown_on(response["Location"]):
        shown = client.get(page)
        assert shown.status_code == 200, page
        pages.append(assert_no_raw_markup(shown, where=page))
    for name, value in data.items():
        if displayed is not None and name not in displayed:
            continue
        for payload in MARKUP:
            if payload in value and "\x00" not in value:
                assert any(escape(payload) in html for html in pages), (
                    f"{name}={value!r} accepted by {form} and shown nowhere escaped"
                )


def order_pages(location: str) -> list[str]:
    return [location, "/orders/"]


def stock_pages(location: str) -> list[str]:
    return [location, "/stock/"]


# --- the staff forms --------------------------------------------------------------------


@given(
    reference=hostile_or("", "web-1"),
    customer=hostile_or("Ada Lovelace"),
    address=hostile_or("12 St James's Square"),
    sku=hostile_or("LAMP"),
    qty=hostile_or("1", "3"),
    second_sku=hostile_or("", "LAMP"),
    total_forms=st.sampled_from(["2", "2", "2", "0", "-1", "1001", "x", "\x00"]),
)
@FUZZ
def test_hostile_orders_are_refused_or_shown_escaped(
    staff, reference, customer, address, sku, qty, second_sku, total_forms
):
    Shop.open()
    data = {
        "reference": reference,
        "customer": customer,
        "shipping_address": address,
        "lines-TOTAL_FORMS": total_forms,
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
        "lines-0-sku": sku,
        "lines-0-qty": qty,
        "lines-1-sku": second_sku,
        "lines-1-qty": "1" if second_sku else "",
    }
    # Rows beyond lines-TOTAL_FORMS are ignored, and a line's SKU must be a product's.
    shown = ("reference", "customer", "shipping_address")
    post_hostile(staff, "/orders/new/", "/orders/new/", data, shown_on=order_pages, displayed=shown)


@given(
    ref=hostile_or("b-new"),
    sku=hostile_or("LAMP", "NEW-LAMP"),
    qty=hostile_or("10"),
    eta=hostile_or("", "2030-01-31", "2030-02-30"),
)
@FUZZ
def test_hostile_batches_are_refused_or_shown_escaped(staff, ref, sku, qty, eta):
    Shop.open()
    data = {"ref": ref, "sku": sku, "qty": qty, "eta": eta}
    post_hostile(staff, "/batches/new/", "/batches/new/", data, shown_on=stock_pages)


@given(ref=hostile_or("lamps"), qty=hostile_or("50", "1"))
@FUZZ
def test_hostile_batch_quantities_are_refused_or_accepted(staff, ref, qty):
    Shop.open()
    path = f"/batches/{path_part(ref)}/quantity/"
    post_hostile(staff, "/batches/<ref>/quantity/", path, {"qty": qty}, shown_on=stock_pages)


@given(orderid=hostile_or("o1", "o9"), sku=hostile_or("LAMP"), qty=hostile_or("1", "2"))
@FUZZ
def test_hostile_allocations_are_refused_or_shown_escaped(staff, orderid, sku, qty):
    Shop.open()
    data = {"orderid": orderid, "sku": sku, "qty": qty}
    post_hostile(staff, "/allocate/", "/allocate/", data, shown_on=order_pages)


@pytest.mark.parametrize("action", ["submit", "cancel"])
@given(reference=hostile_or("o1", "o2"), extra=HOSTILE_FIELD)
@FUZZ
def test_hostile_order_actions_are_refused_or_accepted(staff, action, reference, extra):
    Shop.open()
    path = f"/orders/{path_part(reference)}/{action}/"
    post_hostile(staff, f"/orders/<ref>/{action}/", path, {"confirm": extra}, displayed=())


@given(reference=hostile_or("o1", "o2"), sku=hostile_or("CHAIR", "LAMP"), qty=hostile_or("1"))
@FUZZ
def test_hostile_new_lines_are_refused_or_shown_escaped(staff, reference, sku, qty):
    Shop.open()
    path = f"/orders/{path_part(reference)}/lines/"
    data = {"sku": sku, "qty": qty}
    post_hostile(staff, "/orders/<ref>/lines/", path, data, shown_on=order_pages)


@pytest.mark.parametrize("action", ["", "remove/"])
@given(reference=hostile_or("o1", "o2"), sku=hostile_or("LAMP"), qty=hostile_or("3", "1"))
@FUZZ
def test_hostile_line_changes_are_refused_or_accepted(staff, action, reference, sku, qty):
    Shop.open()
    path = f"/orders/{path_part(reference)}/lines/{path_part(sku)}/{action}"
    form = f"/orders/<ref>/lines/<sku>/{action}"
    post_hostile(staff, form, path, {"qty": qty}, shown_on=order_pages, displayed=())


@given(extra=HOSTILE_FIELD, view=hostile_or("order_summary"))
@FUZZ
def test_hostile_refresh_requests_are_harmless(staff, extra, view):
    Shop.open()
    before = database_state()
    data = {"view": view, "next": extra, extra[:50] or "x": extra}
    response = staff.post(
        "/read-models/refresh/", form_body(data), content_type="application/x-www-form-urlencoded"
    )
    OUTCOMES.setdefault("/read-models/refresh/", Counter())[str(response.status_code)] += 1
    assert response.status_code in (200, 302, 303, 400), response.status_code
    assert_no_raw_markup(response, where="/read-models/refresh/")
    if response.status_code in (302, 303):
        # Back to the read models' page, never to where the request says.
        assert urlsplit(response["Location"]).path == "/read-models/"
    assert database_state() == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/orders/o%00/"),
        ("get", "/orders/o%00/submit/"),
        ("post", "/orders/o%00/submit/"),
        ("post", "/orders/o%1B/cancel/"),
        ("get", "/orders/o%00/lines/"),
        ("post", "/orders/o1/lines/L%00/"),
        ("post", "/orders/o1/lines/L%7F/remove/"),
        ("get", "/batches/b%00/quantity/"),
        ("post", "/batches/b%00/quantity/"),
    ],
)
def test_a_key_with_a_control_character_in_a_page_url_is_not_found(staff, method, path):
    # No key holds one, and PostgreSQL cannot compare a NUL: a 500 before.
    before = database_state()

    response = getattr(staff, method)(path, {"qty": "1"})

    assert response.status_code == 404
    assert database_state() == before


# --- the admin's add forms --------------------------------------------------------------


@given(sku=hostile_or("NEW-LAMP"), name=hostile_or("Floor lamp"), price=hostile_or("9.99"))
@FUZZ
def test_hostile_products_in_the_admin_are_refused_or_shown_escaped(admin_client, sku, name, price):
    Shop.open()
    data = {"sku": sku, "name": name, "price": price}
    post_hostile(
        admin_client,
        "admin product add",
        "/admin/orders_write/product/add/",
        data,
        shown_on=lambda location: [location, "/stock/", "/admin/orders_write/product/"],
    )


@given(
    reference=hostile_or("b-new"),
    sku=hostile_or("LAMP", "NEW-LAMP"),
    quantity=hostile_or("12"),
    eta=hostile_or("", "2030-01-31"),
)
@FUZZ
def test_hostile_batches_in_the_admin_are_refused_or_shown_escaped(
    admin_client, reference, sku, quantity, eta
):
    Shop.open()
    data = {"reference": reference, "sku": sku, "purchased_quantity": quantity, "eta": eta}
    post_hostile(
        admin_client,
        "admin batch add",
        "/admin/orders_write/batch/add/",
        data,
        shown_on=lambda location: [location, "/stock/", "/admin/orders_write/batch/"],
    )


# --- the read pages' filters ------------------------------------------------------------


def get_hostile(client: Client, page: str, query: dict[str, str]) -> None:
    response = client.get(f"{page}?{form_body(query)}")
    OUTCOMES.setdefault(f"GET {page}", Counter())[str(response.status_code)] += 1
    # 414: several very long values make a URL longer than the server reads.
    assert response.status_code in (200, 400, 404, 414), response.status_code
    html = assert_no_raw_markup(response, where=page)
    if response.status_code != 200:
        assert "<h1" in html and len(html) > 200  # a page with a message, not a bare error


@given(
    status=hostile_or("", "pending", "submitted"),
    search=hostile_or("", "o1", "Ada"),
    ordering=hostile_or("", "-created_at", "reference"),
    page=hostile_or("", "1", "2"),
)
@FUZZ
def test_hostile_order_filters_answer_a_page(staff, status, search, ordering, page):
    Shop.open()
    get_hostile(
        staff,
        "/orders/",
        {"status": status, "search": search, "ordering": ordering, "page": page},
    )


@given(
    in_stock=hostile_or("", "true", "false"),
    search=hostile_or("", "LAMP", "lamp"),
    sku=hostile_or("", "LAMP", "CHAIR"),
    page=hostile_or("", "1", "2"),
    token=st.none() | HOSTILE_FIELD,
)
@FUZZ
def test_hostile_stock_filters_answer_a_page(staff, in_stock, search, sku, page, token):
    Shop.open()
    query = {"in_stock": in_stock, "search": search, "sku": sku, "page": page}
    if token is not None:
        query["consistency"] = token
    get_hostile(staff, "/stock/", query)


@given(
    export=st.sampled_from(["/orders.csv", "/stock.csv"]),
    filters=st.dictionaries(
        st.sampled_from(["status", "search", "ordering", "waiting", "in_stock", "consistency"]),
        HOSTILE_FIELD,
        max_size=3,
    ),
)
@FUZZ
def test_hostile_export_filters_answer_a_csv_or_a_400(staff, export, filters):
    Shop.open()
    response = staff.get(f"{export}?{form_body(filters)}")
    OUTCOMES.setdefault(f"GET {export}", Counter())[str(response.status_code)] += 1
    assert response.status_code in (200, 400, 414), response.status_code
    if response.status_code == 200:
        assert b"".join(response.streaming_content).count(b"\r\n") >= 1  # a header at least
    else:
        assert_no_raw_markup(response, where=export)
