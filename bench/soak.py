"""`make soak`: a mixed load against granian with the read side's watcher, then checks.

For SOAK_SECONDS (default 60) SOAK_CLIENTS threads (default 8) allocate, place and
submit orders, and read back with the consistency tokens they got, against granian
(2 workers, READ_MODEL_REFRESH=async) and `refresh_views --watch`, on a database of its
own. Then it checks: zero 5xx, zero oversold units, every view equal to its query on
the write tables. It prints requests/s and the count of each status, and exits
non-zero when a check fails.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter

from bench.harness import (
    PROJECT,
    Client,
    create_token_user,
    fresh_database_url,
    shell,
    start_server,
)
from tests.processes import free_port, manage, start_watcher, stop

SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "8"))
DATABASE = "quartermaster_soak"


def run_client(client: Client, skus: list[str], deadline: float, number: int) -> None:
    rng = random.Random(number)
    sequence = 0
    while time.monotonic() < deadline:
        sequence += 1
        orderid = f"soak-{number}-{sequence}"
        choice = rng.random()
        if choice < 0.4:
            status, headers, _ = client.call(
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
            status, _, _ = client.call("POST", "/api/orders", {**body, "lines": lines})
            if status == 201:
                status, headers, _ = client.call("POST", f"/api/orders/{orderid}/submit")
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
    url = fresh_database_url(DATABASE)
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "READ_MODEL_REFRESH": "async",
        "READ_MODEL_MAX_WAIT": "5",
        "FAILED_LOGIN_RATE": "1000/min",
    }
    manage(environment, "migrate", "--noinput", "-v0")
    manage(environment, "seed_demo", "--orders", "500", "-v0")
    token = create_token_user(environment, "soak")
    skus = manage(
        environment,
        "shell",
        "-c",
        "from orders_write.models import Product;"
        "print(' '.join(Product.objects.values_list('sku', flat=True)))",
    ).split()
    port = free_port()
    watcher = start_watcher(environment, interval=5)
    server = start_server(environment, port)
    base = f"http://127.0.0.1:{port}"
    try:
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
        stop(server)
    statuses = sum((client.statuses for client in clients), Counter())
    stale = sum(client.stale for client in clients)
    # Let the watcher catch up, then check the views against the write tables.
    caught_up = shell(
        environment,
        "import time; from orders_read import freshness\n"
        "deadline = time.monotonic() + 120\n"
        "while freshness.units_behind() and time.monotonic() < deadline: time.sleep(0.5)\n"
        "print(not freshness.units_behind())",
    )
    stop(watcher)
    oversold = shell(
        environment,
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SELECT coalesce(sum(greatest(allocated - purchased, 0)), 0) FROM ("
        " SELECT batch.purchased_quantity AS purchased,"
        " coalesce(sum(line.quantity), 0) AS allocated FROM orders_write_batch batch"
        " LEFT JOIN orders_write_allocation allocation ON allocation.batch_id = batch.id"
        " LEFT JOIN orders_write_orderline line ON line.id = allocation.line_id"
        " GROUP BY batch.id) stock')\n"
        "    print(cursor.fetchone()[0])",
    )
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
    print(f"soak: {CLIENTS} clients for {elapsed:.0f} s against granian (2 workers) + watcher")
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
