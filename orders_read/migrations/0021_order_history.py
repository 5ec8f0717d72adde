"""The order history: a plain view over the event log (always fresh, nothing to refresh).

An order's events are found by the log's index on the order they concern. For each
allocation, release or line out of stock, the view names its cause: the first other
event of the same transaction that is about the same order (a cancel, a line edited;
placing and submitting are the usual context, not a cause) or about a batch of the same
SKU (received or changed). Both lookups are indexed on the log, so a million-event
transaction (a demo load) costs nothing here.
"""

from django.db import migrations, models

ORDER_HISTORY = """
CREATE VIEW order_history AS
SELECT event.id,
       event.order_reference AS reference,
       event.name AS kind,
       event.payload,
       event.actor,
       event.recorded_at,
       cause.name AS cause_kind,
       cause.payload AS cause_payload
FROM orders_write_event event
LEFT JOIN LATERAL (
    SELECT sibling.name, sibling.payload
    FROM (
        SELECT same_order.id, same_order.name, same_order.payload
        FROM orders_write_event same_order
        WHERE event.name IN ('Allocated', 'Deallocated', 'OutOfStock')
          AND same_order.order_reference = event.order_reference
          AND same_order.transaction_id = event.transaction_id
          AND same_order.name NOT IN
              ('OrderPlaced', 'OrderSubmitted', 'Allocated', 'Deallocated', 'OutOfStock')
        UNION ALL
        SELECT batch_change.id, batch_change.name, batch_change.payload
        FROM orders_write_event batch_change
        WHERE event.name IN ('Allocated', 'Deallocated', 'OutOfStock')
          AND batch_change.transaction_id = event.transaction_id
          AND batch_change.name IN ('BatchCreated', 'BatchQuantityChanged')
          AND batch_change.payload->>'sku' = event.payload->>'sku'
    ) sibling
    ORDER BY sibling.id
    LIMIT 1
) cause ON true
WHERE event.order_reference IS NOT NULL;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("orders_read", "0020_deltas_kept_key_by_key"),
        ("orders_write", "0005_event_actor_and_order"),
    ]

    operations = [
        migrations.RunSQL(ORDER_HISTORY, reverse_sql="DROP VIEW order_history;"),
        migrations.CreateModel(
            name="OrderEvent",
            fields=[
                ("id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("reference", models.CharField(max_length=255, verbose_name="order")),
                ("kind", models.CharField(max_length=64)),
                ("payload", models.JSONField()),
                ("actor", models.CharField(max_length=150)),
                ("recorded_at", models.DateTimeField()),
                ("cause_kind", models.CharField(max_length=64, null=True)),
                ("cause_payload", models.JSONField(null=True)),
            ],
            options={
                "verbose_name": "order event",
                "db_table": "order_history",
                "ordering": ["reference", "id"],
                "managed": False,
                "abstract": False,
            },
        ),
    ]
