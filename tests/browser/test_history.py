"""An order's history as a clerk sees it, on a desk and on a phone."""

import pytest
from playwright.sync_api import expect

from orders_write import commands, services
from tests.factories import add_batch, place

pytestmark = pytest.mark.django_db(transaction=True)


def test_cancelling_an_order_shows_in_its_history_with_who_did_it(visit, staff_user):
    add_batch("depot-lamps", "LAMP", 10)
    place("web-1", ("LAMP", 2))
    services.submit_order(commands.SubmitOrder("web-1"))
    visit.log_in(staff_user.username)
    page = visit.go("/orders/web-1/")

    page.get_by_role("link", name="Cancel order…").click()
    page.get_by_role("button", name="Cancel order").click()

    expect(page.get_by_text("Order web-1 cancelled.")).to_be_visible()
    history = page.locator("ol.timeline li")
    expect(history).to_have_count(5)
    expect(history.nth(0)).to_contain_text("Placed for Ada Lovelace: LAMP.")
    expect(history.nth(0)).to_contain_text("by system")
    expect(history.nth(3)).to_contain_text(f"Cancelled. by {staff_user.username}")
    expect(history.nth(4)).to_contain_text(
        "Released 2 x LAMP from batch depot-lamps because the order was cancelled."
    )
    visit.snap("history")

    page.set_viewport_size({"width": 390, "height": 844})
    visit.snap("history-phone")
    timeline = page.locator("ol.timeline").bounding_box()
    assert timeline["x"] >= 0
    assert timeline["x"] + timeline["width"] <= 390
