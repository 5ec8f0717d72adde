"""API tests: real HTTP through Django's test client (DRF's APIClient), committed data."""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders_read import refresh

ROLES = ("anonymous", "nobody", "viewer", "clerk", "superuser")


@pytest.fixture(autouse=True)
def staff_groups(transactional_db):
    """The groups the migration makes (a transactional test's flush removes them)."""
    migration = importlib.import_module("orders_read.migrations.0007_staff_groups")
    migration.create_groups(apps, None)
    refresh.refresh(refresh.UNITS, full=True)


def make_user(role: str) -> User:
    user = User.objects.create_user(
        username=f"{role}-user", password="a long test password", is_superuser=role == "superuser"
    )
    groups = {"viewer": ["viewers"], "clerk": ["clerks"], "staff": ["clerks", "viewers"]}
    user.groups.set(Group.objects.filter(name__in=groups.get(role, [])))
    return user


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
