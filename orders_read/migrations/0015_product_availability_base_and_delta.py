"""product_availability as a base view rebuilt in the background plus a delta of the
SKUs written since, read as one plain view: a write refreshes only the delta."""

from django.db import migrations

SQL = """
DROP MATERIALIZED VIEW product_availability;

INSERT INTO read_model_base_state (unit, snapshot, rebuilt_at, rebuild_count)
VALUES ('product_availability', pg_current_snapshot()::text, now(), 0)
ON CONFLICT (unit) DO UPDATE SET snapshot = excluded.snapshot, rebuilt_at = excluded.rebuilt_at;

CREATE MATERIALIZED VIEW product_availability_base AS
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

CREATE UNIQUE INDEX product_availability_base_sku ON product_availability_base (sku);
CREATE INDEX product_availability_base_available ON product_availability_base (available);

-- As in batch_availability's delta: the batches' allocated quantities as the services
-- keep them, where the base sums the allocations.
CREATE MATERIALIZED VIEW product_availability_delta AS
SELECT pending.sku AS delta_key, availability.*
FROM read_pending_skus('product_availability') pending
LEFT JOIN LATERAL (
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
    LEFT JOIN LATERAL (
        SELECT batch.id AS batch_id,
               batch.eta,
               batch.purchased_quantity AS purchased,
               batch.allocated_quantity::bigint AS allocated
        FROM orders_write_batch batch
        WHERE batch.sku = product.sku
    ) stock ON true
    WHERE product.sku = pending.sku
    GROUP BY product.sku
) availability ON true;

CREATE UNIQUE INDEX product_availability_delta_key ON product_availability_delta (delta_key, sku);

-- Readers take a key's rows from the delta where it has the key, else from the base.
-- Written so that each branch of the UNION ALL stays a single relation: the planner
-- then pushes filters into both, reads them in index order (Merge Append) for a
-- first page, and hashes the delta's keys once per query.
CREATE VIEW product_availability AS
SELECT piece.sku, piece.name, piece.price, piece.purchased, piece.allocated,
       piece.available, piece.available_now, piece.next_eta, piece.batch_count
FROM (
    SELECT true AS from_delta, delta.sku, delta.name, delta.price, delta.purchased,
           delta.allocated, delta.available, delta.available_now, delta.next_eta,
           delta.batch_count
    FROM product_availability_delta delta
    UNION ALL
    SELECT false, base.sku, base.name, base.price, base.purchased, base.allocated,
           base.available, base.available_now, base.next_eta, base.batch_count
    FROM product_availability_base base
) piece
WHERE CASE WHEN piece.from_delta THEN piece.sku IS NOT NULL
           ELSE NOT EXISTS (
               SELECT 1 FROM product_availability_delta delta WHERE delta.delta_key = piece.sku)
      END;
"""

REVERSE_SQL = """
DROP VIEW product_availability;
DROP MATERIALIZED VIEW product_availability_delta;
DROP MATERIALIZED VIEW product_availability_base;
DELETE FROM read_model_base_state WHERE unit = 'product_availability';

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
    dependencies = [("orders_read", "0014_batch_availability_base_and_delta")]

    operations = [migrations.RunSQL(SQL, reverse_sql=REVERSE_SQL)]
