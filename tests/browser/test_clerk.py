"""A clerk's day in the browser: every mistake shown at once, nothing created by a
slip, and a batch change that says where each line's stock went."""

from playwright.sync_api import expect

from orders_write.models import Order, Product
from tests.factories import TOMORROW, add_batch, place, submit


def test_an_order_with_several_mistakes_is_fixed_in_one_go(visit, staff_user):
    add_batch("depot-lamps", "LAMP", 10)
    visit.log_in(staff_user.username)
    page = visit.go("/orders/new/")
    page.get_by_label("Shipping address").fill("Bletchley Park")
    page.locator("#id_lines-0-sku").fill("LMAP")
    page.locator("#id_lines-0-qty").fill("1")
    page.locator("#id_lines-1-sku").fill("LAMP")
    page.locator("#id_lines-1-qty").fill("0")
    page.get_by_role("button", name="Place order").click()

    errors = page.locator(".errorlist")
    expect(errors).to_have_count(3)
    expect(page.locator("#id_customer-errors")).to_have_text("This field is required.")
    expect(page.locator("td.has-error").first).to_contain_text("Invalid sku LMAP")
    expect(page.locator("td.has-error").nth(1)).to_contain_text("Quantity must be positive")
    visit.snap("every-mistake-at-once")

    page.get_by_label("Customer").fill("Alan Turing")
    page.locator("#id_lines-0-sku").fill("LAMP")
    page.locator("#id_lines-1-sku").fill("")
    page.locator("#id_lines-1-qty").fill("")
    page.get_by_role("button", name="Place order").click()

    expect(page.get_by_text("placed.")).to_be_visible()
    assert Order.objects.get(customer_name="Alan Turing").lines.count() == 1


def test_a_typo_creates_no_order_and_no_product(visit, staff_user):
    add_batch("depot-lamps", "DESK-LAMP", 10)
    place("DEMO-0001100")
    visit.log_in(staff_user.username)

    page = visit.go("/allocate/")
    page.get_by_label("Order reference").fill("DEMO-000110")
    page.get_by_label("SKU").fill("DESK-LAMP")
    page.get_by_label("Quantity").fill("1")
    page.get_by_role("button", name="Allocate").click()
    expect(page.locator("#id_orderid-errors")).to_have_text("Unknown order DEMO-000110")
    visit.snap("unknown-order")

    page = visit.go("/batches/new/")
    page.get_by_label("Batch reference").fill("ship-1")
    page.get_by_label("SKU").fill("DESKLAMP")
    page.get_by_label("Quantity").fill("120")
    page.get_by_role("button", name="Receive batch").click()
    expect(page.locator("#id_sku-errors")).to_have_text(
        "Invalid sku DESKLAMP. Did you mean DESK-LAMP?"
    )
    visit.snap("unknown-sku")

    assert not Order.objects.filter(reference="DEMO-000110").exists()
    assert not Product.objects.filter(sku="DESKLAMP").exists()

    page.get_by_label("New product").check()
    page.get_by_label("Product name").fill("Desk lamp, brass")
    page.get_by_label("Unit price").fill("34.50")
    page.get_by_role("button", name="Receive batch").click()
    expect(page.get_by_text("Batch ship-1 received: 120 x DESKLAMP.")).to_be_visible()
    assert Product.objects.get(sku="DESKLAMP").name == "Desk lamp, brass"


def test_reducing_a_batch_warns_which_orders_lost_their_stock(visit, staff_user):
    add_batch("depot", "LAMP", 10)
    add_batch("ship", "LAMP", 4, TOMORROW)
    for reference, qty in (("o1", 3), ("o2", 5)):
        place(reference, ("LAMP", qty))
        submit(reference)
    visit.log_in(staff_user.username)

    page = visit.go("/batches/depot/quantity/")
    expect(page.get_by_label("New quantity")).to_have_value("10")
    expect(page.locator("dl.facts")).to_contain_text("8 to 2 lines")
    visit.snap("quantity-form")
    page.get_by_label("New quantity").fill("1")
    page.get_by_role("button", name="Change quantity").click()

    warning = page.locator(".messages .warning")
    expect(warning).to_contain_text("3 x LAMP of order o1 moved from batch depot to batch ship.")
    expect(warning).to_contain_text("5 x LAMP of order o2 is now out of stock")
    visit.snap("batch-change-warning")
    warning.get_by_role("link", name="o2").click()
    expect(page.get_by_role("heading", name="Order o2")).to_be_visible()
