"""The project's private PostgreSQL server, used when DATABASE_URL is unset.

pgserver bundles PostgreSQL 16 binaries; its data lives in ``.pgdata/`` inside the
project and the server keeps running between commands, so every ``manage.py`` call,
``make run`` and ``make test`` share it. Nothing outside the project is started or
stopped.

With ``REPLICAS=N`` it also keeps N hot standbys of that server running beside it
(``.pgdata-replica-1/`` …), streaming from it through replication slots ``replica_1`` …;
the functions that build, start and stop a standby serve the tests' throwaway ones too.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("QUARTERMASTER_PGDATA", BASE_DIR / ".pgdata"))
DATABASE_NAME = "quartermaster"
SUPERUSER = "postgres"
# A standby that falls further behind than this (stopped, say) loses its slot's hold
# on the private server's WAL, and is rebuilt when next started, rather than filling
# the disk.
WAL_KEPT_FOR_A_STANDBY = "1GB"
STANDBY_PORT = 5432


with warnings.catch_warnings():
    # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp: fine here.
    warnings.simplefilter("ignore")
    import pgserver
    from pgserver import _commands as commands
    from pgserver.utils import PostmasterInfo, find_suitable_socket_dir


def _system_user() -> str | None:
    """The OS user PostgreSQL runs as: pgserver's own when we are root (PostgreSQL
    refuses to run as root), else ourselves."""
    return "pgserver" if os.geteuid() == 0 else None


def _postmaster(data_dir: Path) -> PostmasterInfo | None:
    """The server running on ``data_dir``, in whatever state, or None."""
    try:
        info = PostmasterInfo.read_from_pgdata(data_dir)
    except (OSError, ValueError, AssertionError):
        return None
    return info if info is not None and info.is_running() else None


def running_socket_dir(data_dir: Path = DATA_DIR) -> Path | None:
    """The socket folder of the server on ``data_dir``, when it is up and ready (a hot
    standby is ready once it accepts queries)."""
    info = _postmaster(data_dir)
    if info is None or info.status != "ready":
        return None
    return info.socket_dir


def socket_dir() -> Path:
    """Start the private server unless it already runs, and return its socket folder."""
    running = running_socket_dir()
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


def stop_server(data_dir: Path) -> bool:
    """Stop the server running on ``data_dir`` (a primary or a standby), if one runs;
    True when one did. Its sessions are ended at once (pg_ctl's fast mode)."""
    if _postmaster(data_dir) is None:
        return False
    commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=_system_user())
    return True


def stop() -> bool:
    """Stop the private server and its standbys; True when the server was running."""
    stop_replicas()
    return stop_server(DATA_DIR)


# --- hot standbys ---------------------------------------------------------------------


def _conninfo(parameters: Mapping[str, object]) -> str:
    """A libpq connection string of ``parameters`` (keywords such as host, port, user)."""

    def quoted(value: object) -> str:
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{key}={quoted(value)}" for key, value in parameters.items() if value)


# What pg_basebackup copies from a pgserver data folder that is the primary's alone: the
# lock of its socket (naming the primary's pid, which would stop the standby starting
# there), pgserver's list of its users, and its log.
_PRIMARY_ONLY_FILES = (".s.PGSQL.*.lock", ".handle_pids.json", "log")


class StandbyError(RuntimeError):
    """A standby could not be built."""


