"""Queries answered on real hot standbys (``replicas`` fixture): where each request
reads, read-your-writes through a replica that lags, is paused or is gone, and what the
read-models page and API say of each replica."""

import threading

import pytest
from django.db import connections
from django.test.utils import override_settings

from orders_read import rebuilds
from orders_read import replicas as routing
from tests import replication
from tests.factories import add_batch, browser_for, client_for

# "__all__": every database, the replicas too (registered for the module, ``replicas``).
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture
def viewer(staff_groups):
    return client_for("viewer")


@pytest.fixture
def clerk(staff_groups):
    return client_for("clerk")


@pytest.fixture
def health_kept(monkeypatch):
    """The replicas' health as first checked stays this process's view for the test: a
    replica paused or stopped afterwards is still chosen, as it would be for up to a
    second in production."""
    monkeypatch.setattr(routing, "HEALTH_INTERVAL", 3600.0)
    routing.replica_states(fresh=True)


def allocate(clerk, orderid: str, sku: str = "LAMP", qty: int = 1):
    response = clerk.post(
        "/api/allocate", {"orderid": orderid, "sku": sku, "qty": qty}, format="json"
    )
    assert response.status_code == 202, response.content
    return response["X-Consistency-Token"]


def allocated_on_every_replica(replicas, clerk) -> None:
    """Order o1 holds LAMP on batch depot, every replica has replayed it, and routing
    has seen them healthy since."""
    add_batch("depot", "LAMP", 10)
    allocate(clerk, "o1")
    for standby in replicas:
        replication.wait_until_replayed(standby)
    routing.replica_states(fresh=True)


def test_queries_are_answered_on_the_replicas_in_turn_and_say_so(replicas, viewer, clerk):
    allocated_on_every_replica(replicas, clerk)

    sources = set()
    for _ in range(4):
        response = viewer.get("/api/allocations/o1")
        assert response.status_code == 200
        assert response.json() == [{"sku": "LAMP", "batchref": "depot"}]
        sources.add(response["X-Read-Model-Source"])
    assert sources == {"replica-1", "replica-2"}


def test_every_query_endpoint_and_read_page_reads_on_a_replica(replicas, viewer, clerk):
    allocated_on_every_replica(replicas, clerk)
    staff = browser_for("staff")

    for client, path in [
        (viewer, "/api/orders"),
        (viewer, "/api/orders/o1"),
        (viewer, "/api/orders/o1/history"),
        (viewer, "/api/products"),
        (viewer, "/api/products/LAMP"),
        (staff, "/orders/"),
        (staff, "/orders/o1/"),
        (staff, "/stock/"),
        (staff, "/dashboard/"),
    ]:
        response = client.get(path)
        assert response.status_code == 200, (path, response.content)
        assert response["X-Read-Model-Source"].startswith("replica-"), path
    # Long streams and the primary's own state stay on the primary.
    assert staff.get("/orders.csv")["X-Read-Model-Source"] == "primary"
    assert staff.get("/read-models/")["X-Read-Model-Source"] == "primary"


def test_a_token_read_on_a_replica_shows_the_write(replicas, viewer, clerk, health_kept):
    add_batch("depot", "LAMP", 10)
    for orderid in ["o1", "o2", "o3", "o4"]:
        token = allocate(clerk, orderid)
        response = viewer.get(f"/api/allocations/{orderid}", HTTP_X_CONSISTENCY_TOKEN=token)
        assert response.status_code == 200
        assert response.json() == [{"sku": "LAMP", "batchref": "depot"}]
        assert "X-Read-Model-Stale" not in response
        assert response["X-Read-Model-Source"].startswith("replica-")


def test_a_token_read_waits_for_its_replica_to_replay_the_write(
    replicas, viewer, clerk, health_kept, caplog
):
    add_batch("depot", "LAMP", 10)
    for standby in replicas:
        standby.pause_replay()
    token = allocate(clerk, "o1")
    answers = []

    def read():
        answers.append(viewer.get("/api/allocations/o1", HTTP_X_CONSISTENCY_TOKEN=token))
        connections.close_all()

    with override_settings(READ_MODEL_REPLICA_CATCH_UP=30.0, READ_MODEL_MAX_WAIT=30.0):
        reader = threading.Thread(target=read)
        reader.start()
        for standby in replicas:
            standby.resume_replay()
        reader.join(timeout=60)

    (response,) = answers
    assert response.status_code == 200
    assert response.json() == [{"sku": "LAMP", "batchref": "depot"}]
    assert "X-Read-Model-Stale" not in response
    assert response["X-Read-Model-Source"].startswith("replica-")
    # It waited on the primary and polled the replica: nothing failed on the way (a
    # LISTEN on a standby would have).
    assert "failed a query" not in caplog.text


