"""Journeys a warehouse clerk makes, in a real browser."""

import pytest
from playwright.sync_api import expect

from orders_read.read_models import READ_MODELS
from tests.factories import TOMORROW, add_batch

pytestmark = pytest.mark.django_db(transaction=True)


def test_place_an_order_with_two_lines_submit_it_and_see_its_batches(visit, staff_user):
    add_batch("depot-lamps", "LAMP", 10)
    add_batch("ship-chairs", "CHAIR", 10, TOMORROW)
    visit.log_in(staff_user.username)
    page = visit.page
    expect(page.get_by_role("heading", name="Orders")).to_be_visible()
    visit.snap("orders-empty")

    page.get_by_role("link", name="Place order").first.click()
    page.get_by_label("Reference").fill("web-1")
    page.get_by_label("Customer").fill("Ada Lovelace")
    page.get_by_label("Shipping address").fill("12 St James's Square\nLondon")
    page.locator("#id_lines-0-sku").fill("LAMP")
    page.locator("#id_lines-0-qty").fill("2")
    page.locator("#id_lines-1-sku").fill("CHAIR")
    page.locator("#id_lines-1-qty").fill("3")
    visit.snap("order-form")
    page.get_by_role("button", name="Place order").click()
    visit.snap("after-place")

    expect(page.get_by_text("Order web-1 placed.")).to_be_visible()
    expect(page.get_by_role("heading", name="Order web-1")).to_be_visible()
    expect(page.get_by_text("Pending", exact=True)).to_be_visible()
    visit.snap("order-placed")

    page.get_by_role("button", name="Submit order").click()

    expect(page.get_by_text("Order web-1 submitted.")).to_be_visible()
    rows = page.locator("table tbody tr")
    expect(rows.filter(has_text="LAMP")).to_contain_text("depot-lamps")
    expect(rows.filter(has_text="CHAIR")).to_contain_text("ship-chairs")
    expect(page.get_by_text("2 of 2 lines")).to_be_visible()
    visit.snap("order-submitted")

    page.get_by_role("link", name="Orders", exact=True).click()
    expect(page.locator("table")).to_contain_text("web-1")
    visit.snap("orders-list")


def test_add_a_line_row_without_script(visit, staff_user):
    visit.log_in(staff_user.username)
    page = visit.go("/orders/new/")
    expect(page.locator("input[name$='-sku']")).to_have_count(2)

    page.get_by_label("Customer").fill("Grace Hopper")
    page.get_by_role("button", name="Add a line").click()

    expect(page.locator("input[name$='-sku']")).to_have_count(3)
    expect(page.get_by_label("Customer")).to_have_value("Grace Hopper")
    visit.snap("three-rows")


def test_receive_a_batch_and_see_the_stock_change(visit, staff_user):
    add_batch("depot-lamps", "LAMP", 10)
    visit.log_in(staff_user.username)
    page = visit.go("/stock/")
    lamp = page.locator("#sku-LAMP")
    expect(lamp).to_contain_text("10")
    visit.snap("stock-before")

    page.get_by_role("link", name="Receive a batch").click()
    page.get_by_label("Batch reference").fill("ship-lamps")
    page.get_by_label("SKU").fill("LAMP")
    page.get_by_label("Quantity").fill("25")
    page.get_by_label("ETA").fill(TOMORROW.isoformat())
    visit.snap("batch-form")
    page.get_by_role("button", name="Receive batch").click()

    expect(page.get_by_text("Batch ship-lamps received")).to_be_visible()
    expect(page.locator("#sku-LAMP td").nth(5)).to_have_text("35")  # purchased
    expect(page.get_by_role("table", name="Batches of LAMP")).to_contain_text("ship-lamps")
    visit.snap("stock-after")


def test_an_invalid_form_shows_its_errors_beside_the_fields(visit, staff_user):
    add_batch("depot-lamps", "LAMP", 10)
    visit.log_in(staff_user.username)
    page = visit.go("/orders/new/")
    page.get_by_label("Customer").fill("Alan Turing")
    page.get_by_label("Shipping address").fill("Bletchley Park")
    page.locator("#id_lines-0-sku").fill("NOPE")
    page.locator("#id_lines-0-qty").fill("1")
    page.get_by_role("button", name="Place order").click()

    expect(page.locator("td.has-error")).to_contain_text("Invalid sku NOPE")
    expect(page.locator("#id_lines-0-sku")).to_have_value("NOPE")
    expect(page.get_by_label("Customer")).to_have_value("Alan Turing")
    visit.snap("order-invalid-sku")

    page.goto(visit.base_url + "/allocate/")
    page.get_by_label("Order reference").fill("o-1")
    page.get_by_label("SKU").fill("LAMP")
    page.get_by_label("Quantity").fill("0")
    page.get_by_role("button", name="Allocate").click()

    expect(page.locator("#id_qty-errors")).to_have_text("Quantity must be positive")
    visit.snap("allocate-invalid-quantity")


def test_read_models_page_refreshes_on_request(visit, staff_user):
    visit.log_in(staff_user.username)
    page = visit.go("/read-models/")
    expect(page.get_by_role("table")).to_contain_text("order_summary")

    page.get_by_role("button", name="Refresh all read models now").click()

    expect(page.get_by_text(f"Refreshed {len(READ_MODELS)} read models.")).to_be_visible()
    visit.snap("read-models")
