"""Dirty keys: which orders and SKUs each transaction wrote, for the delta views.

Statement-level triggers on the write tables record, in the writing transaction, the
keys it touched and its transaction id (``pg_current_xact_id()``). A read model's delta
view covers the keys whose writes its base view's snapshot does not include
(``read_pending_orders`` / ``read_pending_skus``), so a refresh after a write rebuilds
only the rows of what was written. A bulk load that rebuilds the bases itself turns the
triggers off for its transaction with ``SET LOCAL quartermaster.bulk_load = 'on'``.
"""

from django.db import migrations

WRITE_TABLES = [
    "orders_write_product",
    "orders_write_batch",
    "orders_write_order",
    "orders_write_orderline",
    "orders_write_allocation",
]
TRIGGERS = [
    ("insert", "INSERT", "NEW"),
    ("update", "UPDATE", "NEW"),
    ("delete", "DELETE", "OLD"),
]

SQL = (
    """
CREATE TABLE read_dirty_order (
    order_id bigint NOT NULL,
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (order_id, transaction_id)
);

CREATE TABLE read_dirty_sku (
    sku varchar(255) NOT NULL,
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (sku, transaction_id)
);

CREATE FUNCTION read_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('quartermaster.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'orders_write_order' THEN
        INSERT INTO read_dirty_order (order_id)
        SELECT DISTINCT id FROM changed_rows ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'orders_write_orderline' THEN
        INSERT INTO read_dirty_order (order_id)
        SELECT DISTINCT order_id FROM changed_rows ON CONFLICT DO NOTHING;
        INSERT INTO read_dirty_sku (sku)
        SELECT DISTINCT sku FROM changed_rows ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'orders_write_allocation' THEN
        INSERT INTO read_dirty_order (order_id)
        SELECT DISTINCT line.order_id
        FROM changed_rows JOIN orders_write_orderline line ON line.id = changed_rows.line_id
        ON CONFLICT DO NOTHING;
        INSERT INTO read_dirty_sku (sku)
        SELECT DISTINCT batch.sku
        FROM changed_rows JOIN orders_write_batch batch ON batch.id = changed_rows.batch_id
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO read_dirty_sku (sku)
        SELECT DISTINCT sku FROM changed_rows ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

-- The keys a read model's delta view covers: written by transactions that its base's
-- last rebuild did not see (every key, when the base was never rebuilt).
CREATE FUNCTION read_pending_orders(read_model text) RETURNS TABLE (order_id bigint)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT dirty.order_id
    FROM read_dirty_order dirty
    WHERE NOT coalesce(pg_visible_in_snapshot(dirty.transaction_id, (
        SELECT nullif(base.snapshot, '')::pg_snapshot
        FROM read_model_base_state base WHERE base.unit = read_model)), false)
$$;

CREATE FUNCTION read_pending_skus(read_model text) RETURNS TABLE (sku varchar)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT dirty.sku
    FROM read_dirty_sku dirty
    WHERE NOT coalesce(pg_visible_in_snapshot(dirty.transaction_id, (
        SELECT nullif(base.snapshot, '')::pg_snapshot
        FROM read_model_base_state base WHERE base.unit = read_model)), false)
$$;
"""
    + "".join(
        f"""
CREATE TRIGGER read_dirty_after_{name} AFTER {event} ON {table}
    REFERENCING {transition} TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION read_mark_dirty();
"""
        for table in WRITE_TABLES
        for name, event, transition in TRIGGERS
    )
)

REVERSE_SQL = (
    "".join(
        f"DROP TRIGGER read_dirty_after_{name} ON {table};\n"
        for table in WRITE_TABLES
        for name, _, _ in TRIGGERS
    )
    + """
DROP FUNCTION read_pending_skus(text);
DROP FUNCTION read_pending_orders(text);
DROP FUNCTION read_mark_dirty();
DROP TABLE read_dirty_sku;
DROP TABLE read_dirty_order;
"""
)


class Migration(migrations.Migration):
    dependencies = [
        ("orders_read", "0009_refresh_state_of_bases"),
        ("orders_write", "0001_initial"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=REVERSE_SQL)]
