"""Fixtures of the write-side tests (factories are in tests/factories.py, the tables' contents
in tests/database.py)."""

import pytest

from tests.database import database_state


@pytest.fixture
def unchanged(db):
    """Use as ``with unchanged(): ...`` around a command that must write nothing."""
    from contextlib import contextmanager

    @contextmanager
    def check():
        before = database_state()
        yield
        assert database_state() == before

    return check
