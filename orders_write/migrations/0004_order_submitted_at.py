"""When an order was submitted: its waiting lines are filled in that order when stock
arrives (rule 10). Orders submitted before this knew no time: their creation's stands in."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("orders_write", "0003_event_transaction_from_the_database")]

    operations = [
        migrations.AddField(
            model_name="order",
            name="submitted_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(
            "UPDATE orders_write_order SET submitted_at = created_at WHERE status = 'submitted'",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
