"""What `make soak` and `make bench` share: a database of their own, management commands
run against it, and `make run`'s server (granian, 2 workers) with the read side's watcher
serving it.

Both drive the application from the outside, as a deployment would see it, so they
start real processes rather than Django's test server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter

from tests import processes
from tests.processes import PROJECT, manage


def _default_database() -> dict:
    """Django's settings of the database `make run` uses (starting the private server
    if need be), for making another database beside it."""
    sys.path.insert(0, str(PROJECT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection

    return connection.settings_dict


def fresh_database_url(name: str) -> str:
    """A libpq URL of database ``name``, next to the one `make run` uses; dropped and
    created afresh."""
    import psycopg2

    from config.localdb import url_of

    database = _default_database()
    admin = psycopg2.connect(url_of({**database, "NAME": "postgres"}))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return url_of({**database, "NAME": name})


def shell(environment: dict, code: str) -> str:
    """Run Python ``code`` in ``manage.py shell``; the last word it printed."""
    return manage(environment, "shell", "-c", code).split()[-1]


def create_token_user(environment: dict, username: str) -> str:
    """A user in every group, as an integration's account would be, and its API token's
    key (not a superuser: its requests skip the permission checks)."""
    return shell(
        environment,
        "from django.contrib.auth.models import User, Group;"
        "from rest_framework.authtoken.models import Token;"
        f"user = User.objects.create_user({username!r}, password=None);"
        "user.groups.set(Group.objects.all());"
        "print(Token.objects.create(user=user).key)",
    )


def create_session(environment: dict, username: str) -> str:
    """A signed-in browser session of ``username`` for the staff pages: its cookie."""
    return shell(
        environment,
        "from django.contrib.auth.models import User;"
        "from django.test import Client;"
        "client = Client();"
        f"client.force_login(User.objects.get(username={username!r}));"
        "print(client.cookies['sessionid'].value)",
    )


def start_server(environment: dict, port: int, *, workers: int = 2) -> subprocess.Popen:
    """The server `make run` runs (config/server.py: granian, ``workers`` workers of
    `make run`'s blocking threads) serving the project on 127.0.0.1:``port``; returns once
    it answers. Without its access log, unless ``environment`` asks for it: written from
    Python in the workers, it cost ~17 % of the allocations lookup's requests/s here, and
    the peer's gunicorn writes none."""
    return processes.start_server(
        {"GRANIAN_LOG_ACCESS_ENABLED": "false", **environment}, port, workers=workers
    )


class Client:
    """A JSON client with a token that counts the statuses it got and the stale answers."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token
        self.statuses: Counter[int] = Counter()
        self.stale = 0

    def call(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        *,
        consistency: str | None = None,
        timeout: float = 30,
    ) -> tuple[int, dict, bytes]:
        """(status, headers, body); status 0 when the connection failed or timed out."""
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        if consistency:
            headers["X-Consistency-Token"] = consistency
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        content = b""
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, answer_headers = response.status, response.headers
                content = response.read()
        except urllib.error.HTTPError as error:
            status, answer_headers = error.code, error.headers
            content = error.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            status, answer_headers = 0, {}
        self.statuses[status] += 1
        if answer_headers.get("X-Read-Model-Stale") == "true":
            self.stale += 1
        return status, answer_headers, content
