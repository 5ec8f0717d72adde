"""Hot standbys of the test database's server for the tests of read replicas: built with
pgserver's PostgreSQL 16 (config/localdb.py), registered beside ``default`` as the aliases
``replica_1`` … (test mirrors, reading the test database, which streams with its
cluster), paused and resumed, stopped and started, and waited for.

The test server is usually the private one. When DATABASE_URL names another, the
standbys are copied from it the same way, over its own address and credentials: that
works for a PostgreSQL 16 server that accepts replication connections from the test
user; any other server fails the tests that need replicas with a message saying so
(they are never skipped).
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import psutil
from django.db import DEFAULT_DB_ALIAS, connections

from config import localdb, replicas
from tests.waiting import wait_until

# Slots are named for the test process, so that runs side by side keep theirs and a run
# that died is recognised by its pid.
SLOT_PREFIX = "test_replica_"


@dataclass
class Standby:
    number: int
    data_dir: Path
    slot: str

    @property
    def alias(self) -> str:
        return replicas.alias(self.number)

    def fetch(self, sql: str, params: tuple = ()):
        """The first row of a query run on this standby."""
        with connections[self.alias].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    def replayed(self, lsn: str) -> bool:
        """Whether the standby has replayed the primary's WAL up to ``lsn``."""
        return self.fetch("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0]

    def pause_replay(self) -> None:
        """Stop applying what arrives from the primary (once this returns, nothing more
        is applied until ``resume_replay``)."""
        self.fetch("SELECT pg_wal_replay_pause()")
        wait_until(
            lambda: self.fetch("SELECT pg_get_wal_replay_pause_state()")[0] == "paused",
            what=f"{self.alias} to pause",
        )

    def resume_replay(self) -> None:
        self.fetch("SELECT pg_wal_replay_resume()")

    @property
    def running(self) -> bool:
        return localdb.running_socket_dir(self.data_dir) is not None

    def stop(self) -> None:
        """Stop the standby's server, its sessions ended."""
        connections[self.alias].close()
        localdb.stop_server(self.data_dir)

    def start(self) -> None:
        """Start the standby's server unless it runs; it resumes streaming where it was."""
        localdb.start_standby(self.data_dir)


def primary_lsn() -> str:
    """Where the primary's WAL ends now: every commit made so far lies before it."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        return cursor.fetchone()[0]


def wait_until_replayed(standby: Standby, *, timeout: float = 10) -> None:
    """Return once ``standby`` has applied everything committed on the primary so far."""
    lsn = primary_lsn()
    wait_until(
        lambda: standby.replayed(lsn), timeout=timeout, what=f"{standby.alias} to replay {lsn}"
    )


def _primary_parameters() -> dict[str, object]:
    """libpq keywords for the test server, as the default connection reaches it."""
    parameters = connections[DEFAULT_DB_ALIAS].get_connection_params()
    return {
        key: value
        for key, value in parameters.items()
        if key not in {"dbname", "database", "cursor_factory"} and isinstance(value, str | int)
    }


def _drop_abandoned_slots() -> None:
    """Drop the slots of standbys whose test run died before removing them: they keep
    WAL and dead rows on the server."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT slot_name FROM pg_replication_slots WHERE NOT active AND slot_name LIKE %s",
            [SLOT_PREFIX.replace("_", r"\_") + "%"],
        )
        for (slot,) in cursor.fetchall():
            pid = slot.rpartition("_")[2]
            if pid.isdigit() and not psutil.pid_exists(int(pid)):
                cursor.execute("SELECT pg_drop_replication_slot(%s)", [slot])


def _register(standby: Standby) -> None:
    """Make ``standby.alias`` a database of the test database on the standby's server."""
    default = connections[DEFAULT_DB_ALIAS].settings_dict
    settings = copy.deepcopy(default)
    options = {k: v for k, v in settings["OPTIONS"].items() if k not in {"host", "port"}}
    socket = localdb.running_socket_dir(standby.data_dir)
    settings.update(HOST=str(socket), PORT=str(localdb.STANDBY_PORT), OPTIONS=options)
    connections.settings[standby.alias] = replicas.replica_settings(settings)


def start_standbys(count: int, directory: Path) -> list[Standby]:
    """``count`` hot standbys of the test server in ``directory``, running, registered
    as ``replica_1`` …; RuntimeError, saying why, when the server cannot be copied."""
    version = connections[DEFAULT_DB_ALIAS].pg_version // 10000
    if version != 16:
        raise RuntimeError(
            f"The test server runs PostgreSQL {version}; the replicas' tests copy it with"
            " pgserver's PostgreSQL 16, which needs a PostgreSQL 16 server. Unset"
            " DATABASE_URL (the private server) or point it at a PostgreSQL 16 server."
        )
    _drop_abandoned_slots()
    primary = _primary_parameters()
    standbys = []
    try:
        for number in range(1, count + 1):
            slot = f"{SLOT_PREFIX}{number}_{os.getpid()}"
            standby = Standby(number, directory / f"replica-{number}", slot)
            standbys.append(standby)
            try:
                localdb.build_standby(standby.data_dir, slot=standby.slot, primary=primary)
            except localdb.StandbyError as error:
                raise RuntimeError(
                    f"{error}\nThe replicas' tests copy the test server with pg_basebackup as"
                    f" {primary.get('user')!r}: it must allow that user replication"
                    " connections (pg_hba.conf, REPLICATION role) and have a free"
                    " replication slot and WAL sender."
                ) from None
            standby.start()
    except BaseException:
        remove_standbys(standbys)
        raise
    return standbys


def register(standbys: list[Standby]) -> None:
    """Make the standbys databases of this process, as DATABASE_REPLICA_URLS would."""
    for standby in standbys:
        _register(standby)


def unregister(standbys: list[Standby]) -> None:
    """Forget the standbys as databases: queries read on the primary alone again."""
    for standby in standbys:
        if standby.alias in connections.settings:
            connections[standby.alias].close()
            with contextlib.suppress(AttributeError):  # never opened in this thread
                del connections[standby.alias]
            del connections.settings[standby.alias]


def remove_standbys(standbys: list[Standby]) -> None:
    """Close their connections, stop their servers, drop their slots and their data."""
    unregister(standbys)
    for standby in standbys:
        localdb.stop_server(standby.data_dir)
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE slot_name = %s",
                [standby.slot],
            )
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(standby.data_dir)
