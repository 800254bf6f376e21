"""The parameters a night's SQL steps may declare, all known before the first step runs.

A step names the ones it uses in its header (`params = [...]`, a signal's `[settings]`); the
runner binds exactly those before it runs, and `check_plan` refuses at start-up a step that
declares one missing here (jobs/engine/runner.py).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jobs import __version__
from jobs.config import Settings
from jobs.engine.engine import Typed
from jobs.stages.gates import gate_params

# Bound when they are known: at publishing, the run's end and the time of each stage.
LATE_PARAMS = ("run_finished_at", "stage_seconds", "step_seconds")


def night_params(
    settings: Settings, run_id: str, as_of: date, mode: str, input_dir: Path | str | None, started_at: datetime
) -> dict[str, Any]:
    """Every parameter of the night, from the run's settings and identity."""
    zone = ZoneInfo(settings.billing_time_zone)
    signal_settings = {
        name: value for name, value in asdict(settings.signals).items() if name not in ("disabled", "weights")
    }
    return {
        "run_id": run_id,
        "as_of": as_of,
        "as_of_end": datetime.combine(as_of + timedelta(days=1), clock(0), tzinfo=zone),
        "billing_tz": settings.billing_time_zone,
        "refund_window_days": settings.refund_window_days,
        "disqualifying_reasons": Typed(list(settings.disqualifying_suspension_reasons), "VARCHAR[]"),
        "config_hash": settings.fingerprint(),
        "code_version": __version__,
        "run_mode": mode,
        "input_dir": Typed(None if input_dir is None else str(input_dir), "VARCHAR"),
        "run_started_at": started_at,
        "hold_min_score": settings.hold_min_score,
        **signal_settings,
        **gate_params(settings),
    }


def seconds_param(seconds: dict[str, float]) -> Typed:
    """Seconds per stage or step, as the MAP(VARCHAR, DOUBLE) `runs` keeps."""
    return Typed({name: round(value, 3) for name, value in seconds.items()}, "MAP(VARCHAR, DOUBLE)")
