"""batch_availability as a base view rebuilt in the background plus a delta of the SKUs
written since, read as one plain view: a write refreshes only the delta."""

from django.db import migrations

SQL = """
DROP MATERIALIZED VIEW batch_availability;

INSERT INTO read_model_base_state (unit, snapshot, rebuilt_at, rebuild_count)
VALUES ('batch_availability', pg_current_snapshot()::text, now(), 0)
ON CONFLICT (unit) DO UPDATE SET snapshot = excluded.snapshot, rebuilt_at = excluded.rebuilt_at;

CREATE MATERIALIZED VIEW batch_availability_base AS
SELECT batch_id, batchref, sku, eta, purchased, allocated,
       (purchased - allocated)::bigint AS available
FROM batch_stock;

CREATE UNIQUE INDEX batch_availability_base_batch_id ON batch_availability_base (batch_id);
CREATE INDEX batch_availability_base_sku ON batch_availability_base (sku, eta, batchref);

-- The delta takes each batch's allocated quantity as the services keep it
-- (orders_write_batch.allocated_quantity), so its rows cost one lookup per batch; the
-- base sums the allocations themselves (batch_stock), and check_read_models compares
-- the two.
CREATE MATERIALIZED VIEW batch_availability_delta AS
SELECT pending.sku AS delta_key, stock.*
FROM read_pending_skus('batch_availability') pending
LEFT JOIN LATERAL (
    SELECT batch.id AS batch_id,
           batch.reference AS batchref,
           batch.sku,
           batch.eta,
           batch.purchased_quantity AS purchased,
           batch.allocated_quantity::bigint AS allocated,
           (batch.purchased_quantity - batch.allocated_quantity)::bigint AS available
    FROM orders_write_batch batch
    WHERE batch.sku = pending.sku
) stock ON true;

CREATE UNIQUE INDEX batch_availability_delta_key ON batch_availability_delta (delta_key, batch_id);

-- Readers take a key's rows from the delta where it has the key, else from the base.
-- Written so that each branch of the UNION ALL stays a single relation: the planner
-- then pushes filters into both, reads them in index order (Merge Append) for a
-- first page, and hashes the delta's keys once per query.
CREATE VIEW batch_availability AS
SELECT piece.batch_id, piece.batchref, piece.sku, piece.eta, piece.purchased,
       piece.allocated, piece.available
FROM (
    SELECT true AS from_delta, delta.batch_id, delta.batchref, delta.sku, delta.eta,
           delta.purchased, delta.allocated, delta.available
    FROM batch_availability_delta delta
    UNION ALL
    SELECT false, base.batch_id, base.batchref, base.sku, base.eta, base.purchased,
           base.allocated, base.available
    FROM batch_availability_base base
) piece
WHERE CASE WHEN piece.from_delta THEN piece.batch_id IS NOT NULL
           ELSE NOT EXISTS (
               SELECT 1 FROM batch_availability_delta delta WHERE delta.delta_key = piece.sku)
      END;
"""

REVERSE_SQL = """
DROP VIEW batch_availability;
DROP MATERIALIZED VIEW batch_availability_delta;
DROP MATERIALIZED VIEW batch_availability_base;
DELETE FROM read_model_base_state WHERE unit = 'batch_availability';

CREATE MATERIALIZED VIEW batch_availability AS
SELECT batch_id, batchref, sku, eta, purchased, allocated,
       (purchased - allocated)::bigint AS available
FROM batch_stock;

CREATE UNIQUE INDEX batch_availability_batch_id ON batch_availability (batch_id);
CREATE INDEX batch_availability_sku ON batch_availability (sku, eta, batchref);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("orders_read", "0013_order_lines_view_base_and_delta"),
        ("orders_write", "0002_batch_allocated_quantity"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=REVERSE_SQL)]
