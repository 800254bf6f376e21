import sys
from pathlib import Path

import pytest

# The fixture builders in tests/exports.py are imported as a plain module.
sys.path.insert(0, str(Path(__file__).parent))

# A test of one of these kinds is slow too: `make test-fast` (pytest -m "not slow") leaves it out.
SLOW_KINDS = ("fuzz", "sigkill", "browser")

# The files that take longest, heaviest first (CPU seconds on one core, docs/testing.md "Speed").
# They run first: with `--dist loadfile --no-loadscope-reorder` (the Makefile's PYTEST_XDIST) a
# worker takes the next file when it is free, so both workers end together on small files instead
# of one waiting for a big file handed out last. The other files follow in name order.
HEAVY_FILES = (
    "test_reliability.py",  # ~65 s with its forked runs, most of them outside pytest's own CPU
    "test_history.py",
    "test_csv_fuzz.py",
    "test_reconciliation.py",
    "test_loading.py",
    "test_signals.py",
    "test_cli.py",
    "test_review.py",
    "test_readers.py",
    "test_validation.py",
    "test_exports.py",
    "test_report.py",
    "test_docs.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every fuzz, SIGKILL and browser test `slow` as well; put the heavy files first."""
    for item in items:
        if any(item.get_closest_marker(kind) for kind in SLOW_KINDS):
            item.add_marker(pytest.mark.slow)
    rank = {name: position for position, name in enumerate(HEAVY_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(HEAVY_FILES)))  # stable: a file's order kept
