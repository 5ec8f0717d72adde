"""Repeated failed logins on the login page are refused, as on the API."""

import pytest
from django.core.cache import cache
from django.test import Client

from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_failed_logins(staff_groups):
    cache.clear()
    yield
    cache.clear()


def log_in(client: Client, password: str):
    return client.post("/accounts/login/", {"username": "staff-user", "password": password})


def test_after_five_failures_the_login_page_refuses_even_the_right_password():
    make_user("staff")
    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        assert log_in(client, "wrong").status_code == 200

    response = log_in(client, "a long test password")

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_right_password_logs_in_and_does_not_count():
    make_user("staff")
    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(10):
        assert log_in(client, "a long test password").status_code == 302

    assert log_in(client, "wrong").status_code == 200


def test_failures_on_the_api_and_the_page_share_one_allowance():
    make_user("staff")
    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        client.post(
            "/api/auth/token/",
            {"username": "staff-user", "password": "wrong"},
            content_type="application/json",
        )

    assert log_in(client, "a long test password").status_code == 429
