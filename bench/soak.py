"""`make soak`: a mixed load against gunicorn with the read side's watcher, then checks.

For SOAK_SECONDS (default 60) SOAK_CLIENTS threads (default 8) allocate, place and
submit orders, and read back with the consistency tokens they got, against gunicorn
(2 workers, READ_MODEL_REFRESH=async) and `refresh_views --watch`, on a database of its
own. Then it checks: zero 5xx, zero oversold units, every view equal to its query on
the write tables. It prints requests/s and the count of each status, and exits
non-zero when a check fails.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import quote

PROJECT = Path(__file__).resolve().parents[1]
SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "8"))
DATABASE = "quartermaster_soak"


def soak_database_url() -> str:
    """The soak's own database, next to the one `make run` uses; made afresh."""
    import psycopg2

    sys.path.insert(0, str(PROJECT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection

    params = connection.get_connection_params()
    admin = psycopg2.connect(**{**params, "dbname": "postgres"})
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{DATABASE}"')
    admin.close()
    credentials = quote(params.get("user") or "")
    if params.get("password"):
        credentials += ":" + quote(params["password"])
    host = params.get("host") or "127.0.0.1"
    if host.startswith("/"):
        return f"postgres://{credentials}@/{DATABASE}?host={quote(host)}"
    return f"postgres://{credentials}@{host}:{params.get('port') or 5432}/{DATABASE}"


def manage(environment: dict, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Client:
    def __init__(self, base: str, token: str):
        self.base = base
        self.token = token
        self.statuses: Counter[int] = Counter()
        self.stale = 0
        self.last_token: str | None = None

    def call(self, method: str, path: str, body: dict | None = None, *, consistency=None):
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        if consistency:
            headers["X-Consistency-Token"] = consistency
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, answer_headers = response.status, response.headers
                response.read()
        except urllib.error.HTTPError as error:
            status, answer_headers = error.code, error.headers
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            status, answer_headers = 0, {}
        self.statuses[status] += 1
        if answer_headers.get("X-Read-Model-Stale") == "true":
            self.stale += 1
        return status, answer_headers


def run_client(client: Client, skus: list[str], deadline: float, number: int) -> None:
    rng = random.Random(number)
    sequence = 0
    while time.monotonic() < deadline:
        sequence += 1
        orderid = f"soak-{number}-{sequence}"
        choice = rng.random()
        if choice < 0.4:
            status, headers = client.call(
                "POST",
                "/api/allocate",
                {"orderid": orderid, "sku": rng.choice(skus), "qty": rng.randint(1, 3)},
            )
            if status == 202:
                client.call(
                    "GET",
                    f"/api/allocations/{orderid}",
                    consistency=headers.get("X-Consistency-Token"),
                )
        elif choice < 0.6:
            lines = [{"sku": sku, "qty": rng.randint(1, 3)} for sku in rng.sample(skus, 2)]
            body = {"reference": orderid, "customer": "Soak", "shipping_address": "Here"}
            status, _ = client.call("POST", "/api/orders", {**body, "lines": lines})
            if status == 201:
                status, headers = client.call("POST", f"/api/orders/{orderid}/submit")
                client.call(
                    "GET", f"/api/orders/{orderid}", consistency=headers.get("X-Consistency-Token")
                )
        elif choice < 0.7:
            client.call("POST", f"/api/orders/soak-{number}-{rng.randint(1, sequence)}/cancel")
        elif choice < 0.85:
            client.call("GET", "/api/orders?ordering=-created_at")
        else:
            client.call("GET", f"/api/products/{rng.choice(skus)}")


def main() -> int:
    url = soak_database_url()
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "READ_MODEL_REFRESH": "async",
        "READ_MODEL_MAX_WAIT": "5",
        "FAILED_LOGIN_RATE": "1000/min",
    }
    manage(environment, "migrate", "--noinput", "-v0")
    manage(environment, "seed_demo", "--orders", "500", "-v0")
    token = manage(
        environment,
        "shell",
        "-c",
        "from django.contrib.auth.models import User, Group;"
        "from rest_framework.authtoken.models import Token;"
        "user = User.objects.create_user('soak', password='soak-password-not-used');"
        "user.groups.set(Group.objects.all());"
        "print(Token.objects.create(user=user).key)",
    ).split()[-1]
    skus = manage(
        environment,
        "shell",
        "-c",
        "from orders_write.models import Product;"
        "print(' '.join(Product.objects.values_list('sku', flat=True)))",
    ).split()
    port = free_port()
    watcher = subprocess.Popen(
        [sys.executable, "manage.py", "refresh_views", "--watch", "--interval", "5"],
        cwd=PROJECT,
        env=environment,
        stdout=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        cwd=PROJECT,
        env=environment,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/api/schema/", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        clients = [Client(base, token) for _ in range(CLIENTS)]
        started = time.monotonic()
        deadline = started + SECONDS
        threads = [
            threading.Thread(target=run_client, args=(client, skus, deadline, number))
            for number, client in enumerate(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    statuses = sum((client.statuses for client in clients), Counter())
    stale = sum(client.stale for client in clients)
    # Let the watcher catch up, then check the views against the write tables.
    caught_up = manage(
        environment,
        "shell",
        "-c",
        "import time; from orders_read import refresh\n"
        "deadline = time.monotonic() + 120\n"
        "while refresh.units_behind() and time.monotonic() < deadline: time.sleep(0.5)\n"
        "print(not refresh.units_behind())",
    ).split()[-1]
    watcher.send_signal(signal.SIGTERM)
    watcher.wait(timeout=60)
    oversold = manage(
        environment,
        "shell",
        "-c",
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SELECT coalesce(sum(greatest(allocated - purchased, 0)), 0)"
        " FROM batch_stock')\n"
        "    print(cursor.fetchone()[0])",
    ).split()[-1]
    check = subprocess.run(
        [sys.executable, "manage.py", "check_read_models"],
        cwd=PROJECT,
        env=environment,
        capture_output=True,
        text=True,
    )
    requests = sum(statuses.values())
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    failures = statuses.get(0, 0)
    print(f"soak: {CLIENTS} clients for {elapsed:.0f} s against gunicorn (2 workers) + watcher")
    print(f"requests: {requests} ({requests / elapsed:.0f}/s)")
    print(
        "statuses: " + ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
    )
    print(f"5xx: {server_errors}; connection failures: {failures}; stale answers: {stale}")
    print(f"oversold units: {oversold}")
    verdict = "clean" if check.returncode == 0 else "DIFFERENCES"
    print(f"watcher caught up: {caught_up}; check_read_models: {verdict}")
    if check.returncode:
        print(check.stdout[-3000:])
    ok = server_errors == 0 and failures == 0 and oversold == "0" and check.returncode == 0
    print("soak: PASSED" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
