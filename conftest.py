"""Fixtures shared by every package's tests (see tests/support)."""

import pytest

# Shared test contracts hold asserts outside test modules: have pytest rewrite them too.
pytest.register_assert_rewrite("tests.support.service_app")

pytest_plugins = [
    "tests.support.fixtures",
    "tests.support.redis",
    "tests.support.postgres",
    "tests.support.stateful",
]
