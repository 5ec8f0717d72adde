"""The prepared lookups answer as the views do: across a new connection, a rolled-back
transaction, another thread's connection, and a base view rebuilt under them."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from orders_read import queries, rebuilds, refresh
from orders_read.read_models import READ_MODELS
from orders_write import commands, services
from tests.database import run_threads
from tests.factories import add_batch

pytestmark = pytest.mark.django_db(transaction=True)

LAMP = [{"sku": "LAMP", "batchref": "lamps"}]


@pytest.fixture
def allocated():
    add_batch("lamps", "LAMP", 10)
    services.allocate(commands.Allocate(orderid="o1", sku="LAMP", qty=2))


def sent_while(call) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        call()
    return [query["sql"] for query in captured.captured_queries]


def test_a_lookup_is_prepared_once_per_connection(allocated):
    first = sent_while(lambda: queries.allocations_for("o1"))
    second = sent_while(lambda: queries.allocations_for("o1"))

    assert [sql.split(" (")[0] for sql in first] == [
        "PREPARE allocations_for",
        "EXECUTE allocations_for",
    ]
    assert second == ["EXECUTE allocations_for ('o1')"]


def test_a_new_connection_prepares_again(allocated):
    assert queries.allocations_for("o1") == LAMP
    connection.close()  # as after CONN_MAX_AGE, or a database restart

    assert queries.allocations_for("o1") == LAMP
    assert queries.freshness("allocations_for").stale is False


def test_a_statement_prepared_in_a_rolled_back_transaction_still_serves(allocated):
    with pytest.raises(RuntimeError), transaction.atomic():
        assert queries.allocations_for("o1") == LAMP
        raise RuntimeError("roll back")

    assert queries.allocations_for("o1") == LAMP


def test_each_threads_connection_prepares_its_own(allocated):
    queries.allocations_for("o1")  # prepared on this thread's connection only
    answers = []

    for thread in run_threads(lambda: answers.append(queries.allocations_for("o1")), 2):
        thread.join(timeout=30)

    assert answers == [LAMP, LAMP]


def test_a_lookup_prepared_before_a_base_rebuild_reads_the_new_base(allocated):
    assert queries.allocations_for("o1") == LAMP  # prepared, served from the delta
    services.allocate(commands.Allocate(orderid="o2", sku="LAMP", qty=1))

    for unit in READ_MODELS:
        assert rebuilds.rebuild_base(unit).error is None
    refresh.refresh(READ_MODELS)  # the deltas drop what the bases now hold

    assert queries.allocations_for("o1") == LAMP
    assert queries.allocations_for("o2") == LAMP
    assert queries.freshness("allocations_for").stale is False
