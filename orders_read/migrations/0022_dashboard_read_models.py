"""The dashboard's read models, created from their definitions in
``orders_read.read_models`` (order lines by the days they were ordered and allocated,
lines waiting for stock), and the viewers' permission to see them."""

from django.db import migrations, models

from config.http.permissions import create_groups
from orders_read.read_models import LINE_DAYS, WAITING_LINES

MODELS = (LINE_DAYS, WAITING_LINES)
# Dropped first: an older migration that creates every read model made them already.
CREATE = "".join(model.drop_sql() + model.create_sql() for model in MODELS)
DROP = "".join(model.drop_sql() for model in MODELS) + (
    "DELETE FROM read_model_state WHERE unit IN ('line_days', 'waiting_lines');\n"
    "DELETE FROM read_model_base_state WHERE unit IN ('line_days', 'waiting_lines');\n"
)


class Migration(migrations.Migration):
    dependencies = [
        ("orders_read", "0021_order_history"),
        ("orders_write", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name='LineDay',
            fields=[
                ('line_id', models.BigIntegerField(primary_key=True, serialize=False)),
                ('order_id', models.BigIntegerField()),
                ('sku', models.CharField(max_length=255, verbose_name='SKU')),
                ('qty', models.IntegerField(verbose_name='quantity')),
                ('ordered_on', models.DateField(help_text='The day its order was placed.')),
                ('allocated_on', models.DateField(help_text='The day it was allocated, while it holds its stock.', null=True)),
            ],
            options={
                'verbose_name': 'order line by day',
                'verbose_name_plural': 'order lines by day',
                'db_table': 'line_days',
                'ordering': ['-ordered_on', 'line_id'],
                'abstract': False,
                'managed': False,
            },
        ),
        migrations.CreateModel(
            name='WaitingLine',
            fields=[
                ('line_id', models.BigIntegerField(primary_key=True, serialize=False)),
                ('order_id', models.BigIntegerField()),
                ('orderid', models.CharField(max_length=255, verbose_name='order')),
                ('sku', models.CharField(max_length=255, verbose_name='SKU')),
                ('qty', models.IntegerField(verbose_name='quantity')),
            ],
            options={
                'verbose_name': 'waiting line',
                'db_table': 'waiting_lines',
                'ordering': ['orderid', 'sku'],
                'abstract': False,
                'managed': False,
            },
        ),
        migrations.RunSQL(CREATE, reverse_sql=DROP),
        migrations.RunPython(create_groups, migrations.RunPython.noop),
    ]
