"""The nightly HTML report (issue #6). IN PROGRESS."""

from __future__ import annotations

from pathlib import Path


def write_report(db_path: Path, run_id: str, settings) -> list[Path]:
    """Write the run's self-contained HTML report(s) next to the warehouse; return their paths."""
    return []
