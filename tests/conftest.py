import sys
from pathlib import Path

import pytest

# The fixture builders in tests/exports.py are imported as a plain module.
sys.path.insert(0, str(Path(__file__).parent))

# A test of one of these kinds is slow too: `make test-fast` (pytest -m "not slow") leaves it out.
SLOW_KINDS = ("fuzz", "sigkill", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every fuzz, SIGKILL and browser test `slow` as well."""
    for item in items:
        if any(item.get_closest_marker(kind) for kind in SLOW_KINDS):
            item.add_marker(pytest.mark.slow)
