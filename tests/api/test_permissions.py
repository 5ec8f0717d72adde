"""Who may do what through HTTP: every endpoint of SPEC.md's two tables for every role,
session and token authentication, CSRF, and the token endpoint with its throttle."""

from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders_write import commands, services
from orders_write.models import Event, Product
from tests.database import database_state
from tests.factories import NOT_PERMITTED, ROLES, add_batch, make_user, place

# In one transaction, rolled back: what a test writes is read back from the write tables.
# Tests that read it from the read models, refreshed only after a commit, are marked
# transaction=True.
pytestmark = pytest.mark.django_db

PASSWORD = "a long test password"  # make_user's
NOT_AUTHENTICATED = "Authentication credentials were not provided."


@pytest.fixture
def shop():
    """Enough data that every command and every query of the tables succeeds."""
    services.create_product(commands.CreateProduct("LAMP", "Desk lamp", Decimal("12.50")))
    add_batch("lamps", "LAMP", 100)
    place("o1", ("LAMP", 2))
    services.submit_order(commands.SubmitOrder("o1"))  # allocated from "lamps"
    place("o2", ("LAMP", 1))  # pending: can be submitted or cancelled
    services.create_product(commands.CreateProduct("CHAIR", "Chair", Decimal("40.00")))


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    body: dict | None = None
    success: int = 200

    @property
    def is_command(self) -> bool:
        return self.method == "POST"

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def request(self, client):
        if self.is_command:
            return client.post(self.path, self.body, format="json")
        return client.get(self.path)


COMMANDS = [
    Endpoint("POST", "/api/products", {"sku": "RUG", "name": "Rug", "price": "80.00"}, 201),
    Endpoint("POST", "/api/batches", {"ref": "rugs", "sku": "RUG", "qty": 5, "eta": None}, 201),
    Endpoint("POST", "/api/batches/lamps/quantity", {"qty": 50}, 202),
    Endpoint(
        "POST",
        "/api/orders",
        {"customer": "Ada", "shipping_address": "London", "lines": [{"sku": "LAMP", "qty": 1}]},
        201,
    ),
    Endpoint("POST", "/api/orders/o2/submit", None, 202),
    Endpoint("POST", "/api/orders/o2/cancel", None, 202),
    Endpoint("POST", "/api/allocate", {"orderid": "o3", "sku": "LAMP", "qty": 1}, 202),
    Endpoint("POST", "/api/deallocate", {"orderid": "o1", "sku": "LAMP"}, 202),
    Endpoint("POST", "/api/orders/o2/lines", {"sku": "CHAIR", "qty": 1}, 202),
    Endpoint("POST", "/api/orders/o1/lines/LAMP", {"qty": 3}, 202),
    Endpoint("POST", "/api/orders/o2/lines/LAMP/remove", None, 202),
]
QUERIES = [
    Endpoint("GET", "/api/allocations/o1"),
    Endpoint("GET", "/api/orders"),
    Endpoint("GET", "/api/orders/o1"),
    Endpoint("GET", "/api/orders/o1/history"),
    Endpoint("GET", "/api/products"),
    Endpoint("GET", "/api/products/LAMP"),
    Endpoint("GET", "/api/read-models/"),
]

ALLOWED = "allowed"
# What each role gets: commands need the clerks' permissions, queries the viewers'.
#                  anonymous   nobody   viewer   clerk    superuser
COMMAND_ACCESS = dict(zip(ROLES, (401, 403, 403, ALLOWED, ALLOWED), strict=True))
QUERY_ACCESS = dict(zip(ROLES, (401, 403, ALLOWED, 403, ALLOWED), strict=True))

# An answered query reads the read models, which are refreshed only after a commit.
COMMITTED = pytest.mark.django_db(transaction=True)
MATRIX = [
    pytest.param(
        endpoint,
        role,
        access[role],
        id=f"{endpoint}-{role}",
        marks=COMMITTED if endpoints is QUERIES and access[role] == ALLOWED else (),
    )
    for endpoints, access in ((COMMANDS, COMMAND_ACCESS), (QUERIES, QUERY_ACCESS))
    for endpoint in endpoints
    for role in ROLES
]


def test_the_matrix_covers_both_tables_of_the_spec():
    assert len(COMMANDS) == 11
    assert len(QUERIES) == 7
    assert len(MATRIX) == 18 * 5


@pytest.mark.parametrize(("endpoint", "role", "expected"), MATRIX)
def test_permission_matrix(as_role, shop, endpoint, role, expected):
    client = as_role(role)
    before, events = database_state(), Event.objects.count()

    response = endpoint.request(client)

    if expected == ALLOWED:
        assert response.status_code == endpoint.success, response.content
        return
    assert response.status_code == expected, response.content
    if expected == 401:
        assert response["WWW-Authenticate"] == "Token"
        assert response.json() == {"message": NOT_AUTHENTICATED}
    else:
        assert "WWW-Authenticate" not in response
        assert response.json() == {"message": NOT_PERMITTED}
    assert "X-Consistency-Token" not in response
    assert Event.objects.count() == events
    assert database_state() == before


# --- session authentication -----------------------------------------------------------


