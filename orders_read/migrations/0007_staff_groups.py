"""The two staff groups: clerks run commands (write permissions), viewers run queries
(view permissions on the read models)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CLERKS = [
    ("orders_write", codename)
    for codename in (
        "add_product",
        "view_product",
        "add_batch",
        "change_batch",
        "view_batch",
        "add_order",
        "change_order",
        "view_order",
        "view_orderline",
        "add_allocation",
        "delete_allocation",
        "view_allocation",
    )
]
VIEWERS = [
    ("orders_read", f"view_{model}")
    for model in (
        "allocationrow",
        "ordersummary",
        "orderlinerow",
        "productavailability",
        "batchavailability",
        "refreshstate",
    )
]


def create_groups(apps, schema_editor):
    # Permissions are normally made after migrate; these groups need them now.
    for app_label in ("orders_write", "orders_read"):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True  # what create_permissions checks; stubs lack it
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in (("clerks", CLERKS), ("viewers", VIEWERS)):
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["clerks", "viewers"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders_read", "0006_product_availability"),
        ("orders_write", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