def build_standby(data_dir: Path, *, slot: str, primary: Mapping[str, object]) -> None:
    """Make ``data_dir`` (emptied first) a new hot standby of ``primary`` (libpq keywords:
    host, port, user, password), streaming through the replication slot ``slot``, which
    this creates (none of that name may exist). pgserver's PostgreSQL 16 binaries copy
    it, so the primary must be a PostgreSQL 16 server that accepts replication
    connections from ``primary``'s user."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(mode=0o700, parents=True)
    user = _system_user()
    if user is not None:
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(data_dir)
        shutil.chown(data_dir, user, user)
    password = primary.get("password")
    environment = {**os.environ, **({"PGPASSWORD": str(password)} if password else {})}
    connection = {key: value for key, value in primary.items() if key != "password"}
    # -R writes primary_conninfo and primary_slot_name, -C -S creates the slot, -X stream
    # copies the WAL written meanwhile: the standby starts consistent. No sync of the copy
    # here (seconds on a busy disk): the standby's first start syncs its whole data
    # folder anyway, as after any crash, before it replays.
    copied = subprocess.run(
        [
            *(commands.POSTGRES_BIN_PATH / "pg_basebackup", "-D", data_dir),
            *("-d", _conninfo(connection), "-R", "-C", "-S", slot, "-X", "stream"),
            *("--checkpoint=fast", "--no-manifest", "--no-sync"),
        ],
        user=user,
        env=environment,
        capture_output=True,
        text=True,
    )
    if copied.returncode != 0:
        raise StandbyError(f"pg_basebackup could not copy the server: {copied.stderr.strip()}")
    for pattern in _PRIMARY_ONLY_FILES:
        for path in data_dir.glob(pattern):
            path.unlink()
    with (data_dir / "postgresql.auto.conf").open("a") as configuration:
        # Feedback: the primary's vacuum keeps the rows the standby's queries still read,
        # rather than replay cancelling those queries. The cluster name names the
        # standby in the primary's pg_stat_replication (its application_name).
        configuration.write(f"hot_standby_feedback = on\ncluster_name = '{slot}'\n")


def start_standby(data_dir: Path) -> Path:
    """Start the standby on ``data_dir`` unless it runs; its socket folder once it
    answers queries. It listens on no TCP address."""
    running = running_socket_dir(data_dir)
    if running is not None:
        return running
    user = _system_user()
    socket = find_suitable_socket_dir(data_dir, pgserver.PostgresServer.runtime_path)
    if user is not None and socket != data_dir:
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(socket)
        socket.chmod(0o777)
    # Its own socket folder, no TCP, and the default port whatever the copied
    # configuration says: a standby's address is its folder.
    options = f"-k {socket} -c listen_addresses='' -c port={STANDBY_PORT}"
    commands.pg_ctl(
        ["-w", "-l", str(data_dir / "log"), "-o", options, "start"], pgdata=data_dir, user=user
    )
    return socket


def _system_identifier(data_dir: Path) -> int | None:
    """The identifier of the cluster ``data_dir`` was copied from, or None."""
    try:
        control = commands.pg_controldata([], pgdata=data_dir)
    except subprocess.CalledProcessError:
        return None
    found = re.search(r"^Database system identifier:\s+(\d+)", control, re.MULTILINE)
    return int(found.group(1)) if found else None


def replica_data_dir(number: int) -> Path:
    """The data folder of the private server's standby ``number`` (from 1)."""
    return DATA_DIR.with_name(f"{DATA_DIR.name}-replica-{number}")


def replica_slot(number: int) -> str:
    return f"replica_{number}"


def _replica_numbers() -> list[int]:
    """The numbers of the standbys that have a data folder."""
    numbers = []
    for path in DATA_DIR.parent.glob(f"{DATA_DIR.name}-replica-*"):
        suffix = path.name.rpartition("-")[2]
        if suffix.isdigit() and path.is_dir():
            numbers.append(int(suffix))
    return sorted(numbers)


@contextlib.contextmanager
def _replicas_lock():
    """One process at a time builds, starts, stops or removes the private standbys (the
    web workers and the watcher of `make run` all start at once)."""
    import fasteners

    with fasteners.InterProcessLock(DATA_DIR.with_name(f"{DATA_DIR.name}-replicas.lock")):
        yield


def _prepare_primary(cursor, count: int) -> None:
    """Make sure the private server can feed ``count`` standbys: WAL for replicas, enough
    senders and slots, local replication connections allowed, and a bound on the WAL a
    slot holds."""
    cursor.execute(
        "SELECT current_setting('wal_level'), current_setting('max_wal_senders')::int,"
        " current_setting('max_replication_slots')::int,"
        " current_setting('max_slot_wal_keep_size'), current_setting('hba_file')"
    )
    wal_level, senders, slots, kept, hba_file = cursor.fetchone()
    if wal_level == "minimal" or senders < count or slots < count:
        raise RuntimeError(
            f"The private server in {DATA_DIR} cannot feed {count} standbys (wal_level"
            f" {wal_level}, max_wal_senders {senders}, max_replication_slots {slots}): set"
            " wal_level = replica and both maxima above that in its postgresql.conf and"
            " restart it (`make stop-db`)."
        )
    cursor.execute(
        "SELECT 1 FROM pg_hba_file_rules WHERE type = 'local'"
        " AND 'replication' = ANY(database) AND error IS NULL"
    )
    if cursor.fetchone() is None:
        with Path(hba_file).open("a") as rules:
            rules.write("local   replication     all                                     trust\n")
        cursor.execute("SELECT pg_reload_conf()")
    if kept == "-1":
        cursor.execute(f"ALTER SYSTEM SET max_slot_wal_keep_size = '{WAL_KEPT_FOR_A_STANDBY}'")
        cursor.execute("SELECT pg_reload_conf()")


