"""Factories: arrange what a test needs through the services, and users and clients for
each role. Small and explicit: a test says what it makes, there is no shared data."""

import datetime
from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission, User
from django.db.models import Q
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.http.permissions import STAFF_GROUPS
from orders_read.models import WatcherState
from orders_read.read_models import READ_MODELS
from orders_write import commands, services

TODAY = datetime.date(2026, 11, 24)
TOMORROW = TODAY + datetime.timedelta(days=1)
LATER = TODAY + datetime.timedelta(days=10)

ROLES = ("anonymous", "nobody", "viewer", "clerk", "superuser")
PASSWORD = "a long test password"
# What the API answers a user who lacks the permission (DRF's message).
NOT_PERMITTED = "You do not have permission to perform this action."


def add_batch(ref: str, sku: str, qty: int, eta: datetime.date | None = None):
    return services.create_batch(commands.CreateBatch(ref=ref, sku=sku, qty=qty, eta=eta))


def place(reference: str, *lines: tuple[str, int], customer: str = "Ada Lovelace"):
    return services.place_order(
        commands.PlaceOrder(
            customer=customer,
            shipping_address="12 St James's Square, London",
            lines=tuple(commands.OrderLineInput(sku=sku, qty=qty) for sku, qty in lines),
            reference=reference,
        )
    )


def submit(reference: str):
    return services.submit_order(commands.SubmitOrder(reference))


def create_staff_groups() -> None:
    """The groups and permissions a migration makes (config.http.permissions), in a few
    queries and without the migration's machinery: a transactional test's flush removes
    them."""
    for name, wanted in STAFF_GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        matching = Q()
        for app_label, codename in wanted:
            matching |= Q(content_type__app_label=app_label, codename=codename)
        permissions = list(Permission.objects.filter(matching))
        assert len(permissions) == len(wanted), f"permissions of {name} missing"
        group.permissions.add(*permissions)


def make_user(role: str) -> User:
    """A user for ``role``: nobody (no group), viewer, clerk, staff (both), superuser."""
    user = User.objects.create_user(
        username=f"{role}-user",
        password=PASSWORD,
        is_superuser=role == "superuser",
        is_staff=role == "superuser",
    )
    groups = {"viewer": ["viewers"], "clerk": ["clerks"], "staff": ["clerks", "viewers"]}
    user.groups.set(Group.objects.filter(name__in=groups.get(role, [])))
    return user


def client_for(role: str) -> APIClient:
    """An API client authenticated as ``role`` with a token (or not at all)."""
    client = APIClient()
    if role != "anonymous":
        token = Token.objects.create(user=make_user(role))
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def browser_for(role: str) -> Client:
    """A test client logged in (by session) as ``role``; "anonymous" stays logged out."""
    client = Client()
    if role != "anonymous":
        client.force_login(make_user(role))
    return client


def watcher_row(
    *,
    host: str = "app-1",
    pid: int = 4242,
    units: Iterable[str] = READ_MODELS,
    silent_for: datetime.timedelta = datetime.timedelta(0),
) -> WatcherState:
    """A watcher's row as its heartbeat leaves it: its last beat ``silent_for`` ago."""
    beat = timezone.now() - silent_for
    return WatcherState.objects.create(
        name=f"{host}:{pid}",
        host=host,
        pid=pid,
        units=",".join(units),
        started_at=beat - datetime.timedelta(hours=1),
        heartbeat_at=beat,
    )
