"""seed_demo: realistic demo data, allocated by the domain's policy, read models rebuilt
(on the bulk_loaded signal the read side listens to)."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection
from django.db.models import Count, F, Sum

from orders_read import queries, verification
from orders_write import demo, domain
from orders_write.models import Allocation, Batch, Event, Order, OrderLine, Product

pytestmark = pytest.mark.django_db(transaction=True)


def seed(orders: int, *extra: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", "--orders", str(orders), *extra, stdout=out, verbosity=0)
    return out.getvalue()


def test_seeds_orders_with_lines_statuses_and_allocations():
    output = seed(2000)

    assert "2000 new demo orders" in output
    assert Order.objects.filter(reference__startswith="DEMO-").count() == 2000
    statuses = dict(Order.objects.values_list("status").annotate(Count("id")))
    assert set(statuses) == {"pending", "submitted", "cancelled"}
    assert statuses["submitted"] > statuses["pending"] + statuses["cancelled"]
    lines_per_order = OrderLine.objects.count() / 2000
    assert 1.5 < lines_per_order < 3.5
    # Only submitted orders hold stock, and most of their lines do.
    assert not Allocation.objects.exclude(line__order__status="submitted").exists()
    submitted_lines = OrderLine.objects.filter(order__status="submitted").count()
    assert 0.5 * submitted_lines < Allocation.objects.count() < submitted_lines


def test_seeded_allocations_never_exceed_a_batch_and_match_their_sku():
    seed(3000)

    for batch in Batch.objects.annotate(held=Sum("allocations__line__quantity")):
        assert (batch.held or 0) <= batch.purchased_quantity
    assert not Allocation.objects.exclude(line__product=F("batch__product")).exists()


def test_each_seeded_line_sits_where_the_domains_policy_puts_it():
    seed(3000)

    # The loader allocates submitted orders' lines in the order of their ids, on fresh
    # stock: replaying that with the domain's allocate_lines must give the same batches.
    batches: dict[str, list[domain.BatchStock]] = {}
    for ref, sku, purchased, eta in Batch.objects.values_list(
        "reference", "product_id", "purchased_quantity", "eta"
    ):
        batches.setdefault(sku, []).append(domain.BatchStock(ref, purchased, 0, eta))
    seeded = dict(Allocation.objects.values_list("line_id", "batch__reference"))
    lines: dict[str, list[domain.HeldLine]] = {}
    for line_id, sku, quantity in (
        OrderLine.objects.filter(order__status=domain.SUBMITTED)
        .order_by("id")
        .values_list("id", "product_id", "quantity")
    ):
        lines.setdefault(sku, []).append(domain.HeldLine(line_id, quantity))

    out_of_stock = 0
    for sku, sku_lines in lines.items():
        for line, chosen in domain.allocate_lines(batches[sku], sku_lines):
            assert seeded.get(line.key) == (chosen and chosen.reference), (sku, line)
            out_of_stock += chosen is None
    assert len(seeded) == sum(map(len, lines.values())) - out_of_stock


def test_lines_carry_their_products_price():
    seed(200)

    line = OrderLine.objects.select_related("product").first()
    assert line.unit_price == line.product.price


def test_each_demo_order_has_the_events_its_story_implies():
    output = seed(2000)

    demo_events = Event.objects.filter(order_reference__startswith=demo.ORDER_PREFIX)
    counts = dict(demo_events.values_list("name").annotate(Count("id")))
    statuses = dict(Order.objects.values_list("status").annotate(Count("id")))
    submitted_lines = OrderLine.objects.filter(order__status="submitted").count()
    assert counts == {
        "OrderPlaced": 2000,
        "OrderSubmitted": statuses["submitted"],
        "Allocated": Allocation.objects.count(),
        "OutOfStock": submitted_lines - Allocation.objects.count(),
        "OrderCancelled": statuses["cancelled"],
    }
    assert f"and {sum(counts.values())} events" in output
    assert set(demo_events.values_list("actor", flat=True)) == {"system"}
    # Each allocation is told as the services tell it.
    told = {
        (event["orderid"], event["sku"], event["qty"], event["batchref"])
        for event in demo_events.filter(name="Allocated").values_list("payload", flat=True)
    }
    assert told == set(
        Allocation.objects.values_list(
            "line__order__reference", "line__product_id", "line__quantity", "batch__reference"
        )
    )
    # Placed when the order was created, submitted (and allocated) when it was submitted,
    # cancelled after it was placed, and nothing in the future.
    for order in Order.objects.filter(reference__startswith=demo.ORDER_PREFIX)[:300]:
        times = dict(
            Event.objects.filter(order_reference=order.reference).values_list("name", "recorded_at")
        )
        assert times["OrderPlaced"] == order.created_at
        if order.submitted_at is not None:
            assert times["OrderSubmitted"] == order.submitted_at
        if order.status == "cancelled":
            assert order.created_at < times["OrderCancelled"] <= Event.objects.last().recorded_at


def test_a_demo_orders_history_reads_like_its_story():
    seed(300)
    order = Order.objects.filter(status="submitted").first()
    cancelled = Order.objects.filter(status="cancelled").first()

    history = queries.order_history(order.reference)
    cancelled_history = queries.order_history(cancelled.reference)

    skus = sorted(order.lines.values_list("product_id", flat=True))
    assert history[0].description.startswith(f"Placed for {order.customer_name}: ")
    assert sorted(history[0].payload["skus"]) == skus
    assert history[0].payload["status"] == "pending"
    assert [entry.description for entry in history[1:2]] == ["Submitted."]
    assert sorted(entry.payload["sku"] for entry in history[2:]) == skus
    assert {entry.kind for entry in history[2:]} <= {"Allocated", "OutOfStock"}
    assert [entry.kind for entry in cancelled_history] == ["OrderPlaced", "OrderCancelled"]


def test_read_models_match_the_write_tables_after_seeding():
    seed(1500)

    assert all(result.ok for result in verification.check_all())


def test_seeding_again_adds_only_what_is_missing():
    seed(300)
    products = Product.objects.count()

    again = seed(300)
    more = seed(450)

    assert "0 new demo orders" in again
    assert "150 new demo orders" in more
    assert Order.objects.count() == 450
    assert Product.objects.count() == products
    assert Order.objects.filter(reference=demo.demo_order_reference(450)).exists()


def test_demo_user_gets_a_new_password_each_time():
    first = seed(0, "--demo-user")
    second = seed(0, "--demo-user")

    assert "Demo login: username demo" in first
    assert first.split("password ")[1] != second.split("password ")[1]


def test_negative_order_count_is_refused():
    with pytest.raises(CommandError, match="must not be negative"):
        seed(-1)


SCHEMA = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated
FROM pg_constraint WHERE conrelid = ANY(%(tables)s::regclass[])
UNION ALL
SELECT indrelid::regclass::text, indexrelid::regclass::text, pg_get_indexdef(indexrelid), indisvalid
FROM pg_index WHERE indrelid = ANY(%(tables)s::regclass[])
ORDER BY 1, 2, 3
"""


