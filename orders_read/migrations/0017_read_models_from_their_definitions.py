"""The five read models recreated from their definitions in ``orders_read.read_models``,
from which every later change to one of them is made too (a new migration that drops
and creates it). The stock read models now read each batch's allocated quantity as the
write side keeps it, in their bases as in their deltas, so ``batch_stock`` goes."""

from django.db import migrations

from orders_read.read_models import READ_MODELS

BATCH_STOCK = """
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
"""

RECREATE = "".join(model.drop_sql() + model.create_sql() for model in READ_MODELS.values())


class Migration(migrations.Migration):
    dependencies = [("orders_read", "0016_watcher_heartbeat")]

    operations = [
        migrations.RunSQL(RECREATE + "DROP VIEW batch_stock;", reverse_sql=BATCH_STOCK + RECREATE)
    ]
