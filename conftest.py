"""Fixtures shared by every package's tests (see tests/support)."""

pytest_plugins = ["tests.support.fixtures", "tests.support.redis"]
