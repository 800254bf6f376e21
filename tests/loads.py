"""The night's load and validate stages alone, on a folder of exports (issue #11).

    night = load_night(tmp_path, purchases=[purchase(order_id="O1")], usage=[usage(minutes="ten")])
    assert night.errors("usage") == [...]

A whole run spends about half its time after validation (gates, rules, signals, reconciliation,
cases); a test of what loading or validation does with the rows stops here. This starts the night
as `jobs.pipeline.run` does without a warehouse (its DuckDB, settings and set-up steps, no stored
records) and calls the run's own `_load_night`: the exports found, read, typed, validated, the bad
row fraction enforced, `run_inputs` and `validation_errors` written and the records merged. The
result is a RunResult, as `run` returns, holding the working DuckDB.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from exports import AS_OF, Night, write_exports

from jobs import pipeline
from jobs.config import Settings
from jobs.engine.engine import duckdb_connection
from jobs.params import night_params
from jobs.stages.history import open_history
from jobs.stages.run_result import RunResult
from jobs.stages.schemas import EXPORTS

TOLERANT = Settings(max_bad_row_fraction=1.0)  # every bad row tolerated


def load_folder(folder: Path, settings: Settings = TOLERANT, as_of: date = AS_OF) -> RunResult:
    """Load and validate the exports of `folder` as the night `as_of` does, with no warehouse."""
    run_id = "load-test"
    params = night_params(settings, run_id, as_of, "delivery", folder, datetime.now(UTC))
    runner = pipeline._start(settings, params, db_path=None)
    result = RunResult(run_id, as_of, {}, runner)
    open_history(duckdb_connection(runner.engine), None, as_of, replay=False)
    runner.provide(*(f"stored_{stem}" for stem in EXPORTS))
    pipeline._load_night(runner, settings, folder, result)
    return result


def load_night(tmp_path: Path, *, as_of: date = AS_OF, settings: Settings = TOLERANT, **exports) -> Night:
    """Write the given exports (tests/exports.py's builders) and load and validate them."""
    return Night(load_folder(write_exports(tmp_path / "exports", **exports), settings, as_of).runner)
