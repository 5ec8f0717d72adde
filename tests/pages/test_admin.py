"""The admin, as a superuser: write models change only through the services (a broken
rule is a form error and writes nothing), nothing is deleted, read models are listed
read-only with an action that refreshes them, and the event log is read-only."""

import pytest

from orders_read import freshness, read_models
from orders_read.models import (
    AllocationRow,
    BatchAvailability,
    OrderLineRow,
    OrderSummary,
    ProductAvailability,
    RefreshState,
)
from orders_write import commands, services
from orders_write.models import Allocation, Batch, Event, Order, OrderLine, Product
from tests.database import allocation_of, database_state, event_names, version
from tests.factories import TOMORROW, add_batch, place
from tests.pages.html import children, classes, dom, text, walk

# In one transaction, rolled back: what a test writes is read back from the write tables.
# Tests that read it from the read models, refreshed only after a commit, are marked
# transaction=True.
pytestmark = pytest.mark.django_db


def admin_messages(response) -> list[tuple[str, str]]:
    """(level, text) of each message the admin shows."""
    return [
        (classes(item)[0] if classes(item) else "", text(item))
        for node, _ in walk(dom(response))
        if node.name == "ul" and "messagelist" in classes(node)
        for item in children(node)
    ]


def form_errors(response) -> list[str]:
    """Every error the admin form shows, beside a field or above the form."""
    return [
        text(item)
        for node, _ in walk(dom(response))
        if node.name == "ul" and "errorlist" in classes(node)
        for item in children(node)
    ]


def changelist_rows(response) -> list[str]:
    """The text of each row of the admin's result list."""
    for node, _ in walk(dom(response)):
        if node.name == "table" and node.attributes.get("id") == "result_list":
            body = next(child for child in children(node) if child.name == "tbody")
            return [text(row) for row in children(body)]
    return []


def action(client, path: str, name: str, *selected, confirmed: bool = False) -> object:
    """Run an admin action on the selected primary keys (``confirmed``: answering yes to
    its confirmation page); the page it answers with."""
    data = {"action": name, "_selected_action": [str(pk) for pk in selected]}
    if confirmed:
        data["confirmed"] = "yes"
    response = client.post(path, data, follow=True)
    assert response.status_code == 200
    return response


# --- batches ---------------------------------------------------------------------------


