"""The database cache table (settings.CACHES), shared by every process: it counts the
failed logins that the login throttle limits. Its name is the cache's LOCATION."""

from django.conf import settings
from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


def drop_cache_table(apps, schema_editor):
    table = schema_editor.quote_name(settings.CACHES["default"]["LOCATION"])
    schema_editor.execute(f"DROP TABLE IF EXISTS {table}")


class Migration(migrations.Migration):
    dependencies = [("orders_read", "0007_staff_groups")]

    operations = [migrations.RunPython(create_cache_table, drop_cache_table)]
