"""Fault tests start, like the read side's, from read models rebuilt on empty tables."""

from tests.read.conftest import empty_read_models  # noqa: F401  (an autouse fixture)
