"""A clerk corrects a submitted order in a real browser: changes a quantity, removes a
line after confirming what it releases, and adds a line."""

import pytest
from playwright.sync_api import expect

from orders_write import commands, services
from tests.factories import add_batch, place

pytestmark = pytest.mark.django_db(transaction=True)


def test_correct_a_submitted_orders_lines(visit, staff_user):
    add_batch("depot-lamps", "LAMP", 10)
    add_batch("depot-chairs", "CHAIR", 10)
    add_batch("depot-rugs", "RUG", 1)
    place("web-1", ("LAMP", 2), ("CHAIR", 3))
    services.submit_order(commands.SubmitOrder("web-1"))
    visit.log_in(staff_user.username)
    page = visit.go("/orders/web-1/")
    rows = page.locator("table tbody tr")

    rows.filter(has_text="LAMP").get_by_role("link", name="Change quantity").click()
    expect(page.get_by_label("New quantity")).to_have_value("2")
    page.get_by_label("New quantity").fill("5")
    page.get_by_role("button", name="Change quantity").click()

    expect(page.get_by_text("LAMP on order web-1 now has quantity 5.")).to_be_visible()
    expect(rows.filter(has_text="LAMP")).to_contain_text("depot-lamps")

    rows.filter(has_text="CHAIR").get_by_role("link", name="Remove…").click()
    expect(page.get_by_text("3 x CHAIR from batch depot-chairs")).to_be_visible()
    visit.snap("remove-line")
    page.get_by_role("button", name="Remove line").click()

    expect(page.get_by_text("Removed 3 x CHAIR from order web-1.")).to_be_visible()
    expect(rows.filter(has_text="CHAIR")).to_have_count(0)

    page.get_by_role("link", name="Add a line").click()
    page.get_by_label("SKU").fill("RUG")
    page.get_by_label("Quantity").fill("2")
    page.get_by_role("button", name="Add line").click()

    expect(page.get_by_text("Out of stock: 2 x RUG waits for stock.")).to_be_visible()
    expect(rows.filter(has_text="RUG")).to_contain_text("Out of stock")
    visit.snap("lines-corrected")
