"""pytest plugin for scripts/mutation: leaves out the tests that need the database or Redis.

A mutant of a pure rule (receipts, deadlines, state machines) is judged by the tests that
run in milliseconds; the same files' database tests would make every mutant build and
migrate a database of its own. A test needs the servers when its fixtures reach `servers`.
"""

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    pure, needs_servers = [], []
    for item in items:
        (needs_servers if "servers" in getattr(item, "fixturenames", ()) else pure).append(item)
    if needs_servers:
        config.hook.pytest_deselected(items=needs_servers)
        items[:] = pure