def test_changing_a_batch_quantity_reallocates_through_the_service(admin_client):
    add_batch("depot", "LAMP", 10)
    add_batch("ship", "LAMP", 10, TOMORROW)
    services.handle(commands.Allocate("o1", "LAMP", 8))
    assert allocation_of("o1", "LAMP") == "depot"
    version_before = version("LAMP")
    events_before = len(event_names())
    batch = Batch.objects.get(reference="depot")

    response = admin_client.post(
        f"/admin/orders_write/batch/{batch.pk}/change/", {"purchased_quantity": "5"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/orders_write/batch/"
    assert Batch.objects.get(reference="depot").purchased_quantity == 5
    assert allocation_of("o1", "LAMP") == "ship"
    assert event_names()[events_before:] == ["BatchQuantityChanged", "Deallocated", "Allocated"]
    assert version("LAMP") > version_before
    page = admin_client.get(response["Location"])
    assert any("was changed successfully" in message for _, message in admin_messages(page))


def test_the_batch_change_form_edits_only_the_quantity(admin_client):
    add_batch("depot", "LAMP", 10, TOMORROW)
    batch = Batch.objects.get(reference="depot")

    response = admin_client.post(
        f"/admin/orders_write/batch/{batch.pk}/change/",
        {"purchased_quantity": "10", "reference": "renamed", "eta": "", "product": "X"},
    )

    assert response.status_code == 302
    batch.refresh_from_db()
    assert (batch.reference, batch.eta, batch.product_id) == ("depot", TOMORROW, "LAMP")


@pytest.mark.parametrize("quantity", ["0", "-4"])
def test_a_batch_quantity_that_breaks_a_rule_is_refused_and_writes_nothing(admin_client, quantity):
    add_batch("depot", "LAMP", 10)
    services.handle(commands.Allocate("o1", "LAMP", 8))
    batch = Batch.objects.get(reference="depot")
    before = database_state()

    response = admin_client.post(
        f"/admin/orders_write/batch/{batch.pk}/change/", {"purchased_quantity": quantity}
    )

    assert response.status_code == 200
    assert "Quantity must be positive" in form_errors(response)
    assert database_state() == before


def test_adding_a_batch_for_a_new_sku_creates_its_product(admin_client):
    response = admin_client.post(
        "/admin/orders_write/batch/add/",
        {"reference": "b1", "sku": "NEW-LAMP", "purchased_quantity": "12", "eta": ""},
    )

    assert response.status_code == 302
    batch = Batch.objects.get(reference="b1")
    assert (batch.product_id, batch.purchased_quantity, batch.eta) == ("NEW-LAMP", 12, None)
    product = Product.objects.get(sku="NEW-LAMP")
    assert (product.name, str(product.price)) == ("NEW-LAMP", "0.00")
    assert event_names() == ["ProductCreated", "BatchCreated"]


def test_adding_a_batch_with_a_duplicate_reference_is_refused(admin_client):
    add_batch("b1", "LAMP", 10)
    before = database_state()

    response = admin_client.post(
        "/admin/orders_write/batch/add/",
        {"reference": "b1", "sku": "CHAIR", "purchased_quantity": "3", "eta": ""},
    )

    assert response.status_code == 200
    assert "Batch b1 already exists" in form_errors(response)
    assert database_state() == before


def test_adding_a_batch_of_zero_is_refused(admin_client):
    before = database_state()

    response = admin_client.post(
        "/admin/orders_write/batch/add/",
        {"reference": "b1", "sku": "LAMP", "purchased_quantity": "0", "eta": ""},
    )

    assert response.status_code == 200
    assert "Quantity must be positive" in form_errors(response)
    assert database_state() == before


# --- products --------------------------------------------------------------------------


def test_adding_a_product_goes_through_the_service(admin_client):
    response = admin_client.post(
        "/admin/orders_write/product/add/", {"sku": "LAMP", "name": "Desk lamp", "price": "12.50"}
    )

    assert response.status_code == 302
    product = Product.objects.get(sku="LAMP")
    assert (product.name, str(product.price)) == ("Desk lamp", "12.50")
    assert event_names() == ["ProductCreated"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sku": "LAMP", "name": "Another", "price": "1.00"}, "Product LAMP already exists"),
        ({"sku": "CHAIR", "name": "Chair", "price": "-1.00"}, "Price must not be negative"),
        ({"sku": "CHAIR", "name": "   ", "price": "1.00"}, "This field is required."),
        ({"sku": " ", "name": "Chair", "price": "1.00"}, "This field is required."),
        (
            {"sku": "..", "name": "Chair", "price": "1.00"},
            'SKU must not be "." or "..", alone or between slashes',
        ),
    ],
)
def test_adding_a_product_that_breaks_a_rule_is_refused(admin_client, data, message):
    add_batch("b1", "LAMP", 10)
    before = database_state()

    response = admin_client.post("/admin/orders_write/product/add/", data)

    assert response.status_code == 200
    assert message in form_errors(response)
    assert database_state() == before


def test_a_product_cannot_be_edited_once_made(admin_client):
    add_batch("b1", "LAMP", 10)
    before = database_state()

    response = admin_client.post(
        "/admin/orders_write/product/LAMP/change/", {"name": "Renamed", "price": "99.00"}
    )

    assert response.status_code == 302
    assert database_state() == before


# --- orders and allocations --------------------------------------------------------------


def test_submitting_orders_from_the_list_goes_through_the_service(admin_client):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 2))
    place("o2", ("LAMP", 3))
    selected = Order.objects.values_list("pk", flat=True)

    page = action(admin_client, "/admin/orders_write/order/", "submit_orders", *selected)

    assert set(Order.objects.values_list("status", flat=True)) == {"submitted"}
    assert (allocation_of("o1", "LAMP"), allocation_of("o2", "LAMP")) == ("b1", "b1")
    assert event_names().count("OrderSubmitted") == 2
    assert ("success", "2 submitted.") in admin_messages(page)


def test_a_refused_order_action_shows_the_rule_and_the_others_go_ahead(admin_client):
    add_batch("b1", "LAMP", 10)
    place("full", ("LAMP", 2))
    place("empty")
    selected = Order.objects.values_list("pk", flat=True)

    page = action(admin_client, "/admin/orders_write/order/", "submit_orders", *selected)

    statuses = dict(Order.objects.values_list("reference", "status"))
    assert statuses == {"full": "submitted", "empty": "pending"}
    messages = admin_messages(page)
    assert ("error", "Refused for empty: Cannot submit empty order") in messages
    assert ("success", "1 submitted.") in messages


def test_cancelling_orders_from_the_list_releases_their_stock(admin_client):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 2))
    services.handle(commands.SubmitOrder("o1"))
    order = Order.objects.get(reference="o1")

    page = action(
        admin_client, "/admin/orders_write/order/", "cancel_orders", order.pk, confirmed=True
    )

    assert Order.objects.get(reference="o1").status == "cancelled"
    assert allocation_of("o1", "LAMP") is None
    assert event_names()[-2:] == ["OrderCancelled", "Deallocated"]
    assert ("success", "1 cancelled.") in admin_messages(page)


