"""The interactive API docs as an integrator reads them, in a real browser."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)


def test_api_docs_start_with_getting_started_and_show_each_operation_s_example(visit, staff_user):
    visit.log_in(staff_user.username)
    page = visit.go("/api/docs/")

    expect(page.get_by_role("heading", name="Getting started")).to_be_visible()
    expect(page.get_by_role("heading", name="1. Get a token")).to_be_visible()
    expect(page.get_by_text("X-Consistency-Token: qm1-918240").first).to_be_visible()
    allocate = page.locator("#operations-allocate-allocate")
    expect(allocate).to_contain_text("Allocate a line")

    allocate.get_by_text("Allocate a line").click()

    expect(allocate.get_by_text('"depot-tables-0398"').first).to_be_visible()
    visit.snap("api-docs")
