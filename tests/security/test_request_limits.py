"""Over-long URLs and headers: a 414 or 431 that says why (JSON under /api/, a page
elsewhere), from Django and from gunicorn with config/gunicorn_limits.py, never the
server's own HTML page; nothing written."""

import http.client
import json
import os

import pytest
from django.conf import settings

from config import localdb
from config.http.middleware import MAX_HEADER_LENGTH, MAX_URL_LENGTH
from tests.database import database_state
from tests.factories import add_batch, browser_for, client_for, place
from tests.pages.html import dom, text
from tests.processes import free_port, start_server, stop


def url_of_length(prefix: str, length: int) -> str:
    return prefix + "x" * (length - len(prefix))


# --- Django (any server) ------------------------------------------------------------------


@pytest.fixture
def api(staff_groups):
    return client_for("staff")


@pytest.fixture
def staff(staff_groups):
    return browser_for("staff")


@pytest.mark.django_db
def test_an_api_url_over_the_limit_is_a_json_414_and_writes_nothing(api):
    add_batch("b1", "LAMP", 10)
    place("o1", ("LAMP", 1))
    before = database_state()
    path = url_of_length("/api/orders/o1", MAX_URL_LENGTH - len("/submit") + 1) + "/submit"

    response = api.post(path, format="json")

    assert response.status_code == 414
    assert response.json() == {
        "message": f"The URL is too long: {MAX_URL_LENGTH + 1} characters,"
        f" at most {MAX_URL_LENGTH} are served."
    }
    assert database_state() == before


@pytest.mark.django_db
def test_an_api_query_over_the_limit_is_a_json_414(api):
    response = api.get(url_of_length("/api/orders?search=", MAX_URL_LENGTH + 1))

    assert response.status_code == 414
    assert response.json()["message"].startswith("The URL is too long")


@pytest.mark.django_db
def test_an_api_url_at_the_limit_is_served(api):
    response = api.get(url_of_length("/api/orders?unused=", MAX_URL_LENGTH))

    assert response.status_code == 200
    assert response.json()["count"] == 0


@pytest.mark.django_db
def test_a_page_url_over_the_limit_is_a_page_that_says_so(staff):
    response = staff.get(url_of_length("/orders/?search=", MAX_URL_LENGTH + 1))

    assert response.status_code == 414
    assert response["Content-Type"].startswith("text/html")
    assert "The URL is too long" in text(dom(response))


@pytest.mark.django_db
def test_a_page_url_at_the_limit_is_served(staff):
    response = staff.get(url_of_length("/orders/?unused=", MAX_URL_LENGTH))

    assert response.status_code == 200


def header_of_length(name: str, length: int) -> str:
    """A value that makes the header line ``name: value`` ``length`` characters long."""
    return "v" * (length - len(name) - len(": "))


@pytest.mark.django_db
def test_an_over_long_header_is_a_json_431_and_writes_nothing(api):
    add_batch("b1", "LAMP", 10)
    before = database_state()
    body = {"orderid": "o1", "sku": "LAMP", "qty": 1}

    response = api.post(
        "/api/allocate",
        body,
        format="json",
        HTTP_X_PADDING=header_of_length("X-Padding", MAX_HEADER_LENGTH + 1),
    )

    assert response.status_code == 431
    assert response.json() == {
        "message": f"The X-Padding header is too long: {MAX_HEADER_LENGTH + 1} characters,"
        f" at most {MAX_HEADER_LENGTH} are served."
    }
    assert database_state() == before


@pytest.mark.django_db
def test_an_over_long_token_is_a_431_not_a_401():
    client = client_for("anonymous")
    value = header_of_length("Authorization", MAX_HEADER_LENGTH + 1)

    response = client.get("/api/orders", HTTP_AUTHORIZATION=value)

    assert response.status_code == 431
    assert "Authorization" in response.json()["message"]


@pytest.mark.django_db
def test_a_header_at_the_limit_is_served(api):
    response = api.get(
        "/api/orders", HTTP_X_PADDING=header_of_length("X-Padding", MAX_HEADER_LENGTH)
    )

    assert response.status_code == 200


@pytest.mark.django_db
def test_an_over_long_header_on_a_page_is_a_page_that_says_so(staff):
    response = staff.get(
        "/orders/", HTTP_X_PADDING=header_of_length("X-Padding", MAX_HEADER_LENGTH + 1)
    )

    assert response.status_code == 431
    assert "The X-Padding header is too long" in text(dom(response))


# --- gunicorn with config/gunicorn_limits.py -----------------------------------------------


@pytest.fixture(scope="module")
def gunicorn_port():
    """gunicorn serving the project with the limits config/gunicorn.py imports. No request
    here reaches the database: each is refused, or finds no API endpoint."""
    port = free_port()
    process = start_server(
        {
            **os.environ,
            "DATABASE_URL": localdb.url_of(settings.DATABASES["default"]),
            "SECRET_KEY": settings.SECRET_KEY or "test",
        },
        port,
        workers=1,
        options=("--config", "python:config.gunicorn_limits"),
        ready_path="/api/nothing/",
    )
    yield port
    stop(process, timeout=30)


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict]:
    """(status, Content-Type, JSON body) of a GET through a real socket."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), json.loads(response.read())
    finally:
        connection.close()


def test_gunicorn_serves_a_url_at_the_limit(gunicorn_port):
    path = url_of_length("/api/nothing/", MAX_URL_LENGTH)

    assert get(gunicorn_port, path) == (
        404,
        "application/json",
        {"message": f"No API endpoint at {path}."},
    )


def test_gunicorn_passes_a_url_a_little_too_long_to_django(gunicorn_port):
    status, content_type, body = get(gunicorn_port, url_of_length("/api/x", MAX_URL_LENGTH + 100))

    assert (status, content_type) == (414, "application/json")
    assert body["message"] == (
        f"The URL is too long: {MAX_URL_LENGTH + 100} characters,"
        f" at most {MAX_URL_LENGTH} are served."
    )


def test_gunicorn_answers_a_request_line_over_its_own_limit_as_json(gunicorn_port):
    status, content_type, body = get(gunicorn_port, url_of_length("/api/x", 9_000))

    assert (status, content_type) == (414, "application/json")
    assert body["message"] == "The request line is too long: at most 8190 characters are served."


def test_gunicorn_passes_a_header_a_little_too_long_to_django(gunicorn_port):
    value = header_of_length("X-Padding", MAX_HEADER_LENGTH + 100)

    status, content_type, body = get(gunicorn_port, "/api/x", {"X-Padding": value})

    assert (status, content_type) == (431, "application/json")
    assert body["message"].startswith("The X-Padding header is too long")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Padding": "v" * 9_000}, id="a header over its limit"),
        pytest.param({f"X-Header-{number}": "v" for number in range(101)}, id="101 headers"),
    ],
)
def test_gunicorn_answers_headers_over_its_own_limits_as_json(gunicorn_port, headers):
    status, content_type, body = get(gunicorn_port, "/api/x", headers)

    assert (status, content_type) == (431, "application/json")
    assert body["message"].startswith("The request's headers are too long or too many")
