"""A worker of the server (granian) killed in the middle of a command: nothing
half-written is visible, nothing committed is lost, and the server goes on serving."""

import threading
import urllib.error
import urllib.request

import psutil
import pytest
from rest_framework.authtoken.models import Token

from orders_read import refresh, verification
from orders_read.read_models import READ_MODELS
from orders_write.models import Event, Order
from tests.factories import add_batch, make_user
from tests.faults.commands import a_command_waits_for_the_product, hold_the_product
from tests.processes import answers, environment, free_port, post, start_server, stop
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(staff_groups):
    port = free_port()
    process = start_server(
        environment(READ_MODEL_REFRESH="sync"),
        port,
        workers=1,
        options=("--workers-kill-timeout", "5"),
        ready_path="/api/schema/",
    )
    yield f"http://127.0.0.1:{port}", process
    stop(process, timeout=30)


def test_a_worker_killed_during_a_command_leaves_nothing_half_written(server):
    base, master = server
    add_batch("lamps", "LAMP", 10)
    token = Token.objects.create(user=make_user("staff")).key
    events_before = Event.objects.count()
    # Hold the product's row: the command creates its order, then waits here.
    holder = hold_the_product("LAMP")
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
    wait_until(a_command_waits_for_the_product, what="the command to wait for the product")

    for worker in psutil.Process(master.pid).children():
        worker.kill()
    sender.join(timeout=30)
    holder.rollback()
    holder.close()

    assert "error" in outcome  # the client saw the connection drop, not a success
    # The worker's transaction died with its connection: no order, no event, no line.
    wait_until(lambda: not a_command_waits_for_the_product(), what="the backend to go")
    assert not Order.objects.filter(reference="doomed").exists()
    assert Event.objects.count() == events_before

    # granian's main process starts a new worker; the same command now goes through, once.
    wait_until(lambda: answers(base + "/api/schema/"), timeout=60, what="a new worker")
    answer = post(base, "/api/allocate", {"orderid": "doomed", "sku": "LAMP", "qty": 2}, token)
    assert answer.status == 202
    assert Order.objects.filter(reference="doomed").count() == 1
    refresh.refresh(READ_MODELS)
    assert all(check.ok for check in verification.check_all())
