"""allocations_view as a base view rebuilt in the background plus a delta of the orders
written since, read as one plain view: a write refreshes only the delta."""

from django.db import migrations

SQL = """
DROP MATERIALIZED VIEW allocations_view;

INSERT INTO read_model_base_state (unit, snapshot, rebuilt_at, rebuild_count)
VALUES ('allocations_view', pg_current_snapshot()::text, now(), 0)
ON CONFLICT (unit) DO UPDATE SET snapshot = excluded.snapshot, rebuilt_at = excluded.rebuilt_at;

CREATE MATERIALIZED VIEW allocations_view_base AS
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

CREATE UNIQUE INDEX allocations_view_base_line_id ON allocations_view_base (line_id);
CREATE INDEX allocations_view_base_order_id ON allocations_view_base (order_id);
CREATE INDEX allocations_view_base_orderid ON allocations_view_base (orderid, sku, batchref);
CREATE INDEX allocations_view_base_batchref ON allocations_view_base (batchref);

-- One row per pending order even when it has no allocation left (line_id NULL), so
-- that the order's rows in the base are hidden.
CREATE MATERIALIZED VIEW allocations_view_delta AS
SELECT pending.order_id AS delta_key, allocated.*
FROM read_pending_orders('allocations_view') pending
LEFT JOIN LATERAL (
    SELECT line.id AS line_id,
           line.order_id,
           o.reference AS orderid,
           line.sku,
           line.quantity AS qty,
           batch.reference AS batchref
    FROM orders_write_allocation allocation
    JOIN orders_write_orderline line ON line.id = allocation.line_id
    JOIN orders_write_order o ON o.id = line.order_id
    JOIN orders_write_batch batch ON batch.id = allocation.batch_id
    WHERE line.order_id = pending.order_id
) allocated ON true;

CREATE UNIQUE INDEX allocations_view_delta_key ON allocations_view_delta (delta_key, line_id);
CREATE INDEX allocations_view_delta_orderid ON allocations_view_delta (orderid, sku, batchref);
CREATE INDEX allocations_view_delta_batchref ON allocations_view_delta (batchref);

-- Readers take a key's rows from the delta where it has the key, else from the base.
-- Written so that each branch of the UNION ALL stays a single relation: the planner
-- then pushes filters into both, reads them in index order (Merge Append) for a
-- first page, and hashes the delta's keys once per query.
CREATE VIEW allocations_view AS
SELECT piece.line_id, piece.order_id, piece.orderid, piece.sku, piece.qty, piece.batchref
FROM (
    SELECT true AS from_delta, delta.line_id, delta.order_id, delta.orderid, delta.sku,
           delta.qty, delta.batchref
    FROM allocations_view_delta delta
    UNION ALL
    SELECT false, base.line_id, base.order_id, base.orderid, base.sku, base.qty,
           base.batchref
    FROM allocations_view_base base
) piece
WHERE CASE WHEN piece.from_delta THEN piece.line_id IS NOT NULL
           ELSE NOT EXISTS (
               SELECT 1 FROM allocations_view_delta delta WHERE delta.delta_key = piece.order_id)
      END;
"""

REVERSE_SQL = """
DROP VIEW allocations_view;
DROP MATERIALIZED VIEW allocations_view_delta;
DROP MATERIALIZED VIEW allocations_view_base;
DELETE FROM read_model_base_state WHERE unit = 'allocations_view';

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
    dependencies = [("orders_read", "0010_dirty_keys")]

    operations = [migrations.RunSQL(SQL, reverse_sql=REVERSE_SQL)]
