"""Token authentication and permissions read in one query each: the same answers as
Django's and DRF's own classes, and nothing kept from one request to the next."""

import pytest
from django.contrib.auth import backends
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from config.http.authentication import ModelBackend, TokenAuthentication
from tests.factories import NOT_PERMITTED, client_for, make_user

pytestmark = pytest.mark.django_db

INVALID = {"message": "Invalid token."}


def token_client(user: User):
    client = client_for("anonymous")
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_a_permission_taken_away_counts_at_the_next_request():
    viewer = make_user("viewer")
    client = token_client(viewer)
    assert client.get("/api/products").status_code == 200

    viewer.groups.clear()

    response = client.get("/api/products")
    assert response.status_code == 403
    assert response.json() == {"message": NOT_PERMITTED}


def test_a_permission_given_to_the_user_alone_is_enough():
    user = make_user("nobody")
    client = token_client(user)
    assert client.get("/api/products").status_code == 403

    user.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="orders_read", codename="view_productavailability"
        )
    )

    assert client.get("/api/products").status_code == 200
    assert client.get("/api/orders").status_code == 403  # that permission only


def test_a_deactivated_users_token_is_refused_at_the_next_request():
    clerk = make_user("staff")
    client = token_client(clerk)
    assert client.get("/api/orders").status_code == 200

    User.objects.filter(pk=clerk.pk).update(is_active=False)

    response = client.get("/api/orders")
    assert response.status_code == 401
    assert response.json() == {"message": "User inactive or deleted."}


def test_a_deleted_token_is_refused_at_the_next_request():
    client = token_client(make_user("viewer"))
    assert client.get("/api/orders").status_code == 200

    Token.objects.all().delete()

    response = client.get("/api/orders")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == INVALID


def test_request_user_is_the_tokens_user_with_all_its_fields():
    staff = make_user("staff")
    key = Token.objects.create(user=staff).key

    user, token = TokenAuthentication().authenticate_credentials(key)

    stored = User.objects.get(pk=staff.pk)
    fields = [field.attname for field in User._meta.concrete_fields]
    assert [getattr(user, name) for name in fields] == [getattr(stored, name) for name in fields]
    assert (token.key, token.user_id, token.created) == (key, staff.pk, staff.auth_token.created)


@pytest.mark.parametrize("role", ["nobody", "viewer", "clerk", "staff", "superuser"])
def test_permissions_are_djangos_own(role):
    user = make_user(role)
    user.user_permissions.add(Permission.objects.get(codename="add_group"))
    Group.objects.get(name="viewers").permissions.add(Permission.objects.get(codename="view_user"))

    ours = ModelBackend().get_all_permissions(User.objects.get(pk=user.pk))
    djangos = backends.ModelBackend().get_all_permissions(User.objects.get(pk=user.pk))

    assert ours == djangos
    assert "auth.add_group" in ours


def test_a_token_request_checks_its_token_and_permissions_in_two_queries():
    client = token_client(make_user("viewer"))
    client.get("/api/allocations/o1")  # each statement is prepared on first use

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/allocations/o1")

    assert response.status_code == 404
    sent = [query["sql"] for query in queries.captured_queries]
    assert sent[0].startswith("EXECUTE token_and_user (")
    assert sent[1].startswith("EXECUTE permissions_of_user (")
    assert [sql for sql in sent if not sql.startswith("EXECUTE ")] == []


@pytest.mark.parametrize(
    ("header", "scheme"),
    [("Bearer {key}", "Bearer"), ("{key}", "(none)"), ("Basic {key}", "Basic")],
)
def test_another_scheme_is_refused_with_the_one_expected(header, scheme):
    key = Token.objects.create(user=make_user("viewer")).key
    client = client_for("anonymous")
    client.credentials(HTTP_AUTHORIZATION=header.format(key=key))

    response = client.get("/api/products")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    message = response.json()["message"]
    assert message.startswith(f"Unsupported authorization scheme {scheme}: ")
    assert "'Authorization: Token <key>'" in message
    assert key not in message  # the key is never echoed back


def test_the_token_scheme_is_read_in_any_case():
    key = Token.objects.create(user=make_user("viewer")).key
    client = client_for("anonymous")
    client.credentials(HTTP_AUTHORIZATION=f"token {key}")

    assert client.get("/api/products").status_code == 200
