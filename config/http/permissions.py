"""The staff groups: clerks run commands (the write side's permissions), viewers run
queries (view permissions on the read models). Superusers have every permission.

A migration makes them (orders_read 0007_staff_groups, which calls ``create_groups``);
a change to the groups needs a new migration that calls it again.
"""

from __future__ import annotations

from django.contrib.auth.management import create_permissions

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
        "lineday",
        "waitingline",
        "refreshstate",
    )
]
STAFF_GROUPS = {"clerks": CLERKS, "viewers": VIEWERS}


def create_groups(apps, schema_editor) -> None:
    """Make both groups with their permissions (a RunPython function; ``apps`` may also
    be the global registry)."""
    # Permissions are normally made after migrate; these groups need them now.
    for app_label in ("orders_write", "orders_read"):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True  # what create_permissions checks; stubs lack it
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in STAFF_GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            if not _model_exists(apps, app_label, codename):
                continue  # an earlier migration's state; a later one adds it
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def _model_exists(apps, app_label: str, codename: str) -> bool:
    """Whether the model of a ``view_<model>``-style permission exists in ``apps``."""
    try:
        apps.get_model(app_label, codename.split("_", 1)[1])
    except LookupError:
        return False
    return True


def remove_groups(apps, schema_editor) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=list(STAFF_GROUPS)).delete()
