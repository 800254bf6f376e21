"""What a run did: the stages fill it, the outputs (summary, exports, notifications) read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from jobs.engine.engine import duckdb_connection
from jobs.engine.runner import Runner
from jobs.stages.validation import FileCounts


@dataclass
class RunResult:
    """What a run did, for the summary and the tests."""

    run_id: str
    as_of: date
    files: dict[str, FileCounts]
    runner: Runner
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_peak_rss_bytes: dict[str, int | None] = field(default_factory=dict)
    report_paths: list[Path] = field(default_factory=list)
    export_paths: list[Path] = field(default_factory=list)

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The run's working DuckDB (its tables stay readable after the run, for tests)."""
        return duckdb_connection(self.runner.engine)

    @property
    def peak_rss_bytes(self) -> int | None:
        """The run's peak resident memory so far: the highest of its stages' peaks."""
        return max((peak for peak in self.stage_peak_rss_bytes.values() if peak is not None), default=None)
