"""The database cache table (settings.CACHES), shared by every process."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


def drop_cache_table(apps, schema_editor):
    schema_editor.execute("DROP TABLE IF EXISTS quartermaster_cache")


class Migration(migrations.Migration):
    dependencies = [("orders_read", "0007_staff_groups")]

    operations = [migrations.RunPython(create_cache_table, drop_cache_table)]
