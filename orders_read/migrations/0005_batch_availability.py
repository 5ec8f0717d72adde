"""batch_stock (a plain view both stock views build on) and batch_availability."""

from django.db import migrations

SQL = """
CREATE VIEW batch_stock AS
SELECT batch.id AS batch_id,
       batch.reference AS batchref,
       batch.sku,
       batch.eta,
       batch.purchased_quantity AS purchased,
       coalesce(sum(line.quantity), 0)::bigint AS allocated
FROM orders_write_batch batch
LEFT JOIN orders_write_allocation allocation ON allocation.batch_id = batch.id
LEFT JOIN orders_write_orderline line ON line.id = allocation.line_id
GROUP BY batch.id;

CREATE MATERIALIZED VIEW batch_availability AS
SELECT batch_id, batchref, sku, eta, purchased, allocated,
       (purchased - allocated)::bigint AS available
FROM batch_stock;

CREATE UNIQUE INDEX batch_availability_batch_id ON batch_availability (batch_id);
CREATE INDEX batch_availability_sku ON batch_availability (sku, eta, batchref);
"""

REVERSE_SQL = """
DROP MATERIALIZED VIEW batch_availability;
DROP VIEW batch_stock;
"""


class Migration(migrations.Migration):
    dependencies = [("orders_read", "0004_order_lines_view")]

    operations = [migrations.RunSQL(SQL, reverse_sql=REVERSE_SQL)]
