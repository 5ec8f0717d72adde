"""The two staff groups: clerks run commands (write permissions), viewers run queries
(view permissions on the read models). They serve authentication and permissions, so
they are defined in config.http.permissions; this migration only makes them."""

from django.db import migrations

# CLERKS and VIEWERS stay importable here: the tests' fixtures read them from this module.
from config.http.permissions import CLERKS, VIEWERS, create_groups, remove_groups  # noqa: F401


class Migration(migrations.Migration):
    dependencies = [
        ("orders_read", "0006_product_availability"),
        ("orders_write", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
