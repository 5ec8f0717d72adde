"""Fixtures shared by every test layer."""

import os

import pytest
from django.apps import apps
from django.conf import settings
from django.db.models.signals import post_migrate
from django.test.utils import override_settings

from orders_read import rebuilds
from orders_read import replicas as routing
from orders_read.read_models import READ_MODELS
from tests import replication
from tests.factories import create_staff_groups


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hasher():
    """MD5 instead of PBKDF2 (Django's testing docs, "Speeding up the tests"): PBKDF2
    costs a quarter of a second for every user a test makes. Servers that tests start in
    subprocesses keep the real settings."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True, scope="session")
def _refresh_in_the_request():
    """No watcher runs beside the tests: each write refreshes its read models itself
    (READ_MODEL_REFRESH=sync), as in a deployment without one. A test of async mode says
    so, and starts a watcher where it needs one."""
    with override_settings(READ_MODEL_REFRESH="sync"):
        yield


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    # Hashed static names need collectstatic first; tests do not serve from the manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """TEST_DB_SUFFIX=name gives this run a test database of its own, so that two test
    runs against one server do not drop each other's database."""
    suffix = os.environ.get("TEST_DB_SUFFIX")
    if suffix:
        database = settings.DATABASES["default"]
        test = database.setdefault("TEST", {})
        test["NAME"] = f"{test.get('NAME') or 'test_' + database['NAME']}_{suffix}"


def _rebuild_read_models(**kwargs) -> None:
    """Rebuild every read model from the write tables, as empty as a flush leaves them."""
    outcomes = rebuilds.rebuild(READ_MODELS)
    failures = [str(outcome) for outcome in outcomes if outcome.error]
    assert not failures, failures


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Every test starts from read models rebuilt on empty write tables: once here, then
    after each transactional test's flush (which empties the tables only, not the views),
    on the post_migrate signal the flush sends — as Django recreates the permissions.
    A test in a transaction rolls back, so it leaves the views as it found them."""
    with django_db_blocker.unblock():
        _rebuild_read_models()
    sender = apps.get_app_config("orders_read")
    post_migrate.connect(_rebuild_read_models, sender=sender, dispatch_uid=__name__)
    yield
    post_migrate.disconnect(sender=sender, dispatch_uid=__name__)


@pytest.fixture
def staff_groups(db):
    """The groups the migration makes (a transactional test's flush removes them)."""
    create_staff_groups()


@pytest.fixture(scope="session")
def replica_servers(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two hot standbys of the test server, built once for the tests that ask (a few
    seconds), removed at the end of the session."""
    with django_db_blocker.unblock():
        try:
            standbys = replication.start_standbys(2, tmp_path_factory.mktemp("replicas"))
        except RuntimeError as error:
            failure = str(error)
        else:
            failure = None
    if failure:
        pytest.fail(failure, pytrace=False)
    yield standbys
    with django_db_blocker.unblock():
        replication.remove_standbys(standbys)


@pytest.fixture(scope="module")
def registered_replicas(replica_servers):
    """The standbys as databases ``replica_1`` and ``replica_2`` of the test database, for
    the tests of one module; every other test reads on the primary alone. Module-scoped so
    that they are databases before a test's database set-up looks for them."""
    replication.register(replica_servers)
    yield replica_servers
    replication.unregister(replica_servers)


@pytest.fixture
def replicas(registered_replicas, django_db_blocker):
    """The standbys as databases ``replica_1`` and ``replica_2`` (``tests/replication.py``
    pauses, stops and waits for them); each test finds them running and replaying,
    whatever the test before did to them, and healthy as far as routing knows."""
    with django_db_blocker.unblock():
        routing.replica_states(fresh=True)
    yield registered_replicas
    with django_db_blocker.unblock():
        for standby in registered_replicas:
            standby.start()
            standby.resume_replay()
