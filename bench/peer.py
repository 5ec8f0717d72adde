"""The benchmark's peer: Cosmic Python's ch.12 Flask app (`cosmicpython/code`, branch
`chapter_12_cqrs`), measured by `make bench` beside Quartermaster, on the same machine
and the same PostgreSQL server, when COSMIC_PEER names a checkout of that branch.

Its code never enters this repository: it gets a virtualenv of its own in the checkout
(``<checkout>/.venv``, which its .gitignore already ignores), and is only run. Its
config hard-codes where PostgreSQL and Redis listen (TCP 5432 or 54321, 6379 or
63791); rather than reconfigure the bench's private server, ``app()`` is a launcher
that points that config at PEER_DATABASE_URL (the bench's server, through its unix
socket, as Quartermaster reaches it) and at a private redis-server (PEER_REDIS_PORT),
then imports the peer's app unchanged. Redis is only where it publishes its
``Allocated`` events; without one it would still answer, but log a failure each time.

``python -m bench.peer build`` makes (or checks) the virtualenv by hand.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path

from bench.harness import PROJECT, Client, fresh_database_url
from tests.processes import free_port, stop, wait_until_serving
from tests.waiting import wait_until

PINS = (
    "sqlalchemy==1.3.24",
    "flask==2.2.5",
    "werkzeug==2.2.3",
    "psycopg2-binary",
    "redis",
    "gunicorn",
)
DATABASE = "quartermaster_bench_peer"
WORKERS = 2
APP = "allocation/entrypoints/flask_app.py"  # what makes a directory a checkout of the peer
WARM_UP_REQUESTS = 20  # of each kind, before wrk: our server is warm by its turn too

# The peer's tables from ours, column for column: every allocated line with its order's
# reference (the peer keeps a line only once it is allocated), and the read model it
# keeps in step itself. Cancelled orders hold no allocation, so none comes across.
COPIES = (
    ("products (sku, version_number)", "SELECT sku, version FROM orders_write_product"),
    (
        "batches (id, reference, sku, _purchased_quantity, eta)",
        "SELECT id, reference, sku, purchased_quantity, eta FROM orders_write_batch",
    ),
    (
        "order_lines (id, sku, qty, orderid)",
        "SELECT line.id, line.sku, line.quantity, orders.reference"
        " FROM orders_write_allocation allocation"
        " JOIN orders_write_orderline line ON line.id = allocation.line_id"
        " JOIN orders_write_order orders ON orders.id = line.order_id",
    ),
    (
        "allocations (id, orderline_id, batch_id)",
        "SELECT id, line_id, batch_id FROM orders_write_allocation",
    ),
    (
        "allocations_view (orderid, sku, batchref)",
        "SELECT orders.reference, line.sku, batch.reference"
        " FROM orders_write_allocation allocation"
        " JOIN orders_write_orderline line ON line.id = allocation.line_id"
        " JOIN orders_write_order orders ON orders.id = line.order_id"
        " JOIN orders_write_batch batch ON batch.id = allocation.batch_id",
    ),
)
SERIAL_TABLES = ("batches", "order_lines", "allocations")


def checkout(environ: Mapping[str, str]) -> Path | None:
    """The peer's checkout that COSMIC_PEER names, or None when it is unset."""
    named = environ.get("COSMIC_PEER", "").strip()
    if not named:
        return None
    path = Path(named).expanduser().resolve()
    if not (path / "src" / APP).is_file():
        raise SystemExit(
            f"COSMIC_PEER={named}: no src/{APP} there; it should name a checkout of"
            " cosmicpython/code, branch chapter_12_cqrs"
        )
    return path


def virtualenv(peer: Path) -> Path:
    return peer / ".venv"


def build(peer: Path) -> Path:
    """The peer's virtualenv with the pinned packages and its ``src`` installed
    editable; made once, then reused while the pins stay the same. Its python."""
    venv = virtualenv(peer)
    python = venv / "bin" / "python"
    stamp = venv / "quartermaster-bench-pins.txt"
    wanted = "\n".join([*PINS, f"-e {peer / 'src'}"]) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *PINS], check=True)
    subprocess.run([*pip, "--editable", str(peer / "src")], check=True)
    stamp.write_text(wanted)
    return python


def prepare(environ: Mapping[str, str]) -> None:
    """Before the bench seeds anything: with COSMIC_PEER, the peer's virtualenv built
    and redis-server at hand, so that a missing piece fails the run at once."""
    peer = checkout(environ)
    if peer is not None:
        build(peer)
        redis_server()


def redis_server() -> str:
    """Debian's redis-server, installed with apt when missing and root (as `make bench`
    does for wrk)."""
    found = shutil.which("redis-server")
    if found is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "redis-server"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = shutil.which("redis-server")
    if found is None:
        raise SystemExit("the peer needs Debian's redis-server: sudo apt-get install redis-server")
    return found


