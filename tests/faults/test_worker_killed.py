"""A gunicorn worker killed in the middle of a command: nothing half-written is visible,
nothing committed is lost, and the server goes on serving."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import psutil
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token

from orders_read import refresh, verification
from orders_read.read_models import READ_MODELS
from orders_write.models import Event, Order
from tests.conftest import make_user
from tests.read.test_refresh import other_connection, wait_until
from tests.read.test_watcher import PROJECT, database_url
from tests.write.conftest import add_batch

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(staff_groups):
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "READ_MODEL_REFRESH": "sync",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "5",
        ],
        cwd=PROJECT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(base), timeout=60, what="gunicorn to serve")
    yield base, process
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def _answers(base: str) -> bool:
    try:
        urllib.request.urlopen(base + "/api/schema/", timeout=2)
    except (urllib.error.URLError, ConnectionError):
        return False
    return True


def post(base: str, path: str, body: dict, token: str, *, timeout: float = 30):
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
        method="POST",
    )
    return urllib.request.urlopen(request, timeout=timeout)


def _command_waits_for_the_product() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%%orders_write_product%%' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] > 0


def test_a_worker_killed_during_a_command_leaves_nothing_half_written(server):
    base, master = server
    add_batch("lamps", "LAMP", 10)
    token = Token.objects.create(user=make_user("staff")).key
    events_before = Event.objects.count()
    # Hold the product's row: the command creates its order, then waits here.
    holder = other_connection()
    with holder.cursor() as cursor:
        cursor.execute("SELECT 1 FROM orders_write_product WHERE sku = 'LAMP' FOR UPDATE")
    outcome = {}

    def send():
        try:
            outcome["status"] = post(
                base, "/api/allocate", {"orderid": "doomed", "sku": "LAMP", "qty": 2}, token
            ).status
        except (urllib.error.URLError, ConnectionError, OSError) as error:
            outcome["error"] = error

    sender = threading.Thread(target=send)
    sender.start()
    wait_until(_command_waits_for_the_product, what="the command to wait for the product")

    for worker in psutil.Process(master.pid).children():
        worker.kill()
    sender.join(timeout=30)
    holder.rollback()
    holder.close()

    assert "error" in outcome  # the client saw the connection drop, not a success
    # The worker's transaction died with its connection: no order, no event, no line.
    wait_until(lambda: not _command_waits_for_the_product(), what="the backend to go")
    assert not Order.objects.filter(reference="doomed").exists()
    assert Event.objects.count() == events_before

    # The master starts a new worker; the same command now goes through, once.
    wait_until(lambda: _answers(base), timeout=60, what="a new worker")
    answer = post(base, "/api/allocate", {"orderid": "doomed", "sku": "LAMP", "qty": 2}, token)
    assert answer.status == 202
    assert Order.objects.filter(reference="doomed").count() == 1
    refresh.refresh(READ_MODELS)
    assert all(check.ok for check in verification.check_all())
