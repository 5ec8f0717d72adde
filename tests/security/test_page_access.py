"""Who may open which staff page: every page and form, for anonymous users, users in no
group, viewers, clerks, members of both, superusers."""

import pytest

from orders_write.models import Event
from tests.factories import add_batch, browser_for, place

# In one transaction, rolled back: what a test writes is read back from the write tables.
# Tests that read it from the read models, refreshed only after a commit, are marked
# transaction=True.
pytestmark = pytest.mark.django_db

READ_PAGES = [
    "/orders/",
    "/orders/o1/",
    "/stock/",
    "/read-models/",
    "/dashboard/",
    "/orders.csv",
    "/stock.csv",
]
WRITE_PAGES = [
    "/orders/new/",
    "/orders/o1/submit/",
    "/orders/o1/cancel/",
    "/batches/new/",
    "/batches/b1/quantity/",
    "/allocate/",
]
# role -> (read pages, write pages)
EXPECTED = {
    "nobody": (403, 403),
    "viewer": (200, 403),
    "clerk": (403, 200),
    "staff": (200, 200),
    "superuser": (200, 200),
}


@pytest.fixture(autouse=True)
def an_order_and_a_batch(staff_groups):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 1))


@pytest.mark.parametrize("path", [*READ_PAGES, *WRITE_PAGES, "/"])
def test_anonymous_users_are_sent_to_log_in(path):
    response = browser_for("anonymous").get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", EXPECTED)
@pytest.mark.parametrize("path", READ_PAGES)
def test_read_pages_need_the_viewers_permissions(role, path):
    assert browser_for(role).get(path).status_code == EXPECTED[role][0]


@pytest.mark.parametrize("role", EXPECTED)
@pytest.mark.parametrize("path", WRITE_PAGES)
def test_write_pages_need_the_clerks_permissions(role, path):
    assert browser_for(role).get(path).status_code == EXPECTED[role][1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ["anonymous", "nobody", "viewer"])
@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/orders/o1/submit/", {}),
        ("/orders/o1/cancel/", {}),
        ("/batches/new/", {"ref": "b2", "sku": "LAMP", "qty": "5", "eta": ""}),
        ("/batches/b1/quantity/", {"qty": "1"}),
        ("/allocate/", {"orderid": "o2", "sku": "LAMP", "qty": "1"}),
        ("/read-models/refresh/", {}),
    ],
)
def test_a_refused_post_writes_nothing(role, path, form):
    events = Event.objects.count()

    response = browser_for(role).post(path, form)

    allowed_to_refresh = role == "viewer" and path == "/read-models/refresh/"
    assert response.status_code == (
        303 if allowed_to_refresh else 302 if role == "anonymous" else 403
    )
    assert Event.objects.count() == events
