"""Rows per value of a read model's counted column (``counted_by``: an order's status),
kept with its base and with each refresh, so that the orders list answers its count
without counting the orders. Counted here once for the read models there are."""

from django.db import migrations, models

from orders_read.read_models import READ_MODELS


def _count_sql() -> str:
    sql = []
    for model in READ_MODELS.values():
        if not model.counted_by:
            continue
        sql.append(
            f"UPDATE read_model_base_state SET value_counts = ({model.value_counts(model.base)}),"
            f" value_counts_snapshot = snapshot WHERE unit = '{model.name}';\n"
            f"UPDATE read_model_state SET value_counts = ({model.value_counts(model.name)})"
            f" WHERE unit = '{model.name}';\n"
        )
    return "".join(sql)


class Migration(migrations.Migration):
    dependencies = [("orders_read", "0022_dashboard_read_models")]

    operations = [
        migrations.AddField(
            model_name="refreshstate",
            name="value_counts",
            field=models.JSONField(
                blank=True,
                help_text="Rows readers see per value of the read model's counted column, as"
                " of the last refresh (valid while row_count is known).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="basestate",
            name="value_counts",
            field=models.JSONField(
                blank=True, help_text="The base's rows per value of the counted column.", null=True
            ),
        ),
        migrations.AddField(
            model_name="basestate",
            name="value_counts_snapshot",
            field=models.TextField(
                blank=True,
                default="",
                help_text="The snapshot of the base that value_counts counted: they hold only"
                " while it is the base's.",
            ),
            preserve_default=False,
        ),
        migrations.RunSQL(_count_sql(), reverse_sql=migrations.RunSQL.noop),
    ]
