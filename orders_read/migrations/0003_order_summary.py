"""order_summary: one row per order, with its totals."""

from django.db import migrations

SQL = """
CREATE MATERIALIZED VIEW order_summary AS
SELECT o.id,
       o.reference,
       o.customer_name,
       o.shipping_address,
       o.status,
       count(line.id)::integer AS line_count,
       coalesce(sum(line.quantity), 0)::bigint AS total_quantity,
       coalesce(sum(line.quantity * line.unit_price), 0)::numeric(14, 2) AS total_amount,
       count(allocation.id)::integer AS allocated_line_count,
       o.created_at
FROM orders_write_order o
LEFT JOIN orders_write_orderline line ON line.order_id = o.id
LEFT JOIN orders_write_allocation allocation ON allocation.line_id = line.id
GROUP BY o.id;

CREATE UNIQUE INDEX order_summary_id ON order_summary (id);
CREATE UNIQUE INDEX order_summary_reference ON order_summary (reference);
CREATE INDEX order_summary_created_at ON order_summary (created_at DESC, id DESC);
CREATE INDEX order_summary_status ON order_summary (status, created_at DESC, id DESC);
CREATE INDEX order_summary_customer ON order_summary (customer_name);
"""


class Migration(migrations.Migration):
    dependencies = [("orders_read", "0002_allocations_view")]

    operations = [
        migrations.RunSQL(SQL, reverse_sql="DROP MATERIALIZED VIEW order_summary;"),
    ]