@pytest.mark.parametrize(
    ("path", "name", "question"),
    [
        ("/admin/orders_write/order/", "cancel_orders", "Cancel 1 order(s)?"),
        ("/admin/orders_write/allocation/", "deallocate", "Deallocate 1 line(s)?"),
    ],
)
def test_actions_that_release_stock_ask_first_and_say_what_they_release(
    admin_client, path, name, question
):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 2))
    services.handle(commands.SubmitOrder("o1"))
    selected = Order.objects.get().pk if name == "cancel_orders" else Allocation.objects.get().pk
    before = database_state()

    page = action(admin_client, path, name, selected)

    assert database_state() == before
    shown = text(dom(page))
    assert f"{question} This cannot be undone." in shown
    assert "o1 LAMP 2 b1" in shown
    assert 'name="confirmed" value="yes"' in page.content.decode()


def test_cancelling_a_cancelled_order_from_the_list_is_refused(admin_client):
    place("o1")
    services.handle(commands.CancelOrder("o1"))
    order = Order.objects.get(reference="o1")
    before = database_state()

    page = action(
        admin_client, "/admin/orders_write/order/", "cancel_orders", order.pk, confirmed=True
    )

    assert admin_messages(page) == [("error", "Refused for o1: Order o1 is cancelled")]
    assert database_state() == before


def test_an_order_shows_its_lines_and_their_batches_and_keeps_its_own_fields(admin_client):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 2))
    services.handle(commands.SubmitOrder("o1"))
    order = Order.objects.get(reference="o1")
    before = database_state()

    page = admin_client.get(f"/admin/orders_write/order/{order.pk}/change/")
    response = admin_client.post(
        f"/admin/orders_write/order/{order.pk}/change/",
        {"status": "pending", "customer_name": "Mallory", **line_rows(order)},
    )

    assert page.status_code == 200
    assert "b1" in text(dom(page))
    assert response.status_code == 302
    assert database_state() == before
    assert admin_client.get("/admin/orders_write/order/add/").status_code == 403


def line_rows(order, *new: tuple[str, int], **changes) -> dict[str, str]:
    """The order's lines inline as the admin posts it: each existing line (its quantity
    from ``changes`` by SKU, or "delete"), then the ``new`` rows."""
    lines = list(order.lines.order_by("product_id"))
    data = {
        "lines-TOTAL_FORMS": str(len(lines) + len(new)),
        "lines-INITIAL_FORMS": str(len(lines)),
    }
    for index, line in enumerate(lines):
        change = changes.get(line.product_id, line.quantity)
        data |= {
            f"lines-{index}-id": str(line.pk),
            f"lines-{index}-order": str(order.pk),
            f"lines-{index}-product": line.product_id,
            f"lines-{index}-quantity": str(line.quantity if change == "delete" else change),
        }
        if change == "delete":
            data[f"lines-{index}-DELETE"] = "on"
    for index, (sku, quantity) in enumerate(new, start=len(lines)):
        data |= {
            f"lines-{index}-order": str(order.pk),
            f"lines-{index}-product": sku,
            f"lines-{index}-quantity": str(quantity),
        }
    return data


def test_an_orders_lines_change_through_the_services(admin_client):
    add_batch("b1", "LAMP", 10)
    add_batch("chairs", "CHAIR", 10)
    add_batch("rugs", "RUG", 10)
    place("o1", ("LAMP", 2), ("RUG", 1))
    services.handle(commands.SubmitOrder("o1"))
    order = Order.objects.get(reference="o1")
    path = f"/admin/orders_write/order/{order.pk}/change/"

    response = admin_client.post(path, line_rows(order, ("CHAIR", 3), LAMP=5, RUG="delete"))

    assert response.status_code == 302, form_errors(response)
    assert dict(order.lines.values_list("product_id", "quantity")) == {"LAMP": 5, "CHAIR": 3}
    assert (allocation_of("o1", "LAMP"), allocation_of("o1", "CHAIR")) == ("b1", "chairs")
    assert Batch.objects.get(reference="rugs").allocated_quantity == 0
    assert {"LineAdded", "LineQuantityChanged", "LineRemoved"} <= set(event_names())


