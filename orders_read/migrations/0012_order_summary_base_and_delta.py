"""order_summary as a base view rebuilt in the background plus a delta of the orders
written since, read as one plain view: a write refreshes only the delta."""

from django.db import migrations

SQL = """
DROP MATERIALIZED VIEW order_summary;

INSERT INTO read_model_base_state (unit, snapshot, rebuilt_at, rebuild_count)
VALUES ('order_summary', pg_current_snapshot()::text, now(), 0)
ON CONFLICT (unit) DO UPDATE SET snapshot = excluded.snapshot, rebuilt_at = excluded.rebuilt_at;

CREATE MATERIALIZED VIEW order_summary_base AS
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

CREATE UNIQUE INDEX order_summary_base_id ON order_summary_base (id);
CREATE UNIQUE INDEX order_summary_base_reference ON order_summary_base (reference);
CREATE INDEX order_summary_base_created_at ON order_summary_base (created_at DESC, id DESC);
CREATE INDEX order_summary_base_status ON order_summary_base (status, created_at DESC, id DESC);
CREATE INDEX order_summary_base_customer ON order_summary_base (customer_name);

CREATE MATERIALIZED VIEW order_summary_delta AS
SELECT pending.order_id AS delta_key, summary.*
FROM read_pending_orders('order_summary') pending
LEFT JOIN LATERAL (
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
    WHERE o.id = pending.order_id
    GROUP BY o.id
) summary ON true;

CREATE UNIQUE INDEX order_summary_delta_key ON order_summary_delta (delta_key, id);
CREATE INDEX order_summary_delta_reference ON order_summary_delta (reference);
CREATE INDEX order_summary_delta_created_at ON order_summary_delta (created_at DESC, id DESC);

-- Readers take a key's rows from the delta where it has the key, else from the base.
-- Written so that each branch of the UNION ALL stays a single relation: the planner
-- then pushes filters into both, reads them in index order (Merge Append) for a
-- first page, and hashes the delta's keys once per query.
CREATE VIEW order_summary AS
SELECT piece.id, piece.reference, piece.customer_name, piece.shipping_address, piece.status,
       piece.line_count, piece.total_quantity, piece.total_amount,
       piece.allocated_line_count, piece.created_at
FROM (
    SELECT true AS from_delta, delta.id, delta.reference, delta.customer_name,
           delta.shipping_address, delta.status, delta.line_count, delta.total_quantity,
           delta.total_amount, delta.allocated_line_count, delta.created_at
    FROM order_summary_delta delta
    UNION ALL
    SELECT false, base.id, base.reference, base.customer_name, base.shipping_address,
           base.status, base.line_count, base.total_quantity, base.total_amount,
           base.allocated_line_count, base.created_at
    FROM order_summary_base base
) piece
WHERE CASE WHEN piece.from_delta THEN piece.id IS NOT NULL
           ELSE NOT EXISTS (
               SELECT 1 FROM order_summary_delta delta WHERE delta.delta_key = piece.id)
      END;
"""

REVERSE_SQL = """
DROP VIEW order_summary;
DROP MATERIALIZED VIEW order_summary_delta;
DROP MATERIALIZED VIEW order_summary_base;
DELETE FROM read_model_base_state WHERE unit = 'order_summary';

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
    dependencies = [("orders_read", "0011_allocations_view_base_and_delta")]

    operations = [migrations.RunSQL(SQL, reverse_sql=REVERSE_SQL)]