def test_a_paused_replica_hands_a_token_read_to_the_primary_never_stale_or_wrong(
    replicas, viewer, clerk, health_kept
):
    add_batch("depot", "LAMP", 10)
    allocate(clerk, "o1", qty=4)
    for standby in replicas:
        replication.wait_until_replayed(standby)
        standby.pause_replay()
    token = allocate(clerk, "o2", qty=3)

    with override_settings(READ_MODEL_REPLICA_CATCH_UP=0.05):
        response = viewer.get("/api/products/LAMP", HTTP_X_CONSISTENCY_TOKEN=token)

    assert response["X-Read-Model-Source"] == "primary"
    assert "X-Read-Model-Stale" not in response
    assert response.json()["allocated"] == 7


def test_a_history_read_with_a_token_waits_for_the_replica_too(
    replicas, viewer, clerk, health_kept
):
    add_batch("depot", "LAMP", 10)
    allocate(clerk, "o1")
    for standby in replicas:
        replication.wait_until_replayed(standby)
        standby.pause_replay()
    response = clerk.post("/api/orders/o1/lines/LAMP", {"qty": 2}, format="json")
    assert response.status_code == 202, response.content
    token = response["X-Consistency-Token"]

    with override_settings(READ_MODEL_REPLICA_CATCH_UP=0.05):
        response = viewer.get("/api/orders/o1/history", HTTP_X_CONSISTENCY_TOKEN=token)

    assert response.status_code == 200
    assert response["X-Read-Model-Source"] == "primary"
    assert "quantity changed to 2" in response.content.decode()


def test_a_stopped_replica_is_skipped_and_queries_keep_answering(
    replicas, viewer, clerk, health_kept, caplog
):
    add_batch("depot", "LAMP", 10)
    allocate(clerk, "o1")
    replicas[0].stop()

    for _ in range(4):
        response = viewer.get("/api/allocations/o1")
        assert response.status_code == 200
        assert response.json() == [{"sku": "LAMP", "batchref": "depot"}]
        assert response["X-Read-Model-Source"] in {"primary", "replica-2"}
    assert "Replica replica_1 failed a query" in caplog.text

    (state,) = [
        replica
        for replica in viewer.get("/api/read-models/").json()[0]["replicas"]
        if replica["name"] == "replica-1"
    ]
    assert state["healthy"] is False


def test_a_paused_replica_is_shown_unhealthy_with_its_lag(replicas, viewer, clerk, staff_groups):
    add_batch("depot", "LAMP", 10)
    replicas[1].pause_replay()
    allocate(clerk, "o1")

    states = viewer.get("/api/read-models/").json()
    by_name = {replica["name"]: replica for replica in states[0]["replicas"]}
    assert by_name["replica-1"]["healthy"] is True
    assert by_name["replica-2"]["healthy"] is False
    assert by_name["replica-2"]["lag_bytes"] > 0

    page = browser_for("superuser").get("/read-models/").content.decode()
    assert "Skipped: replay paused" in page

    # Not chosen while paused.
    sources = {viewer.get("/api/products")["X-Read-Model-Source"] for _ in range(4)}
    assert sources == {"replica-1"}


def test_rebuilds_run_concurrently_while_replicas_serve(replicas, viewer):
    """A plain REFRESH would wait for readers of the base (and hold back replay on the
    replicas, cancelling theirs); CONCURRENTLY lets them read on."""
    reader = connections.create_connection("default")
    try:
        reader.set_autocommit(False)
        with reader.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM product_availability_base")
        (outcome, *_) = rebuilds.rebuild(["product_availability"], timeout=2)
    finally:
        reader.rollback()
        reader.close()
    assert outcome.base and not outcome.error, outcome
