"""Trigram indexes of the order summaries' reference and customer name, so that the
orders list's customer and search filters (icontains) find and count their orders on
an index instead of reading every order (``read_models.TRIGRAMS_FUNCTION``), and
statistics of what those filters compare, so that PostgreSQL knows how many orders
match. Generated from the definition in ``orders_read.read_models``."""

from django.db import migrations

from orders_read.read_models import ORDER_SUMMARY

INDEXES = ("customer_trigrams", "reference_trigrams", "customer_upper", "reference_upper")


class Migration(migrations.Migration):
    dependencies = [("orders_read", "0026_history_line_causes_by_sku")]

    operations = [
        migrations.RunSQL(
            ORDER_SUMMARY.add_indexes_sql(INDEXES),
            reverse_sql=ORDER_SUMMARY.drop_indexes_sql(INDEXES),
        )
    ]
