"""Over-long URLs and headers: a 414 or 431 that says why (JSON under /api/, a page
elsewhere) from Django, and past the far higher limits of the server in front (granian)
its own 414 or 431 at once; never a 5xx, never a wait; nothing written."""

import contextlib
import http.client
import json
import os
import socket

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


# --- the server in front (granian, as `make run` serves) ----------------------------------
#
# granian hands Django a request line of up to 65,534 characters and a head of up to
# about 400 KB (its HTTP/1 buffer), so that Django's JSON or page answers anything over
# its own limits. Past granian's limits granian itself refuses at once: a 414 or 431 with
# an empty body, and the connection closed.

GRANIAN_MAX_URL_LENGTH = 65_534
GRANIAN_MAX_HEADERS = 100  # every header the client sends, Host included


@pytest.fixture(scope="module")
def server_port():
    """The server `make run` runs (config/server.py) serving the project. No request here
    reaches the database: each is refused, or finds no API endpoint."""
    port = free_port()
    process = start_server(
        {
            **os.environ,
            "DATABASE_URL": localdb.url_of(settings.DATABASES["default"]),
            "SECRET_KEY": settings.SECRET_KEY or "test",
        },
        port,
        workers=1,
        ready_path="/api/nothing/",
    )
    yield port
    stop(process, timeout=30)


def send(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """(status, Content-Type, body) of a GET written whole to a real socket, as a client
    would send it; within 30 s, or it raises."""
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            # A server that refuses a huge head may close before reading all of it.
            connection.sendall((head + "\r\n").encode("latin-1"))
        response = http.client.HTTPResponse(connection)
        response.begin()
        return response.status, response.getheader("Content-Type") or "", response.read()


def test_the_server_serves_a_url_at_the_limit(server_port):
    path = url_of_length("/api/nothing/", MAX_URL_LENGTH)

    status, content_type, body = send(server_port, path)

    assert (status, content_type) == (404, "application/json")
    assert json.loads(body) == {"message": f"No API endpoint at {path}."}


@pytest.mark.parametrize("length", [MAX_URL_LENGTH + 100, GRANIAN_MAX_URL_LENGTH])
def test_the_server_passes_a_url_too_long_to_django(server_port, length):
    status, content_type, body = send(server_port, url_of_length("/api/x", length))

    assert (status, content_type) == (414, "application/json")
    assert json.loads(body)["message"] == (
        f"The URL is too long: {length} characters, at most {MAX_URL_LENGTH} are served."
    )


@pytest.mark.parametrize(
    ("length", "status"),
    [
        pytest.param(GRANIAN_MAX_URL_LENGTH + 1, 414, id="a URL over its limit"),
        # More than the whole head may take: refused as a head too large.
        pytest.param(16_000_000, 431, id="a 16 MB URL"),
    ],
)
def test_the_server_refuses_a_url_over_its_own_limits_at_once(server_port, length, status):
    assert send(server_port, url_of_length("/api/x", length)) == (status, "", b"")


@pytest.mark.parametrize("length", [MAX_HEADER_LENGTH + 100, 300_000])
def test_the_server_passes_a_header_too_long_to_django(server_port, length):
    value = header_of_length("X-Padding", length)

    status, content_type, body = send(server_port, "/api/x", {"X-Padding": value})

    assert (status, content_type) == (431, "application/json")
    assert json.loads(body)["message"] == (
        f"The X-Padding header is too long: {length} characters,"
        f" at most {MAX_HEADER_LENGTH} are served."
    )


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Padding": "v" * 1_000_000}, id="a 1 MB header"),
        pytest.param({"X-Padding": "v" * 16_000_000}, id="a 16 MB header"),
        pytest.param(
            {f"X-Header-{number}": "v" for number in range(GRANIAN_MAX_HEADERS - 1)},
            id="101 headers",
        ),
    ],
)
def test_the_server_refuses_headers_over_its_own_limits_at_once(server_port, headers):
    assert send(server_port, "/api/x", headers) == (431, "", b"")


def test_the_server_passes_as_many_headers_as_it_takes_to_django(server_port):
    # Host and Connection, and these.
    headers = {f"X-Header-{number}": "v" for number in range(GRANIAN_MAX_HEADERS - 2)}

    status, content_type, body = send(server_port, "/api/nothing/", headers)

    assert (status, content_type) == (404, "application/json")
    assert json.loads(body) == {"message": "No API endpoint at /api/nothing/."}