def test_an_admin_save_with_a_refused_line_writes_nothing_at_all(admin_client):
    add_batch("b1", "LAMP", 10)
    add_batch("chairs", "CHAIR", 10)
    place("o1", ("LAMP", 2))
    services.handle(commands.SubmitOrder("o1"))
    order = Order.objects.get(reference="o1")
    before = database_state()

    # The quantity change alone would be accepted; the removal of the last line is not.
    response = admin_client.post(
        f"/admin/orders_write/order/{order.pk}/change/", line_rows(order, LAMP="delete")
    )
    changed = admin_client.post(
        f"/admin/orders_write/order/{order.pk}/change/", line_rows(order, ("CHAIR", 0), LAMP=4)
    )

    assert response.status_code == 200
    assert form_errors(response) == [
        "Cannot remove the last line of submitted order o1: cancel the order instead"
    ]
    assert changed.status_code == 200
    assert form_errors(changed) == ["Quantity must be positive"]
    assert database_state() == before


def test_a_cancelled_orders_lines_are_read_only_in_the_admin(admin_client):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 2))
    services.handle(commands.CancelOrder("o1"))
    order = Order.objects.get(reference="o1")
    before = database_state()

    response = admin_client.post(
        f"/admin/orders_write/order/{order.pk}/change/", line_rows(order, ("LAMP", 1))
    )

    assert response.status_code == 302
    assert database_state() == before


def test_deallocating_from_the_list_goes_through_the_service(admin_client):
    add_batch("b1", "LAMP", 10)
    services.handle(commands.Allocate("o1", "LAMP", 2))
    version_before = version("LAMP")
    allocation = Allocation.objects.get()

    page = action(
        admin_client, "/admin/orders_write/allocation/", "deallocate", allocation.pk, confirmed=True
    )

    assert not Allocation.objects.exists()
    assert OrderLine.objects.filter(order__reference="o1").exists()
    assert event_names()[-1] == "Deallocated"
    assert version("LAMP") > version_before
    assert ("success", "1 deallocated.") in admin_messages(page)


# --- nothing is deleted ------------------------------------------------------------------


def write_rows() -> dict[str, object]:
    add_batch("b1", "LAMP", 10)
    services.handle(commands.Allocate("o1", "LAMP", 2))
    return {
        "product": "LAMP",
        "batch": Batch.objects.get().pk,
        "order": Order.objects.get().pk,
        "allocation": Allocation.objects.get().pk,
        "event": Event.objects.first().pk,
    }


def test_no_write_model_can_be_deleted(admin_client):
    rows = write_rows()
    before = database_state()

    for model, pk in rows.items():
        delete = admin_client.post(f"/admin/orders_write/{model}/{pk}/delete/", {"post": "yes"})
        assert delete.status_code == 403, model
        changelist = admin_client.get(f"/admin/orders_write/{model}/")
        assert changelist.status_code == 200, model
        assert 'value="delete_selected"' not in changelist.content.decode(), model
        bulk = admin_client.post(
            f"/admin/orders_write/{model}/",
            {"action": "delete_selected", "_selected_action": [str(pk)], "post": "yes"},
        )
        assert bulk.status_code in {200, 302}, model
    assert database_state() == before


# --- read models -----------------------------------------------------------------------


READ_MODELS = {
    model._meta.model_name: model
    for model in (
        OrderSummary,
        AllocationRow,
        OrderLineRow,
        ProductAvailability,
        BatchAvailability,
        RefreshState,
    )
}


def read_rows() -> None:
    add_batch("depot", "LAMP", 10)
    add_batch("ship", "CHAIR", 10, TOMORROW)
    place("o1", ("LAMP", 2), ("CHAIR", 1), customer="Ada Lovelace")
    services.handle(commands.SubmitOrder("o1"))
    place("o2", ("LAMP", 1), customer="Grace Hopper")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("model", "query", "expected"),
    [
        ("ordersummary", {"q": "hopper"}, ["o2"]),
        ("ordersummary", {"status__exact": "submitted"}, ["o1"]),
        ("allocationrow", {"q": "ship"}, ["o1 CHAIR"]),
        ("orderlinerow", {"batchref__isempty": "1"}, ["o2 LAMP"]),
        ("orderlinerow", {"q": "depot"}, ["o1 LAMP"]),
        ("productavailability", {"q": "chair"}, ["CHAIR"]),
        ("batchavailability", {"eta__isempty": "1"}, ["depot"]),
        ("batchavailability", {"q": "CHAIR"}, ["ship"]),
        ("refreshstate", {"dirty__exact": "0", "q": ""}, sorted(read_models.READ_MODELS)),
    ],
)
def test_read_models_are_listed_with_search_and_filters(admin_client, model, query, expected):
    read_rows()

    response = admin_client.get(f"/admin/orders_read/{model}/", query)

    assert response.status_code == 200
    rows = changelist_rows(response)
    assert len(rows) == len(expected)
    for row, wanted in zip(rows, expected, strict=True):
        assert all(word in row for word in wanted.split()), (row, wanted)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("model", READ_MODELS)
