"""Who may open which admin page: anonymous, staff of either group, staff without
groups, superusers."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from tests.factories import make_user

pytestmark = pytest.mark.django_db

WRITE_PAGES = [
    "/admin/orders_write/product/",
    "/admin/orders_write/batch/",
    "/admin/orders_write/order/",
    "/admin/orders_write/allocation/",
]
EVENT_LOG = "/admin/orders_write/event/"
READ_PAGES = [
    "/admin/orders_read/allocationrow/",
    "/admin/orders_read/ordersummary/",
    "/admin/orders_read/orderlinerow/",
    "/admin/orders_read/productavailability/",
    "/admin/orders_read/batchavailability/",
    "/admin/orders_read/lineday/",
    "/admin/orders_read/waitingline/",
    "/admin/orders_read/refreshstate/",
]
ADMIN_ONLY = ["/admin/auth/user/", "/admin/auth/group/", "/admin/orders_write/batch/add/"]


@pytest.fixture(autouse=True)
def _staff_groups(staff_groups):
    pass


def admin_client(role: str) -> Client:
    """Roles: anonymous, viewer / clerk (not staff), bare-staff (staff, no group),
    staff-viewer / staff-clerk (staff in one group), superuser."""
    client = Client()
    if role == "anonymous":
        return client
    if role in ("viewer", "clerk", "superuser"):
        user = make_user(role)
    else:
        user = User.objects.create_user(username=role, password="a long test password")
        group = {"staff-viewer": "viewers", "staff-clerk": "clerks"}.get(role)
        if group:
            user.groups.set([Group.objects.get(name=group)])
    if role.startswith(("bare-staff", "staff-")):
        user.is_staff = True
        user.save()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", ["anonymous", "viewer", "clerk"])
@pytest.mark.parametrize("path", ["/admin/", *WRITE_PAGES, *READ_PAGES, EVENT_LOG])
def test_the_admin_sends_non_staff_to_its_login(role, path):
    response = admin_client(role).get(path)

    assert response.status_code == 302
    # The admin's own login, or the site's (every page needs a login first).
    assert response["Location"].startswith(("/admin/login/", "/accounts/login/"))


@pytest.mark.parametrize("path", [*WRITE_PAGES, *READ_PAGES, EVENT_LOG, *ADMIN_ONLY])
def test_staff_without_a_group_sees_no_model(path):
    assert admin_client("bare-staff").get(path).status_code == 403


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        *[("staff-clerk", path, 200) for path in WRITE_PAGES],
        *[("staff-clerk", path, 403) for path in READ_PAGES],
        ("staff-clerk", "/admin/orders_write/batch/add/", 200),
        ("staff-clerk", "/admin/orders_write/product/add/", 200),
        ("staff-clerk", "/admin/auth/user/", 403),
        *[("staff-viewer", path, 200) for path in READ_PAGES],
        *[("staff-viewer", path, 403) for path in WRITE_PAGES],
        ("staff-viewer", "/admin/orders_write/batch/add/", 403),
        ("staff-viewer", "/admin/auth/user/", 403),
        *[("superuser", path, 200) for path in [*WRITE_PAGES, *READ_PAGES, EVENT_LOG, *ADMIN_ONLY]],
    ],
)
def test_each_group_sees_its_side_of_the_admin(role, path, status):
    assert admin_client(role).get(path).status_code == status


@pytest.mark.parametrize(
    "path",
    [
        "/admin/orders_read/ordersummary/add/",
        "/admin/orders_write/event/add/",
        "/admin/orders_write/order/add/",
        "/admin/orders_write/allocation/add/",
    ],
)
def test_nobody_adds_read_models_events_orders_or_allocations_in_the_admin(path):
    assert admin_client("superuser").get(path).status_code == 403
