"""The project's private PostgreSQL server, used when DATABASE_URL is unset.

pgserver bundles PostgreSQL 16 binaries; its data lives in ``.pgdata/`` inside the
project and the server keeps running between commands, so every ``manage.py`` call,
``make run`` and ``make test`` share it. Nothing outside the project is started or
stopped.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("QUARTERMASTER_PGDATA", BASE_DIR / ".pgdata"))
DATABASE_NAME = "quartermaster"
SUPERUSER = "postgres"


with warnings.catch_warnings():
    # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp: fine here.
    warnings.simplefilter("ignore")
    import pgserver
    from pgserver.utils import PostmasterInfo


def _running_socket_dir() -> Path | None:
    """The socket folder of the server on DATA_DIR, when it is up and ready."""

    try:
        info = PostmasterInfo.read_from_pgdata(DATA_DIR)
    except (OSError, ValueError, AssertionError):
        return None
    if info is None or not info.is_running() or info.status != "ready":
        return None
    return info.socket_dir


def socket_dir() -> Path:
    """Start the private server unless it already runs, and return its socket folder."""
    running = _running_socket_dir()
    if running is not None:
        return running
    DATA_DIR.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process, to be reused by the next.
    server = pgserver.get_server(DATA_DIR, cleanup_mode=None)
    return server.get_postmaster_info().socket_dir


def _ensure_database(host: Path) -> None:
    import psycopg2
    from psycopg2 import errors

    connection = psycopg2.connect(host=str(host), user=SUPERUSER, dbname="postgres")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME])
            if cursor.fetchone() is None:
                # Another process may create it a moment before us.
                with contextlib.suppress(errors.DuplicateDatabase):
                    cursor.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    finally:
        connection.close()


def url_of(database: dict) -> str:
    """A libpq URL (what DATABASE_URL takes) for a Django DATABASES entry: to hand the
    same database, or one beside it, to psql, pgbench or another process."""
    credentials = quote(database.get("USER") or "")
    if database.get("PASSWORD"):
        credentials += ":" + quote(database["PASSWORD"])
    host = str(database.get("HOST") or "")
    if host.startswith("/"):
        return f"postgresql://{credentials}@/{database['NAME']}?host={quote(host)}"
    port = f":{database['PORT']}" if database.get("PORT") else ""
    return f"postgresql://{credentials}@{host}{port}/{database['NAME']}"


def database_url() -> str:
    """A libpq URL for the private server (for psql, pgbench), creating the database."""
    return url_of(django_database())


def django_database() -> dict[str, str]:
    """Django's DATABASES entry for the private server, creating the database."""
    host = socket_dir()
    _ensure_database(host)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": SUPERUSER,
        "HOST": str(host),
    }


def stop() -> bool:
    """Stop the private server if it runs; True when it was running."""
    if _running_socket_dir() is None:
        return False
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "stop"], pgdata=DATA_DIR, user="pgserver" if os.geteuid() == 0 else None)
    return True


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["stop"]:
        print("stopped" if stop() else "not running")
    else:
        print(database_url())
