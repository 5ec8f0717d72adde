"""Read replicas as Django databases: aliases ``replica_1`` … ``replica_N``, named by
DATABASE_REPLICA_URLS or, with no database configured, the private server's standbys.

Each is a test mirror of ``default``: the test runner creates no database on it (a hot
standby takes no writes), and it reads the test database as it streams from the primary.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import environ
from django.core.exceptions import ImproperlyConfigured

PREFIX = "replica_"


def alias(number: int) -> str:
    """The alias of replica ``number`` (from 1)."""
    return f"{PREFIX}{number}"


def is_replica(database: str) -> bool:
    """Whether the alias names a read replica."""
    return database.startswith(PREFIX) and database[len(PREFIX) :].isdigit()


# Seconds to wait for a replica's connection: a replica whose host is gone is skipped
# after this (orders_read/replicas.py), instead of holding its query for the OS's timeout.
CONNECT_TIMEOUT = 2


def replica_settings(database: dict) -> dict:
    """A DATABASES entry for a replica: ``database``, mirroring ``default`` in tests,
    connecting within CONNECT_TIMEOUT unless its URL says otherwise."""
    options = {"connect_timeout": CONNECT_TIMEOUT, **database.get("OPTIONS", {})}
    return {
        **database,
        "OPTIONS": options,
        "TEST": {**database.get("TEST", {}), "MIRROR": "default"},
    }


def databases_from_urls(urls: Iterable[str]) -> dict[str, dict]:
    """DATABASES entries ``replica_1`` … for the database URLs, in their order; blank
    ones skipped. ImproperlyConfigured names a URL that is no PostgreSQL database."""
    entries = {}
    for url in (url.strip() for url in urls):
        if not url:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Engine not recognized": refused below
                database = environ.Env.db_url_config(url)
        except (ImproperlyConfigured, KeyError, ValueError):
            database = {}
        if database.get("ENGINE") != "django.db.backends.postgresql":
            raise ImproperlyConfigured(
                f"DATABASE_REPLICA_URLS: {url!r} is not a PostgreSQL URL"
                " (postgres://user:password@host:port/name)."
            )
        entries[alias(len(entries) + 1)] = replica_settings(database)
    return entries