def test_a_logged_in_viewer_queries_with_the_session():
    make_user("viewer")
    client = Client()
    assert client.login(username="viewer-user", password=PASSWORD)

    response = client.get("/api/products")

    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_a_logged_in_clerk_runs_commands_with_the_session():
    client = APIClient()
    client.force_login(make_user("clerk"))

    response = client.post("/api/batches", {"ref": "b1", "sku": "LAMP", "qty": 3}, format="json")

    assert response.status_code == 201


def test_a_session_command_without_a_csrf_token_is_refused():
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_user("clerk"))
    before = database_state()

    response = client.post("/api/batches", {"ref": "b1", "sku": "LAMP", "qty": 3}, format="json")

    assert response.status_code == 403
    assert response.json()["message"].startswith("CSRF Failed")
    assert database_state() == before


def test_a_session_command_with_the_csrf_token_is_accepted():
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_user("clerk"))
    client.get("/accounts/login/")  # a page with a form sets the CSRF cookie
    csrf_token = client.cookies["csrftoken"].value

    response = client.post(
        "/api/batches",
        {"ref": "b1", "sku": "LAMP", "qty": 3},
        format="json",
        HTTP_X_CSRFTOKEN=csrf_token,
    )

    assert response.status_code == 201


def test_a_session_does_not_lift_the_permission_check():
    client = APIClient()
    client.force_login(make_user("viewer"))
    before = database_state()

    response = client.post("/api/products", {"sku": "RUG", "name": "Rug"}, format="json")

    assert response.status_code == 403
    assert response.json() == {"message": NOT_PERMITTED}
    assert database_state() == before


def test_an_unknown_token_is_not_authenticated():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")

    response = client.get("/api/products")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"message": "Invalid token."}


# --- the token endpoint and its throttle ----------------------------------------------


@pytest.fixture
def no_failed_logins():
    """The throttle counts in the database cache, which a test's flush does not empty."""
    cache.clear()
    yield
    cache.clear()


def get_token(client, username, password):
    return client.post(
        "/api/auth/token/", {"username": username, "password": password}, format="json"
    )


def test_right_password_gives_a_token_that_authenticates(no_failed_logins):
    clerk = make_user("clerk")

    response = get_token(APIClient(), "clerk-user", PASSWORD)

    assert response.status_code == 200
    key = response.json()["token"]
    assert response.json() == {"token": Token.objects.get(user=clerk).key}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    created = client.post("/api/products", {"sku": "RUG", "name": "Rug"}, format="json")
    assert created.status_code == 201
    assert Product.objects.filter(sku="RUG").exists()


def test_asking_again_gives_the_same_token(no_failed_logins):
    make_user("viewer")

    first = get_token(APIClient(), "viewer-user", PASSWORD)
    second = get_token(APIClient(), "viewer-user", PASSWORD)

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()


@pytest.mark.parametrize(
    ("username", "password"),
    [("clerk-user", "wrong password"), ("nobody-at-all", PASSWORD), ("clerk-user", "")],
)
def test_wrong_credentials_are_refused(no_failed_logins, username, password):
    make_user("clerk")

    response = get_token(APIClient(), username, password)

    assert response.status_code == 400
    assert response.json()["message"]
    assert not Token.objects.exists()


def test_wrong_password_says_why(no_failed_logins):
    make_user("clerk")

    response = get_token(APIClient(), "clerk-user", "wrong password")

    assert response.json()["message"] == "Unable to log in with provided credentials."


def test_after_five_failed_logins_even_the_right_password_is_throttled(no_failed_logins):
    make_user("clerk")
    client = APIClient()
    for _ in range(5):
        assert get_token(client, "clerk-user", "wrong password").status_code == 400

    response = get_token(client, "clerk-user", PASSWORD)

    assert response.status_code == 429
    assert response.json()["message"].startswith("Request was throttled.")
    assert not Token.objects.exists()


def test_successful_logins_do_not_use_up_the_allowance(no_failed_logins):
    make_user("clerk")
    client = APIClient()
    for _ in range(4):
        assert get_token(client, "clerk-user", "wrong password").status_code == 400
    for _ in range(10):
        assert get_token(client, "clerk-user", PASSWORD).status_code == 200

    fifth_failure = get_token(client, "clerk-user", "wrong password")
    sixth_attempt = get_token(client, "clerk-user", PASSWORD)

    assert fifth_failure.status_code == 400
    assert sixth_attempt.status_code == 429


def test_the_throttle_counts_per_client_address(no_failed_logins):
    make_user("clerk")
    attacker = APIClient(REMOTE_ADDR="203.0.113.7")
    for _ in range(5):
        get_token(attacker, "clerk-user", "wrong password")
    assert get_token(attacker, "clerk-user", PASSWORD).status_code == 429

    response = get_token(APIClient(REMOTE_ADDR="198.51.100.2"), "clerk-user", PASSWORD)

    assert response.status_code == 200


def test_a_forged_forwarded_for_header_does_not_reset_the_count(no_failed_logins):
    make_user("clerk")
    attacker = APIClient(REMOTE_ADDR="203.0.113.7")
    for number in range(5):
        forged = {"HTTP_X_FORWARDED_FOR": f"192.0.2.{number}"}
        attacker.post(
            "/api/auth/token/",
            {"username": "clerk-user", "password": "wrong"},
            format="json",
            **forged,
        )

    response = attacker.post(
        "/api/auth/token/",
        {"username": "clerk-user", "password": PASSWORD},
        format="json",
        HTTP_X_FORWARDED_FOR="192.0.2.99",
    )

    assert response.status_code == 429
