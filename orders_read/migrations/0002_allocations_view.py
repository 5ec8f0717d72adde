"""allocations_view: one row per allocated order line."""

from django.db import migrations

SQL = """
CREATE MATERIALIZED VIEW allocations_view AS
SELECT line.id AS line_id,
       line.order_id,
       o.reference AS orderid,
       line.sku,
       line.quantity AS qty,
       batch.reference AS batchref
FROM orders_write_allocation allocation
JOIN orders_write_orderline line ON line.id = allocation.line_id
JOIN orders_write_order o ON o.id = line.order_id
JOIN orders_write_batch batch ON batch.id = allocation.batch_id;

CREATE UNIQUE INDEX allocations_view_line_id ON allocations_view (line_id);
CREATE INDEX allocations_view_orderid ON allocations_view (orderid, sku, batchref);
CREATE INDEX allocations_view_batchref ON allocations_view (batchref);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("orders_read", "0001_read_models_and_refresh_state"),
        ("orders_write", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(SQL, reverse_sql="DROP MATERIALIZED VIEW allocations_view;"),
    ]
