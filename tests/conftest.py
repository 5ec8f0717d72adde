"""Fixtures shared by every test layer."""

import os

import pytest
from django.conf import settings


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