def start_redis(port: int) -> subprocess.Popen:
    """A private redis-server on 127.0.0.1:``port``, keeping nothing on disk."""
    server = subprocess.Popen(
        [
            redis_server(),
            *("--port", str(port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def listening() -> bool:
        if server.poll() is not None:
            raise RuntimeError(f"redis-server exited with status {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    try:
        wait_until(listening, timeout=30, what="redis-server to listen")
    except BaseException:
        stop(server)
        raise
    return server


def app():
    """gunicorn's factory (``bench.peer:app()``), run in the peer's virtualenv: its
    config pointed at our PostgreSQL and Redis, then its Flask app as it is."""
    from allocation import config

    config.get_postgres_uri = lambda: os.environ["PEER_DATABASE_URL"]
    config.get_redis_host_and_port = lambda: {
        "host": "127.0.0.1",
        "port": int(os.environ["PEER_REDIS_PORT"]),
    }
    from allocation.entrypoints.flask_app import app as flask_app

    return flask_app


def create_tables(url: str) -> None:
    """The peer's tables by its own metadata (it never creates them itself); run in its
    virtualenv."""
    from allocation.adapters import orm
    from sqlalchemy import create_engine

    engine = create_engine(url)
    orm.metadata.create_all(engine)
    engine.dispose()


def seed(source_url: str, peer_url: str) -> dict[str, int]:
    """Copy our bench database's products, batches and allocated lines into the peer's
    tables (COPY through a spooled file), so that it holds the same stock and
    allocations; the rows copied per table."""
    import psycopg2

    copied = {}
    source, target = psycopg2.connect(source_url), psycopg2.connect(peer_url)
    try:
        with source, target, source.cursor() as reading, target.cursor() as writing:
            for table, select in COPIES:
                with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as rows:
                    reading.copy_expert(f"COPY ({select}) TO STDOUT", rows)
                    rows.seek(0)
                    writing.copy_expert(f"COPY {table} FROM STDIN", rows)
                    copied[table.split()[0]] = writing.rowcount
            for table in SERIAL_TABLES:
                writing.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" coalesce(max(id), 0) + 1, false) FROM {table}"
                )
        target.autocommit = True
        with target.cursor() as writing:
            writing.execute("ANALYZE")
    finally:
        source.close()
        target.close()
    return copied


def drop_database(url: str, name: str) -> None:
    import psycopg2

    admin = psycopg2.connect(url, dbname="postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def start_peer(peer: Path, port: int, environment: dict) -> subprocess.Popen:
    """gunicorn, ``WORKERS`` sync workers as the peer's README runs it, from its
    ``src/``, serving its app through ``app()``; its log in ``<venv>/gunicorn.log``."""
    log = (virtualenv(peer) / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [
            str(virtualenv(peer) / "bin" / "gunicorn"),
            *("--workers", str(WORKERS), "--pythonpath", str(PROJECT)),
            *("--bind", f"127.0.0.1:{port}", "bench.peer:app()"),
        ],
        cwd=peer / "src",
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        wait_until_serving(server, f"http://127.0.0.1:{port}/allocations/none")
    except BaseException:
        stop(server)
        raise
    return server


def measure(
    orders: int,
    source_url: str,
    *,
    run_wrk: Callable[[str, str, str | None, dict], dict[str, float]],
    say: Callable[[str], None],
    environ: Mapping[str, str] = os.environ,
) -> dict | None:
    """The peer's figures on a copy of the bench database ``source_url`` (``orders``
    seeded orders): GET /allocations/<orderid> and POST /allocate of new orders, each
    with wrk at the bench's concurrency. None without COSMIC_PEER; ``{"error": ...}``
    when the peer could not be measured (the bench keeps its own figures)."""
    peer = checkout(environ)
    if peer is None:
        return None
    started = time.monotonic()
    try:
        python = build(peer)
        say(f"[peer] copy the {orders} orders' database and serve Cosmic Python's app")
        url = fresh_database_url(DATABASE)
        environment = {**environ, "PEER_DATABASE_URL": url}
        subprocess.run(
            [str(python), "-m", "bench.peer", "tables"], cwd=PROJECT, env=environment, check=True
        )
        result: dict = {"seeded": seed(source_url, url)}
        skus = ",".join(sorted(skus_of(url)))
        # Our wrk scripts, without "/api" and without a token (the peer has no accounts).
        wrk_environment = {
            **environ,
            "BENCH_ORDERS": str(orders),
            "BENCH_SKUS": skus,
            "BENCH_PREFIX": "",
            "BENCH_TOKEN": "",
        }
        with ExitStack() as running:
            redis_port = free_port()
            running.callback(stop, start_redis(redis_port))
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            server = start_peer(peer, port, {**environment, "PEER_REDIS_PORT": str(redis_port)})
            running.callback(stop, server)
            warm_up(base, skus.split(","))
            say("[peer] GET /allocations/<orderid> and POST /allocate with wrk")
            result["allocations_lookup"] = run_wrk(
                base, "/allocations/DEMO-0000001", "wrk_allocations.lua", wrk_environment
            )
            result["allocate_throughput"] = run_wrk(
                base, "/allocate", "wrk_allocate.lua", wrk_environment
            )
        drop_database(url, DATABASE)
    except Exception as error:  # reported in the table, not fatal
        say(f"[peer] failed: {error}")
        return {"error": str(error), "duration_seconds": time.monotonic() - started}
    result["duration_seconds"] = time.monotonic() - started
    return result


def skus_of(url: str) -> list[str]:
    """The SKUs in the peer's database."""
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT sku FROM products")
            return [sku for (sku,) in cursor.fetchall()]
    finally:
        connection.close()


def warm_up(base: str, skus: list[str]) -> None:
    """A few lookups and allocates, one after another, so that each worker has its
    connection pool and SQLAlchemy's caches filled before wrk starts."""
    client = Client(base, token="")
    for number in range(WARM_UP_REQUESTS):
        client.call("GET", f"/allocations/DEMO-{number + 1:07d}")
        body = {"orderid": f"peer-warm-up-{number}", "sku": skus[number % len(skus)], "qty": 1}
        client.call("POST", "/allocate", body)


if __name__ == "__main__":
    if sys.argv[1:] == ["tables"]:
        create_tables(os.environ["PEER_DATABASE_URL"])
    elif sys.argv[1:] == ["build"]:
        found = checkout(os.environ)
        if found is None:
            raise SystemExit("COSMIC_PEER names no checkout")
        print(build(found))
    else:
        raise SystemExit("usage: python -m bench.peer build | tables")
