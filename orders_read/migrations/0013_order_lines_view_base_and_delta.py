"""order_lines_view as a base view rebuilt in the background plus a delta of the orders
written since, read as one plain view: a write refreshes only the delta."""

from django.db import migrations

SQL = """
DROP MATERIALIZED VIEW order_lines_view;

INSERT INTO read_model_base_state (unit, snapshot, rebuilt_at, rebuild_count)
VALUES ('order_lines_view', pg_current_snapshot()::text, now(), 0)
ON CONFLICT (unit) DO UPDATE SET snapshot = excluded.snapshot, rebuilt_at = excluded.rebuilt_at;

CREATE MATERIALIZED VIEW order_lines_view_base AS
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

CREATE UNIQUE INDEX order_lines_view_base_line_id ON order_lines_view_base (line_id);
CREATE INDEX order_lines_view_base_order_id ON order_lines_view_base (order_id);
CREATE INDEX order_lines_view_base_orderid ON order_lines_view_base (orderid, sku);

CREATE MATERIALIZED VIEW order_lines_view_delta AS
SELECT pending.order_id AS delta_key, order_line.*
FROM read_pending_orders('order_lines_view') pending
LEFT JOIN LATERAL (
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
    LEFT JOIN orders_write_batch batch ON batch.id = allocation.batch_id
    WHERE line.order_id = pending.order_id
) order_line ON true;

CREATE UNIQUE INDEX order_lines_view_delta_key ON order_lines_view_delta (delta_key, line_id);
CREATE INDEX order_lines_view_delta_orderid ON order_lines_view_delta (orderid, sku);

-- Readers take a key's rows from the delta where it has the key, else from the base.
-- Written so that each branch of the UNION ALL stays a single relation: the planner
-- then pushes filters into both, reads them in index order (Merge Append) for a
-- first page, and hashes the delta's keys once per query.
CREATE VIEW order_lines_view AS
SELECT piece.line_id, piece.order_id, piece.orderid, piece.sku, piece.product_name,
       piece.qty, piece.unit_price, piece.amount, piece.batchref, piece.batch_eta
FROM (
    SELECT true AS from_delta, delta.line_id, delta.order_id, delta.orderid, delta.sku,
           delta.product_name, delta.qty, delta.unit_price, delta.amount, delta.batchref,
           delta.batch_eta
    FROM order_lines_view_delta delta
    UNION ALL
    SELECT false, base.line_id, base.order_id, base.orderid, base.sku, base.product_name,
           base.qty, base.unit_price, base.amount, base.batchref, base.batch_eta
    FROM order_lines_view_base base
) piece
WHERE CASE WHEN piece.from_delta THEN piece.line_id IS NOT NULL
           ELSE NOT EXISTS (
               SELECT 1 FROM order_lines_view_delta delta WHERE delta.delta_key = piece.order_id)
      END;
"""

REVERSE_SQL = """
DROP VIEW order_lines_view;
DROP MATERIALIZED VIEW order_lines_view_delta;
DROP MATERIALIZED VIEW order_lines_view_base;
DELETE FROM read_model_base_state WHERE unit = 'order_lines_view';

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
    dependencies = [("orders_read", "0012_order_summary_base_and_delta")]

    operations = [migrations.RunSQL(SQL, reverse_sql=REVERSE_SQL)]
