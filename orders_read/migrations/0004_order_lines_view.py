"""order_lines_view: one row per order line, with the batch holding it (or none)."""

from django.db import migrations

SQL = """
CREATE MATERIALIZED VIEW order_lines_view AS
SELECT line.id AS line_id,
       line.order_id,
       o.reference AS orderid,
       line.sku,
       product.name AS product_name,
       line.quantity AS qty,
       line.unit_price,
       (line.quantity * line.unit_price)::numeric(14, 2) AS amount,
       batch.reference AS batchref,
       batch.eta AS batch_eta
FROM orders_write_orderline line
JOIN orders_write_order o ON o.id = line.order_id
JOIN orders_write_product product ON product.sku = line.sku
LEFT JOIN orders_write_allocation allocation ON allocation.line_id = line.id
LEFT JOIN orders_write_batch batch ON batch.id = allocation.batch_id;

CREATE UNIQUE INDEX order_lines_view_line_id ON order_lines_view (line_id);
CREATE INDEX order_lines_view_orderid ON order_lines_view (orderid, sku);
"""


class Migration(migrations.Migration):
    dependencies = [("orders_read", "0003_order_summary")]

    operations = [
        migrations.RunSQL(SQL, reverse_sql="DROP MATERIALIZED VIEW order_lines_view;"),
    ]
