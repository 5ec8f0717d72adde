"""API tests: real HTTP through Django's test client (DRF's APIClient), committed data."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import make_user

ROLES = ("anonymous", "nobody", "viewer", "clerk", "superuser")


@pytest.fixture(autouse=True)
def _staff_groups(staff_groups):
    pass


def client_for(role: str) -> APIClient:
    """A client authenticated as ``role`` with an API token (or not at all)."""
    client = APIClient()
    if role != "anonymous":
        token = Token.objects.create(user=make_user(role))
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api():
    """A client for a member of both groups: commands and queries."""
    return client_for("staff")


@pytest.fixture
def as_role():
    return client_for
