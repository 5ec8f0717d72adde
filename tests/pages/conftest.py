"""Page tests: Django's test client with a logged-in user, on committed data."""

import pytest
from django.contrib.auth.models import User

from tests.factories import browser_for


@pytest.fixture(autouse=True)
def _staff_groups(staff_groups):
    pass


@pytest.fixture
def staff():
    """A member of both groups: every page and every form."""
    return browser_for("staff")


@pytest.fixture
def as_role():
    return browser_for


@pytest.fixture
def admin_client(as_role):
    """A superuser in the admin."""
    client = as_role("superuser")
    # make_user("superuser") is not staff, and the admin lets in staff only.
    User.objects.filter(username="superuser-user").update(is_staff=True)
    return client
