"""Fixtures shared by every test layer."""

import pytest


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    # Hashed static names need collectstatic first; tests do not serve from the manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
