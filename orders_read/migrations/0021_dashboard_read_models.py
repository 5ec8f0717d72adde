"""The dashboard's read models, created from their definitions in
``orders_read.read_models`` (units per SKU per day, lines waiting for stock), and the
viewers' permission to see them."""

from django.db import migrations, models

from config.http.permissions import create_groups
from orders_read.read_models import DAILY_UNITS, WAITING_LINES

MODELS = (DAILY_UNITS, WAITING_LINES)
# Dropped first: an older migration that creates every read model made them already.
CREATE = "".join(model.drop_sql() + model.create_sql() for model in MODELS)
DROP = "".join(model.drop_sql() for model in MODELS) + (
    "DELETE FROM read_model_state WHERE unit IN ('daily_units', 'waiting_lines');\n"
    "DELETE FROM read_model_base_state WHERE unit IN ('daily_units', 'waiting_lines');\n"
)


class Migration(migrations.Migration):

    dependencies = [
        ('orders_read', '0020_deltas_kept_key_by_key'),
        ('orders_write', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='DailyUnits',
            fields=[
                ('pk', models.CompositePrimaryKey('sku', 'day', blank=True, editable=False, primary_key=True, serialize=False)),
                ('sku', models.CharField(max_length=255, verbose_name='SKU')),
                ('day', models.DateField()),
                ('ordered', models.BigIntegerField(help_text='Units in the lines of the orders placed that day, cancelled ones too.')),
                ('allocated', models.BigIntegerField(help_text='Units of the lines allocated that day that still hold their stock.')),
            ],
            options={
                'verbose_name': 'units per day',
                'verbose_name_plural': 'units per day',
                'db_table': 'daily_units',
                'ordering': ['day', 'sku'],
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
