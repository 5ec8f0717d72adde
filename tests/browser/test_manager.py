"""A manager's journey, in a real browser: the dashboard's charts, then the stock and
orders lists filtered and exported as CSV. The dashboard's screenshot is the README's
picture (docs/dashboard.png): written when it is missing or with UPDATE_README_PICTURE=1,
so that a test run leaves the repository as it was (the picture shows the time)."""

import csv
import datetime
import io
import os
import random
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orders_read import refresh
from orders_read.read_models import READ_MODELS
from orders_write import commands, services
from tests.factories import add_batch, make_user, place

pytestmark = pytest.mark.django_db(transaction=True)

README_PICTURE = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
PRODUCTS = [
    ("DESK-LAMP", "Desk lamp", 70),
    ("BLUE-CHAIR", "Blue chair", 120),
    ("OAK-TABLE", "Oak table", 40),
    ("RUG-2X3", "Wool rug 2 x 3 m", 90),
    ("BOOKCASE", "Five-shelf bookcase", 12),
    ("FLOOR-LAMP", "Floor lamp", 0),
]


def a_month_of_orders(settings, monkeypatch) -> None:
    """Orders placed and submitted over the last 30 days, a few a day, refreshed once."""
    settings.READ_MODEL_REFRESH = "async"
    for sku, name, stock in PRODUCTS:
        services.create_product(commands.CreateProduct(sku=sku, name=name, price=Decimal("24.00")))
        if stock:
            add_batch(f"{sku.lower()}-1", sku, stock)
    rng = random.Random(7)
    now = timezone.now()
    for days_ago in range(29, -1, -1):
        moment = now - datetime.timedelta(days=days_ago)
        monkeypatch.setattr(timezone, "now", lambda moment=moment: moment)
        for number in range(rng.randint(1, 4)):
            reference = f"web-{days_ago:02}-{number}"
            lines = rng.sample(PRODUCTS, rng.randint(1, 3))
            place(reference, *[(sku, rng.randint(1, 5)) for sku, _, _ in lines])
            if rng.random() < 0.85:
                services.submit_order(commands.SubmitOrder(reference))
    monkeypatch.undo()
    settings.READ_MODEL_REFRESH = "sync"
    refresh.refresh(READ_MODELS)


def test_a_manager_reads_the_dashboard_and_exports_the_lists(visit, settings, monkeypatch):
    a_month_of_orders(settings, monkeypatch)
    manager = make_user("viewer")
    visit.log_in(manager.username)
    page = visit.page

    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(3)
    expect(
        page.get_by_role("img", name="Units ordered and allocated per day, last 30 days")
    ).to_be_visible()
    expect(charts.first.locator("rect")).to_have_count(60)
    expect(page.get_by_role("table", name="Out of stock")).to_contain_text("FLOOR-LAMP")
    visit.snap("dashboard")
    if os.environ.get("UPDATE_README_PICTURE") == "1" or not README_PICTURE.exists():
        README_PICTURE.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(README_PICTURE), full_page=True)

    # At a phone's width the charts shrink to the page rather than overflow it.
    page.set_viewport_size({"width": 390, "height": 844})
    assert charts.first.bounding_box()["width"] <= 390
    visit.snap("dashboard-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.locator("a.card", has_text="out of stock").click()
    expect(page.get_by_role("heading", name="Stock")).to_be_visible()
    expect(page.get_by_label("Stock")).to_have_value("false")
    page.get_by_label("Search").fill("lamp")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("main table").first).to_contain_text("FLOOR-LAMP")
    visit.snap("stock-out-of-stock")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    exported = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert download.value.suggested_filename == "stock.csv"
    assert [row[0] for row in exported] == ["sku", "FLOOR-LAMP"]

    page.get_by_role("link", name="Orders", exact=True).click()
    page.get_by_label("Stock").select_option("true")
    page.get_by_role("button", name="Show").click()
    shown = page.locator("main table > tbody > tr").count()
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    exported = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert download.value.suggested_filename == "orders.csv"
    assert exported[0][0] == "reference"
    assert len(exported) - 1 >= shown > 0
    assert {row[9] for row in exported[1:]} == {"True"}  # every one waits for stock
