"""Processes that tests and the benchmark start from outside, as a deployment runs them:
manage.py commands, the production server (config/server.py: granian), the read side's
watcher (`refresh_views --watch`) and supervisord, on free ports, against the database
their environment names.

Nothing Django at import time: bench/ imports this before it sets Django up.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

from tests.waiting import wait_until

PROJECT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    """This process's database (in tests, the test database) as a DATABASE_URL."""
    from django.db import connection

    from config import localdb

    return localdb.url_of(connection.settings_dict)


def environment(**values: str) -> dict[str, str]:
    """The environment of a subprocess serving this process's database with its
    SECRET_KEY, and ``values``."""
    from django.conf import settings

    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        **values,
    }


def manage(environment: dict, *args: str, timeout: float | None = None) -> str:
    """Run ``manage.py args`` with ``environment``; its standard output (raises
    CalledProcessError when it fails)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=environment,
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    ).stdout


def answers(url: str) -> bool:
    """Whether a server answers ``url`` (with any status)."""
    try:
        urllib.request.urlopen(url, timeout=10)
    except urllib.error.HTTPError:
        return True
    except OSError:  # refused, reset or timed out: not yet
        return False
    return True


def wait_until_serving(process: subprocess.Popen, url: str, *, timeout: float = 60) -> None:
    def serving() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        return answers(url)

    wait_until(serving, timeout=timeout, what=f"{url} to answer")


def start_server(
    environment: dict,
    port: int,
    *,
    workers: int = 2,
    threads: int | None = None,
    options: tuple[str, ...] = (),
    ready_path: str = "/accounts/login/",
) -> subprocess.Popen:
    """The server `make run` runs (config/server.py: granian) serving the project on
    127.0.0.1:``port``, with granian ``options``; returns once ``ready_path`` answers.
    ``threads`` blocking threads per worker, else `make run`'s."""
    values = {"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(workers)}
    if threads is not None:
        values["GRANIAN_BLOCKING_THREADS"] = str(threads)
    server = subprocess.Popen(
        [sys.executable, "-m", "config.server", *options],
        cwd=PROJECT,
        env={**environment, **values},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(server, f"http://127.0.0.1:{port}{ready_path}")
    except BaseException:
        stop(server)
        raise
    return server


def start_watcher(
    environment: dict, *, interval: float = 5, stdout: int | None = subprocess.DEVNULL
) -> subprocess.Popen:
    """`refresh_views --watch`: the read side's refresher."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "refresh_views", "--watch", "--interval", f"{interval:g}"],
        cwd=PROJECT,
        env=environment,
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout == subprocess.PIPE else None,
        text=True,
    )


def start_supervisord(environment: dict, directory: Path) -> subprocess.Popen:
    """What `make run` serves: supervisord (config/supervisord.conf) running granian and
    the watcher, from this virtualenv; its pid file and log (supervisord.log) in
    ``directory``."""
    bin_directory = Path(sys.executable).parent
    return subprocess.Popen(
        [
            bin_directory / "supervisord",
            "--configuration",
            "config/supervisord.conf",
            "--pidfile",
            directory / "supervisord.pid",
        ],
        cwd=PROJECT,
        env={**environment, "PATH": f"{bin_directory}{os.pathsep}{environment['PATH']}"},
        stdout=(directory / "supervisord.log").open("w"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen, *, timeout: float = 60) -> None:
    """SIGTERM and wait: granian, the watcher and supervisord all shut down cleanly on it."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=timeout)


class Watcher:
    """`manage.py refresh_views --watch` against the test database in async mode, its
    output collected; ``ready`` is set once it watches."""

    def __init__(self, *, interval: float = 60):
        self.process = start_watcher(
            environment(READ_MODEL_REFRESH="async", PYTHONUNBUFFERED="1"),
            interval=interval,
            stdout=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if line.startswith("watching"):
                self.ready.set()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def terminate_watcher_connections() -> int:
    """Cut every database session of the watcher on this database, as a restart or
    failover would."""
    from django.db import connection

    from orders_read.watcher import APPLICATION_NAME

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE (application_name = %s OR application_name LIKE %s)"
            " AND datname = current_database()",
            [APPLICATION_NAME, f"{APPLICATION_NAME} %"],
        )
        return cursor.fetchone()[0]


def post(base: str, path: str, body: dict, token: str, *, timeout: float = 30):
    """POST ``body`` as JSON with an API token; the open response."""
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
        method="POST",
    )
    return urllib.request.urlopen(request, timeout=timeout)