def _slot_usable(cursor, slot: str) -> bool:
    """Whether the slot exists and still holds the WAL its standby needs."""
    cursor.execute(
        "SELECT wal_status FROM pg_replication_slots"
        " WHERE slot_name = %s AND slot_type = 'physical'",
        [slot],
    )
    row = cursor.fetchone()
    return row is not None and row[0] != "lost"


def _drop_slot(cursor, slot: str) -> None:
    cursor.execute(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
        " WHERE slot_name = %s AND NOT active",
        [slot],
    )


def _ready_socket_dir(data_dir: Path, *, timeout: float = 60) -> Path | None:
    """The socket folder of the server running on ``data_dir`` once it answers queries
    (it may be starting still), or None when none runs."""
    deadline = time.monotonic() + timeout
    while _postmaster(data_dir) is not None:
        socket = running_socket_dir(data_dir)
        if socket is not None:
            return socket
        if time.monotonic() > deadline:
            raise StandbyError(
                f"The server in {data_dir} runs but answers no queries: see its log."
            )
        time.sleep(0.1)
    return None


def _ensure_replica(cursor, number: int, host: Path) -> Path:
    """Standby ``number`` running, resumed where it stopped when it can, else rebuilt."""
    data_dir, slot = replica_data_dir(number), replica_slot(number)
    running = _ready_socket_dir(data_dir)
    if running is not None:
        return running
    cursor.execute("SELECT system_identifier FROM pg_control_system()")
    (primary_identifier,) = cursor.fetchone()
    resumable = (
        (data_dir / "standby.signal").exists()
        and _system_identifier(data_dir) == primary_identifier
        and _slot_usable(cursor, slot)
    )
    if resumable:
        try:
            return start_standby(data_dir)
        except subprocess.CalledProcessError:
            pass  # rebuilt below
    _drop_slot(cursor, slot)
    build_standby(data_dir, slot=slot, primary={"host": host, "user": SUPERUSER})
    return start_standby(data_dir)


def _remove_replica(cursor, number: int) -> None:
    """Forget a stopped standby: its slot would keep WAL and dead rows on the server."""
    _drop_slot(cursor, replica_slot(number))
    shutil.rmtree(replica_data_dir(number))


def replica_socket_dirs(count: int) -> list[Path]:
    """The socket folders of the private server's standbys 1 … ``count``, started (built
    when new, or when they cannot resume: their slot or their server gone) unless they
    run. Standbys beyond ``count`` that run are left running (another process may use
    them); those stopped are removed, so that their slots hold nothing back."""
    sockets = [running_socket_dir(replica_data_dir(n)) for n in range(1, count + 1)]
    stopped_extras = [
        n for n in _replica_numbers() if n > count and _postmaster(replica_data_dir(n)) is None
    ]
    if all(sockets) and not stopped_extras:
        return sockets
    import psycopg2

    with _replicas_lock():
        host = socket_dir()
        connection = psycopg2.connect(host=str(host), user=SUPERUSER, dbname="postgres")
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                if count:
                    _prepare_primary(cursor, count)
                for number in _replica_numbers():
                    if number > count and _postmaster(replica_data_dir(number)) is None:
                        _remove_replica(cursor, number)
                return [_ensure_replica(cursor, n, host) for n in range(1, count + 1)]
        finally:
            connection.close()


def replica_databases(count: int) -> dict[str, dict]:
    """Django's DATABASES entries (``replica_1`` …) for ``count`` standbys of the private
    server, started as ``replica_socket_dirs`` does."""
    from config import replicas

    return {
        replicas.alias(number): replicas.replica_settings(
            {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": DATABASE_NAME,
                "USER": SUPERUSER,
                "HOST": str(socket),
                "PORT": str(STANDBY_PORT),
            }
        )
        for number, socket in enumerate(replica_socket_dirs(count), start=1)
    }


def stop_replicas() -> list[int]:
    """Stop the private server's standbys (keeping them, and their slots, to resume);
    the numbers of those that ran."""
    with _replicas_lock():
        return [n for n in _replica_numbers() if stop_server(replica_data_dir(n))]


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["stop"]:
        for number in stop_replicas():
            print(f"stopped replica {number}")
        print("stopped" if stop() else "not running")
    else:
        print(database_url())
