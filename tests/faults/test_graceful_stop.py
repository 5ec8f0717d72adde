"""The server stopped (SIGTERM, as supervisord stops it) in the middle of a command: the
command still answers and commits, then the server exits cleanly."""

import threading

import psutil
import pytest
from rest_framework.authtoken.models import Token

from orders_write.models import Order
from tests.factories import add_batch, make_user
from tests.faults.commands import a_command_waits_for_the_product, hold_the_product
from tests.processes import environment, free_port, post, start_server, stop
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _listens(pid: int) -> bool:
    return any(each.status == psutil.CONN_LISTEN for each in psutil.Process(pid).net_connections())


def test_a_command_in_flight_when_the_server_stops_is_answered_and_committed(staff_groups):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(
        environment(READ_MODEL_REFRESH="sync"), port, workers=1, ready_path="/api/schema/"
    )
    add_batch("lamps", "LAMP", 10)
    token = Token.objects.create(user=make_user("staff")).key
    # Hold the product's row: the command waits here while the server is told to stop.
    holder = hold_the_product("LAMP")
    outcome = {}

    def send():
        body = {"orderid": "in-flight", "sku": "LAMP", "qty": 2}
        outcome["status"] = post(base, "/api/allocate", body, token).status

    sender = threading.Thread(target=send)
    try:
        sender.start()
        wait_until(a_command_waits_for_the_product, what="the command to wait for the product")
        server.terminate()
        # granian's main process closes its listening socket when it starts to stop.
        wait_until(lambda: not _listens(server.pid), what="the server to begin stopping")
    finally:
        holder.rollback()
        holder.close()
        sender.join(timeout=30)
        stop(server, timeout=30)

    assert outcome == {"status": 202}
    assert Order.objects.filter(reference="in-flight").count() == 1
    assert server.returncode == 0
