"""Read-side tests run on committed data (transaction=True): refreshes need real commits."""

import pytest

from orders_read import refresh
from orders_read.read_models import READ_MODELS


@pytest.fixture(autouse=True)
def empty_read_models(transactional_db):
    """Rebuild every view from the (emptied) write tables: no rows left by other tests."""
    refresh.refresh(READ_MODELS, full=True)
