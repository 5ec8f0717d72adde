"""Read replicas as the project sees them: real hot standbys of the test server, aliases
``replica_1`` and ``replica_2`` that read what the primary committed once they have
replayed it, never take a migration, and pass ``check_read_models``."""

from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import OperationalError, router
from django.test.utils import get_unique_databases_and_mirrors

from orders_read.models import OrderSummary
from orders_write import commands, services
from orders_write.models import Product
from tests.factories import add_batch, place
from tests.replication import primary_lsn, wait_until_replayed

# "__all__": every database, the replicas too (registered for the module, ``replicas``).
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def create_product(sku: str) -> None:
    services.create_product(commands.CreateProduct(sku=sku, name=sku.title()))


def on(alias: str, sku: str) -> bool:
    return Product.objects.using(alias).filter(sku=sku).exists()


def test_a_write_on_the_primary_is_read_on_each_replica_once_replayed(replicas):
    create_product("LAMP")
    for standby in replicas:
        wait_until_replayed(standby)
        assert on(standby.alias, "LAMP")
        assert standby.fetch("SELECT pg_is_in_recovery()") == (True,)


def test_paused_replay_holds_a_write_back_until_resumed(replicas):
    replica_1, replica_2 = replicas
    replica_1.pause_replay()
    create_product("CHAIR")
    wait_until_replayed(replica_2)

    assert on("default", "CHAIR") and on("replica_2", "CHAIR")
    assert not on("replica_1", "CHAIR")
    assert not replica_1.replayed(primary_lsn())

    replica_1.resume_replay()
    wait_until_replayed(replica_1)
    assert on("replica_1", "CHAIR")


def test_a_stopped_replica_refuses_connections_then_catches_up_when_started(replicas):
    replica_1, _ = replicas
    replica_1.stop()
    create_product("TABLE")
    with pytest.raises(OperationalError):
        on("replica_1", "TABLE")

    replica_1.start()
    wait_until_replayed(replica_1)
    assert on("replica_1", "TABLE")


def test_nothing_migrates_on_a_replica_nor_writes_to_it(replicas):
    for model in apps.get_models():
        assert router.allow_migrate_model("default", model)
        assert not router.allow_migrate_model("replica_1", model)
        assert router.db_for_write(model) == "default"
    out = StringIO()
    call_command("migrate", database="replica_1", stdout=out)
    assert "No migrations to apply" in out.getvalue()


def test_the_test_runner_makes_no_database_on_a_replica(replicas):
    test_databases, mirrors = get_unique_databases_and_mirrors()
    assert mirrors == {"replica_1": "default", "replica_2": "default"}
    assert [alias for _, (_, aliases) in test_databases.items() for alias in aliases] == ["default"]


def test_check_read_models_passes_on_a_replica_even_while_it_lags(replicas):
    replica_1, _ = replicas
    add_batch("B-1", "LAMP", 10)
    place("O-1", ("LAMP", 3))
    wait_until_replayed(replica_1)
    replica_1.pause_replay()
    place("O-2", ("LAMP", 1))

    out = StringIO()
    call_command("check_read_models", database="replica_1", stdout=out)

    assert out.getvalue().count(": ok") == len(out.getvalue().splitlines())
    # It checked the replica: the order placed since the pause is not there yet.
    references = set(OrderSummary.objects.using("replica_1").values_list("reference", flat=True))
    assert references == {"O-1"}
