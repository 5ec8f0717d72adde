"""Async mode: `refresh_views --watch` in a real subprocess keeps the read side fresh."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config import localdb
from orders_read import queries
from orders_write import commands, services
from tests.write.conftest import add_batch

pytestmark = pytest.mark.django_db(transaction=True)

PROJECT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The test database as a DATABASE_URL, for a subprocess."""
    return localdb.url_of(connection.settings_dict)


class Watcher:
    """`manage.py refresh_views --watch` as a subprocess, its output collected."""

    def __init__(self, *, interval: float = 60):
        environment = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "SECRET_KEY": settings.SECRET_KEY,
            "READ_MODEL_REFRESH": "async",
            "PYTHONUNBUFFERED": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "refresh_views", "--watch", "--interval", str(interval)],
            cwd=PROJECT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
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


@pytest.fixture
def watcher():
    started = []

    def start(**kwargs):
        started.append(Watcher(**kwargs))
        assert started[-1].ready.wait(timeout=60), "\n".join(started[-1].lines)
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def async_mode(settings):
    settings.READ_MODEL_REFRESH = "async"
    settings.READ_MODEL_MAX_WAIT = 20


def test_a_token_read_waits_for_the_watcher_and_then_sees_the_write(async_mode, watcher):
    add_batch("lamps", "LAMP", 10)
    watcher()

    result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))
    freshness = queries.freshness("allocations_for", result.consistency_token)

    assert freshness.stale is False
    assert queries.allocations_for("o1") == [{"sku": "LAMP", "batchref": "lamps"}]
    # Each query waits for the views it reads: availability is another one.
    assert queries.freshness("product", result.consistency_token).stale is False
    assert queries.product("LAMP").allocated == 2


def test_the_watcher_catches_up_on_writes_made_while_it_was_down(async_mode, watcher):
    add_batch("lamps", "LAMP", 10)
    result = services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))
    assert queries.allocations_for("o1") == []

    watcher()
    freshness = queries.freshness("allocations_for", result.consistency_token)

    assert freshness.stale is False
    assert queries.allocations_for("o1") == [{"sku": "LAMP", "batchref": "lamps"}]


def test_the_watcher_stops_cleanly_on_sigterm(watcher):
    running = watcher()

    running.stop()

    assert running.process.returncode == 0
    assert running.lines[-1] == "watcher stopped"