def loaded_tables_schema() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(SCHEMA, {"tables": list(demo.LOADED_TABLES)})
        return cursor.fetchall()


def test_a_bulk_load_rebuilds_the_same_keys_and_indexes():
    seed(100)
    before = loaded_tables_schema()

    load = demo.seed_orders(400, rebuild_indexes=True)

    assert load.rebuilt_indexes and load.created == 300
    assert loaded_tables_schema() == before
    demo.announce(load)
    assert all(result.ok for result in verification.check_all())


def test_a_failed_bulk_load_leaves_data_and_schema_as_they_were():
    seed(100)
    before = loaded_tables_schema()
    # A duplicate the dropped unique key cannot refuse during the load: rebuilding it must.
    Order.objects.filter(reference=demo.demo_order_reference(100)).update(reference="DEMO-X")
    Order.objects.create(reference=demo.demo_order_reference(150))

    with pytest.raises(IntegrityError):
        demo.seed_orders(400, rebuild_indexes=True)

    assert loaded_tables_schema() == before
    assert Order.objects.count() == 101


def test_the_loading_transaction_switches_the_read_sides_triggers_off():
    # The read side's dirty-key triggers skip their work when quartermaster.bulk_load is on.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE seen_bulk_load (setting text)")
        cursor.execute(
            "CREATE FUNCTION record_bulk_load() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN INSERT INTO seen_bulk_load"
            " VALUES (current_setting('quartermaster.bulk_load', true)); RETURN NULL; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER record_bulk_load AFTER INSERT ON orders_write_orderline"
            " FOR EACH STATEMENT EXECUTE FUNCTION record_bulk_load()"
        )
    try:
        seed(50)
        with connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT setting FROM seen_bulk_load")
            assert cursor.fetchall() == [("on",)]
            cursor.execute("SELECT current_setting('quartermaster.bulk_load', true)")
            assert cursor.fetchone()[0] in (None, "")  # SET LOCAL: only that transaction
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER record_bulk_load ON orders_write_orderline")
            cursor.execute("DROP FUNCTION record_bulk_load()")
            cursor.execute("DROP TABLE seen_bulk_load")
