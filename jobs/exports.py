"""Exports for other tools: Parquet by as_of, CSV, run_results.json (issue #6). IN PROGRESS."""

from __future__ import annotations

from pathlib import Path


def write_exports(db_path: Path, run_id: str, settings, result) -> list[Path]:
    """Write the run's exports next to the warehouse; return their paths."""
    return []
