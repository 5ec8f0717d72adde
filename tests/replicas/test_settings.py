"""DATABASE_REPLICA_URLS and REPLICAS as the settings read them: replica aliases in
order, each a test mirror of ``default``, and a clear refusal of what names no replica."""

import subprocess

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.replicas import databases_from_urls, is_replica
from tests.processes import environment, manage


def test_each_url_becomes_a_replica_alias_in_order():
    databases = databases_from_urls(
        [
            "postgres://reader:secret@replica-a.internal:5433/quartermaster",
            " ",
            "postgresql://reader@/quartermaster?host=/run/replica-b",
        ]
    )

    assert list(databases) == ["replica_1", "replica_2"]
    first, second = databases.values()
    assert first["ENGINE"] == "django.db.backends.postgresql"
    assert (first["HOST"], first["PORT"], first["NAME"]) == (
        "replica-a.internal",
        5433,
        "quartermaster",
    )
    assert (first["USER"], first["PASSWORD"]) == ("reader", "secret")
    assert second["OPTIONS"] == {"host": "/run/replica-b", "connect_timeout": 2}
    # A URL's own connect_timeout wins.
    (own,) = databases_from_urls(
        ["postgres://r@replica-c/quartermaster?connect_timeout=9"]
    ).values()
    assert own["OPTIONS"]["connect_timeout"] == 9
    # The test runner makes no database on a replica: it reads the primary's test database.
    assert first["TEST"] == second["TEST"] == {"MIRROR": "default"}


def test_no_urls_no_replicas():
    assert databases_from_urls([]) == {}
    assert databases_from_urls([""]) == {}


@pytest.mark.parametrize(
    "url", ["mysql://reader@replica/quartermaster", "sqlite:///replica.db", "replica-a:5432"]
)
def test_a_url_that_is_no_postgresql_database_is_refused_by_name(url):
    with pytest.raises(ImproperlyConfigured, match=f"DATABASE_REPLICA_URLS: '{url}' is not a"):
        databases_from_urls([url])


def test_replica_aliases_are_told_from_the_others():
    assert is_replica("replica_1") and is_replica("replica_12")
    assert not any(map(is_replica, ["default", "replica_", "replica_x", "replicas"]))


@pytest.mark.django_db
def test_the_settings_name_the_replicas_of_the_environment():
    show = "from django.conf import settings; print(*settings.DATABASES)"
    urls = "postgres://reader@replica-a/quartermaster,postgres://reader@replica-b/quartermaster"

    named = manage(environment(DATABASE_REPLICA_URLS=urls), "shell", "-v", "0", "-c", show)
    # REPLICAS starts standbys of the private server only: DATABASE_URL names another.
    ignored = manage(environment(REPLICAS="2"), "shell", "-v", "0", "-c", show)

    assert named.split() == ["default", "replica_1", "replica_2"]
    assert ignored.split() == ["default"]


@pytest.mark.django_db
def test_replicas_must_be_a_count():
    with pytest.raises(subprocess.CalledProcessError) as failure:
        manage(environment(REPLICAS="two"), "check")
    assert "REPLICAS must be a whole number of standbys, 0 or more." in failure.value.stderr
