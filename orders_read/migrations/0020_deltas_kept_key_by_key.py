"""Each read model's delta becomes a table that a refresh rewrites key by key (the keys
written since the refresh before), recreated from the definitions in
``orders_read.read_models``; the dirty keys get an index on the writing transaction,
by which a refresh finds them."""

from django.db import migrations

from orders_read.read_models import READ_MODELS

RECREATE = "".join(model.drop_sql() + model.create_sql() for model in READ_MODELS.values())

INDEXES = """
CREATE INDEX read_dirty_order_transaction ON read_dirty_order (transaction_id);
CREATE INDEX read_dirty_sku_transaction ON read_dirty_sku (transaction_id);
"""

DROP_INDEXES = """
DROP INDEX read_dirty_order_transaction;
DROP INDEX read_dirty_sku_transaction;
"""


class Migration(migrations.Migration):
    dependencies = [("orders_read", "0019_refresh_state_dirty_means_asked")]

    operations = [
        # Backwards the read models stay as they are now: the definitions have one form.
        migrations.RunSQL(INDEXES + RECREATE, reverse_sql=DROP_INDEXES + RECREATE)
    ]
