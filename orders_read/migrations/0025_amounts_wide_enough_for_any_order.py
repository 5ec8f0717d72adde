"""Order and line amounts wide enough for any order the rules accept: a line's amount
(up to 2^31 - 1 units at up to 9,999,999,999.99) took more than numeric(14, 2), and one
such line made every later refresh of the order read models fail. The two read models
are recreated from their definitions in ``orders_read.read_models``."""

from django.db import migrations

from orders_read.read_models import ORDER_LINES_VIEW, ORDER_SUMMARY

RECREATE = "".join(model.drop_sql() + model.create_sql() for model in (ORDER_SUMMARY, ORDER_LINES_VIEW))


class Migration(migrations.Migration):
    dependencies = [("orders_read", "0024_base_counts_snapshot_defaults_empty")]

    operations = [
        # Backwards they stay as they are now: the definitions have one form.
        migrations.RunSQL(RECREATE, reverse_sql=RECREATE)
    ]
