"""Fixtures shared by every test layer."""

import os

import pytest
from django.conf import settings
from django.test.utils import override_settings

from orders_read import refresh
from orders_read.read_models import READ_MODELS
from tests.factories import create_staff_groups


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hasher():
    """MD5 instead of PBKDF2 (Django's testing docs, "Speeding up the tests"): PBKDF2
    costs a quarter of a second for every user a test makes. Servers that tests start in
    subprocesses keep the real settings."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
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


@pytest.fixture
def staff_groups(transactional_db):
    """The groups the migration makes (a transactional test's flush removes them)."""
    create_staff_groups()
    refresh.refresh(READ_MODELS, full=True)
