"""A state row for every read model from the start: a write only flips a row's ``dirty``
flag (``refresh._ask``), it never creates one."""

from django.db import migrations

from orders_read.read_models import READ_MODELS

NAMES = ", ".join(f"('{name}')" for name in READ_MODELS)


class Migration(migrations.Migration):
    dependencies = [("orders_read", "0018_compaction_requests")]

    operations = [
        migrations.RunSQL(
            "INSERT INTO read_model_state (unit, dirty, refresh_count, snapshot, last_error)"
            f" SELECT name, true, 0, '', '' FROM (VALUES {NAMES}) AS read_model (name)"
            " ON CONFLICT (unit) DO NOTHING",
            reverse_sql=migrations.RunSQL.noop,
        )
    ]