def test_read_models_cannot_be_added_changed_or_deleted(admin_client, model):
    read_rows()
    model_class = READ_MODELS[model]
    row = model_class.objects.first()
    rows_before = list(model_class.objects.values())

    add = admin_client.get(f"/admin/orders_read/{model}/add/")
    view = admin_client.get(f"/admin/orders_read/{model}/{row.pk}/change/")
    change = admin_client.post(f"/admin/orders_read/{model}/{row.pk}/change/", {})
    delete = admin_client.post(f"/admin/orders_read/{model}/{row.pk}/delete/", {"post": "yes"})

    assert add.status_code == 403
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert change.status_code == 403
    assert delete.status_code == 403
    assert list(model_class.objects.values()) == rows_before


def refresh_count(unit: str) -> int:
    return RefreshState.objects.get(unit=unit).refresh_count


@pytest.mark.django_db(transaction=True)
def test_the_refresh_action_shows_a_row_that_was_stale(admin_client, settings):
    place("o1")
    settings.READ_MODEL_REFRESH = "async"
    place("o2")
    assert changelist_rows(admin_client.get("/admin/orders_read/ordersummary/"))[0].startswith("o1")
    count_before = refresh_count("order_summary")
    any_row = OrderSummary.objects.get(reference="o1").pk

    page = action(admin_client, "/admin/orders_read/ordersummary/", "refresh_read_model", any_row)

    assert refresh_count("order_summary") == count_before + 1
    assert [row.split()[0] for row in changelist_rows(page)] == ["o2", "o1"]
    assert any(
        level == "success" and message.startswith("Read model order_summary: 2 rows")
        for level, message in admin_messages(page)
    )


@pytest.mark.django_db(transaction=True)
def test_refreshing_selected_read_models_from_their_state(admin_client, settings):
    add_batch("b1", "LAMP", 10)
    settings.READ_MODEL_REFRESH = "async"
    add_batch("b2", "LAMP", 5)
    assert "batch_availability" in freshness.units_behind()
    before = dict(RefreshState.objects.values_list("unit", "refresh_count"))

    page = action(
        admin_client,
        "/admin/orders_read/refreshstate/",
        "refresh_selected",
        "batch_availability",
        "product_availability",
    )

    after = dict(RefreshState.objects.values_list("unit", "refresh_count"))
    assert after["batch_availability"] == before["batch_availability"] + 1
    assert after["product_availability"] == before["product_availability"] + 1
    assert after["order_summary"] == before["order_summary"]
    assert freshness.units_behind(["batch_availability", "product_availability"]) == []
    assert [message.split(":")[0] for _, message in admin_messages(page)] == [
        "Read model batch_availability",
        "Read model product_availability",
    ]
    stock = admin_client.get("/admin/orders_read/batchavailability/")
    assert len(changelist_rows(stock)) == 2


# --- the event log ----------------------------------------------------------------------


def test_the_event_log_is_searchable(admin_client):
    add_batch("b1", "LAMP", 10)
    services.handle(commands.Allocate("o1", "LAMP", 2))

    everything = changelist_rows(admin_client.get("/admin/orders_write/event/"))
    allocated = changelist_rows(admin_client.get("/admin/orders_write/event/", {"q": "Allocated"}))
    by_name = changelist_rows(
        admin_client.get("/admin/orders_write/event/", {"name__exact": "BatchCreated"})
    )
    by_payload = changelist_rows(admin_client.get("/admin/orders_write/event/", {"q": "o1"}))

    assert len(everything) == len(event_names()) == 4
    assert len(allocated) == 1
    assert "Allocated" in allocated[0]
    assert "OrderPlaced" not in allocated[0]
    assert len(by_name) == 1
    assert "BatchCreated" in by_name[0]
    assert sorted(row.split()[1] for row in by_payload) == ["Allocated", "OrderPlaced"]


def test_the_event_log_is_read_only(admin_client):
    add_batch("b1", "LAMP", 10)
    event = Event.objects.first()
    before = database_state()

    view = admin_client.get(f"/admin/orders_write/event/{event.pk}/change/")
    change = admin_client.post(
        f"/admin/orders_write/event/{event.pk}/change/", {"name": "Forged", "payload": "{}"}
    )
    add = admin_client.get("/admin/orders_write/event/add/")

    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert change.status_code == 403
    assert add.status_code == 403
    assert database_state() == before
