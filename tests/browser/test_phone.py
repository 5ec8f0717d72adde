"""The staff pages on a phone (390 px wide): the navigation folds behind a menu that works
without script, the stock table leads with what a clerk looks for, and no page scrolls
sideways (wide tables scroll inside their own frame)."""

import re

import pytest
from playwright.sync_api import expect

from orders_write import commands, services
from tests.browser.conftest import Visit
from tests.factories import TOMORROW, add_batch, place

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}
# One line of navigation: the brand and the menu button, with the bar's padding.
ONE_LINE_OF_NAVIGATION = 64
# On a wide screen every link shows, on a line or two as their number grows.
TWO_LINES_OF_NAVIGATION = 100


@pytest.fixture
def phone(browser, live_server, request):
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield Visit(page, live_server.url, request.node.name)
    context.close()


def navigation_height(page) -> float:
    return page.get_by_role("navigation", name="Main").bounding_box()["height"]


def overflows_sideways(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )


def within_the_screen(page, locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_navigation_folds_behind_a_menu_on_a_phone(phone, staff_user):
    phone.log_in(staff_user.username)
    page = phone.page
    expect(page.get_by_role("heading", name="Orders")).to_be_visible()
    stock_link = page.get_by_role("link", name="Stock", exact=True)

    assert navigation_height(page) <= ONE_LINE_OF_NAVIGATION
    expect(stock_link).to_be_hidden()
    expect(page.get_by_role("button", name="Log out")).to_be_hidden()
    phone.snap("menu-closed")

    page.get_by_text("Menu", exact=True).click()

    expect(stock_link).to_be_visible()
    expect(page.get_by_role("link", name="Place order")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    phone.snap("menu-open")

    stock_link.click()

    expect(page.get_by_role("heading", name="Stock")).to_be_visible()
    expect(stock_link).to_be_hidden()
    assert navigation_height(page) <= ONE_LINE_OF_NAVIGATION


def test_menu_opens_from_the_keyboard(phone, staff_user):
    phone.log_in(staff_user.username)
    page = phone.page

    page.get_by_role("checkbox", name="Menu").press("Space")

    expect(page.get_by_role("link", name="Stock", exact=True)).to_be_visible()


def test_stock_shows_sku_available_and_next_eta_first_on_a_phone(phone, staff_user):
    add_batch("depot-lamps", "LAMP-DESK-BRASS-01", 10)
    add_batch("ship-lamps", "LAMP-DESK-BRASS-01", 25, TOMORROW)
    add_batch("ship-chairs", "CHAIR", 4, TOMORROW)
    services.allocate(commands.Allocate(orderid="web-1", sku="LAMP-DESK-BRASS-01", qty=3))
    phone.log_in(staff_user.username)
    page = phone.go("/stock/")

    for heading in ("SKU", "Available", "Next ETA"):
        # The first such header is the stock table's; each product's batches follow.
        # Each header names its column, then says what it counts beneath.
        header = page.get_by_role("columnheader", name=re.compile(f"^{heading}")).first
        assert within_the_screen(page, header), f"{heading} is off the screen"
    lamp = page.locator("[id='sku-LAMP-DESK-BRASS-01']")
    assert within_the_screen(page, lamp.get_by_text("32", exact=True))
    assert within_the_screen(page, lamp.get_by_text(TOMORROW.strftime("%-d %b %Y")))
    assert not overflows_sideways(page)
    phone.snap("stock")


def test_no_staff_page_scrolls_sideways_on_a_phone(phone, staff_user):
    add_batch("depot-lamps", "LAMP-DESK-BRASS-01", 10)
    add_batch("ship-chairs", "CHAIR", 4, TOMORROW)
    place("web-1", ("LAMP-DESK-BRASS-01", 2), ("CHAIR", 3), customer="Ada Lovelace")
    page = phone.go("/accounts/login/")
    assert not overflows_sideways(page)
    phone.log_in(staff_user.username)
    # Every page of the menu (the admin and the API docs are not ours to lay out), then
    # the pages its pages lead to.
    menu = page.get_by_role("navigation", name="Main").locator("a:not(.brand)")
    paths = [
        path
        for path in menu.evaluate_all("links => links.map(link => link.pathname)")
        if not path.startswith(("/admin/", "/api/"))
    ]
    assert {"/orders/", "/stock/", "/read-models/", "/orders/new/", "/allocate/"} <= set(paths)
    paths += ["/orders/web-1/", "/orders/web-1/cancel/", "/batches/depot-lamps/quantity/"]

    for path in paths:
        page = phone.go(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert not overflows_sideways(page), f"{path} scrolls sideways"
        assert navigation_height(page) <= ONE_LINE_OF_NAVIGATION, f"{path}: navigation"
        phone.snap(path.strip("/").replace("/", "-"))


def test_wide_screens_show_every_link_without_a_menu(visit, staff_user):
    visit.log_in(staff_user.username)
    page = visit.page

    expect(page.get_by_role("link", name="Stock", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_text("Menu", exact=True)).to_be_hidden()
    assert navigation_height(page) <= TWO_LINES_OF_NAVIGATION
    visit.snap("wide")
