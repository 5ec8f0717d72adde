"""The database restarting between a command and its refresh, on a PostgreSQL server
of the test's own (pgserver), with the watcher running throughout."""

import os
import subprocess
import threading
import warnings
from urllib.parse import quote

import psycopg2
import pytest

from orders_read.read_models import READ_MODELS
from tests import processes
from tests.waiting import wait_until

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pgserver
    from pgserver._commands import pg_ctl


@pytest.fixture
def own_server(tmp_path):
    server = pgserver.get_server(tmp_path / "pgdata", cleanup_mode="delete")
    socket_dir = str(server.get_postmaster_info().socket_dir)
    admin = psycopg2.connect(host=socket_dir, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("CREATE DATABASE restart_test")
    admin.close()
    yield server, socket_dir
    server.cleanup()


def restart(server) -> None:
    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=user, timeout=60)


def test_no_committed_write_is_lost_and_the_watcher_repairs_after_a_restart(own_server):
    server, socket_dir = own_server
    environment = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@/restart_test?host={quote(socket_dir)}",
        "READ_MODEL_REFRESH": "async",
        "READ_MODEL_MAX_WAIT": "30",
    }
    environment.pop("TEST_DB_SUFFIX", None)

    def manage(*args: str) -> str:
        return processes.manage(environment, *args, timeout=180)

    manage("migrate", "--noinput", "-v0")
    manage("refresh_views")
    watcher = processes.start_watcher(environment, interval=1, stdout=subprocess.PIPE)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(watcher.stdout), daemon=True).start()
    try:
        wait_until(lambda: any(line.startswith("watching") for line in lines), timeout=60)
        # Keep the watcher from refreshing allocations_view until the restart.
        blocker = psycopg2.connect(host=socket_dir, user="postgres", dbname="restart_test")
        with blocker.cursor() as cursor:
            cursor.execute(
                f"LOCK TABLE {READ_MODELS['allocations_view'].delta} IN ACCESS EXCLUSIVE MODE"
            )
        token = manage(
            "shell",
            "-c",
            "from orders_write import commands, services\n"
            "services.create_batch(commands.CreateBatch('lamps', 'LAMP', 10))\n"
            "result = services.allocate(commands.Allocate('o1', 'LAMP', 2))\n"
            "print(result.consistency_token)",
        ).split()[-1]

        restart(server)  # the blocker, the watcher's connection: all gone
        blocker.close()

        answer = manage(
            "shell",
            "-c",
            "from orders_read import queries\n"
            f"print(queries.freshness('allocations_for', '{token}').stale,"
            " queries.allocations_for('o1'))",
        )
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)

    # The last line: `shell` may first say what it imported.
    assert answer.strip().splitlines()[-1] == "False [{'sku': 'LAMP', 'batchref': 'lamps'}]"
    assert any("database unavailable" in line for line in lines), lines
    manage("check_read_models")  # raises CalledProcessError on any difference
