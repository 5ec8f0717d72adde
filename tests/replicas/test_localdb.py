"""The private server's standbys as a developer meets them, in subprocesses against a
throwaway private server (QUARTERMASTER_PGDATA): REPLICAS=N starts them once and reuses
them, `make stop-db` (``python -m config.localdb stop``) stops them with the server, a
stopped standby resumes, one whose slot is gone is rebuilt, and one no longer asked for
is removed with its slot."""

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.processes import PROJECT

# Each alias: whether its server is in recovery (a standby), and its database.
SHOW = (
    "from django.db import connections\n"
    "for alias in connections:\n"
    "    with connections[alias].cursor() as cursor:\n"
    "        cursor.execute('SELECT pg_is_in_recovery(), current_database()')\n"
    "        print(alias, *cursor.fetchone())\n"
)
SLOTS = (
    "from config import localdb\n"
    "import psycopg2\n"
    "connection = psycopg2.connect(\n"
    "    host=str(localdb.socket_dir()), user='postgres', dbname='postgres'\n"
    ")\n"
    "connection.autocommit = True\n"
    "cursor = connection.cursor()\n"
    "for statement in {statements!r}:\n"
    "    cursor.execute(statement)\n"
    "cursor.execute('SELECT slot_name FROM pg_replication_slots ORDER BY 1')\n"
    "print(*(slot for (slot,) in cursor.fetchall()))\n"
)


@pytest.fixture
def private(tmp_path):
    """Run things against a private server of their own in ``tmp_path``; stopped after."""

    def run(*args: str, replicas: int | None = None) -> str:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "DATABASE_REPLICA_URLS", "REPLICAS"}
        }
        env.update(QUARTERMASTER_PGDATA=str(tmp_path / ".pgdata"), DEBUG="true")
        if replicas is not None:
            env["REPLICAS"] = str(replicas)
        done = subprocess.run(
            [sys.executable, *args],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run.data = tmp_path / ".pgdata"
    yield run
    run("-m", "config.localdb", "stop")


def replica(private, number: int) -> Path:
    return private.data.with_name(f".pgdata-replica-{number}")


def server_pid(data_dir: Path) -> int | None:
    """The pid of the server running on ``data_dir``, or None."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) else None


def shell(private, script: str, replicas: int) -> list[str]:
    return private("manage.py", "shell", "-v", "0", "-c", script, replicas=replicas).splitlines()


def slots(private, *statements: str) -> list[str]:
    return private("-c", SLOTS.format(statements=statements)).split()


def test_replicas_start_once_with_the_private_server_and_stop_db_stops_them(private):
    servers = [private.data, replica(private, 1), replica(private, 2)]

    assert shell(private, SHOW, replicas=2) == [
        "default False quartermaster",
        "replica_1 True quartermaster",
        "replica_2 True quartermaster",
    ]
    pids = [server_pid(server) for server in servers]
    assert all(pids)
    shell(private, SHOW, replicas=2)
    assert [server_pid(server) for server in servers] == pids

    stopped = private("-m", "config.localdb", "stop").splitlines()

    assert stopped == ["stopped replica 1", "stopped replica 2", "stopped"]
    assert [server_pid(server) for server in servers] == [None, None, None]


def test_a_stopped_standby_resumes_one_without_its_slot_is_rebuilt_extras_removed(private):
    shell(private, SHOW, replicas=2)
    kept = replica(private, 1) / "kept"
    kept.touch()
    private("-m", "config.localdb", "stop")

    # Fewer asked for: the first resumes as it was, the second goes, slot and all.
    assert shell(private, SHOW, replicas=1)[1:] == ["replica_1 True quartermaster"]
    assert kept.exists()
    assert not replica(private, 2).exists()
    assert slots(private) == ["replica_1"]

    private("-m", "config.localdb", "stop")
    assert slots(private, "SELECT pg_drop_replication_slot('replica_1')") == []

    # Its slot gone, the WAL it needed may be too: it is copied afresh.
    assert shell(private, SHOW, replicas=1)[1:] == ["replica_1 True quartermaster"]
    assert not kept.exists()
    assert slots(private) == ["replica_1"]
