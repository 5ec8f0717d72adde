"""Read-side tests run on committed data (transaction=True): refreshes need real commits."""

import pytest


@pytest.fixture(autouse=True)
def empty_read_models(transactional_db):
    """Every view starts empty, rebuilt from the emptied write tables: tests/conftest.py
    rebuilds them after each flush, so that no rows are left by other tests."""
