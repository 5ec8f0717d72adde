"""`make run`'s supervisor restarts the read side's watcher when it dies, while the API
takes writes in async mode: token reads are fresh again after a short gap, and the read
models match the write tables without restarting the application."""

import os
import signal

import pytest
from rest_framework.authtoken.models import Token

from orders_read import queries, verification
from tests.factories import add_batch, make_user
from tests.processes import (
    answers,
    environment,
    free_port,
    post,
    start_supervisord,
    stop,
    terminate_watcher_connections,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def application(staff_groups, tmp_path):
    """What `make run` serves: supervisord running granian and the watcher."""
    port = free_port()
    process = start_supervisord(
        environment(
            READ_MODEL_REFRESH="async",
            READ_MODEL_MAX_WAIT="20",
            PORT=str(port),
            WEB_CONCURRENCY="1",
        ),
        tmp_path,
    )
    log = tmp_path / "supervisord.log"
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(base + "/api/schema/"), timeout=60, what="the server to serve")
        wait_until(lambda: _running_watcher() is not None, timeout=60, what="a watcher")
        yield base, log
    finally:
        stop(process)


def _running_watcher() -> int | None:
    """The process id of the one running watcher, if there is one."""
    running = [each["pid"] for each in queries.watchers() if each["running"]]
    return running[0] if len(running) == 1 else None


def allocate(base: str, token: str, orderid: str) -> tuple[int, str]:
    """POST /api/allocate; its status and consistency token (the connection closed)."""
    body = {"orderid": orderid, "sku": "LAMP", "qty": 1}
    with post(base, "/api/allocate", body, token) as answer:
        return answer.status, answer.headers["X-Consistency-Token"]


def test_a_killed_watcher_is_restarted_and_catches_up(application):
    base, log = application
    add_batch("lamps", "LAMP", 1000)
    token = Token.objects.create(user=make_user("staff")).key
    first = _running_watcher()

    os.kill(first, signal.SIGKILL)
    # Writes go on while no watcher runs.
    answers = [allocate(base, token, f"o{number}") for number in range(10)]
    wait_until(lambda: _running_watcher() not in (None, first), timeout=30, what="a new watcher")
    terminate_watcher_connections()  # and the new one loses its connection too
    answers += [allocate(base, token, f"p{number}") for number in range(10)]

    assert {status for status, _ in answers} == {202}
    assert queries.freshness("read_models", answers[-1][1]).stale is False
    assert len(queries.allocations_for("o0")) == len(queries.allocations_for("p9")) == 1
    assert all(check.ok for check in verification.check_all())
    assert "exited: watcher (terminated by SIGKILL; not expected)" in log.read_text()
