"""API tests: real HTTP through Django's test client (DRF's APIClient), committed data."""

import pytest

from tests.factories import client_for


@pytest.fixture(autouse=True)
def _staff_groups(staff_groups):
    pass


@pytest.fixture
def api():
    """A client for a member of both groups: commands and queries."""
    return client_for("staff")


@pytest.fixture
def as_role():
    return client_for
