"""product_availability: one row per product, its stock summed over its batches."""

from django.db import migrations

SQL = """
CREATE MATERIALIZED VIEW product_availability AS
SELECT product.sku,
       product.name,
       product.price,
       coalesce(sum(stock.purchased), 0)::bigint AS purchased,
       coalesce(sum(stock.allocated), 0)::bigint AS allocated,
       coalesce(sum(stock.purchased - stock.allocated), 0)::bigint AS available,
       coalesce(sum(stock.purchased - stock.allocated) FILTER (WHERE stock.eta IS NULL), 0)::bigint
           AS available_now,
       min(stock.eta) FILTER (WHERE stock.eta IS NOT NULL AND stock.purchased > stock.allocated)
           AS next_eta,
       count(stock.batch_id)::integer AS batch_count
FROM orders_write_product product
LEFT JOIN batch_stock stock ON stock.sku = product.sku
GROUP BY product.sku;

CREATE UNIQUE INDEX product_availability_sku ON product_availability (sku);
CREATE INDEX product_availability_available ON product_availability (available);
"""


class Migration(migrations.Migration):
    dependencies = [("orders_read", "0005_batch_availability")]

    operations = [
        migrations.RunSQL(SQL, reverse_sql="DROP MATERIALIZED VIEW product_availability;"),
    ]
