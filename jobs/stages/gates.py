"""Freshness and volume gates: is tonight's data as current and as large as usual? (issue #4)

Run after loading, on the run's connection: `check_gates` fills `gate_results` (one row per
gate and export, sql/gates/), logs each failed gate as a `gate_warning` event, and with
`[gates] on_failure = "fail"` stops the run (GateFailed). docs/gates.md explains the gates.

The volume gate reads the earlier nights from `warehouse.runs` when the run's connection has
the warehouse attached and it holds `runs`; otherwise (and on Spark) it has no history and makes
no judgement.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from jobs.config import DEFAULT_FRESHNESS_MAX_AGE_HOURS, Settings
from jobs.engine.engine import Typed
from jobs.engine.runner import Runner
from jobs.engine.steps import discover
from jobs.stages.schemas import EXPORTS

log = logging.getLogger("refund_recon")
assert list(DEFAULT_FRESHNESS_MAX_AGE_HOURS) == list(EXPORTS)

# warehouse.runs as the volume gate reads it, or the same shape, empty, before the first run.
_NO_RUNS = (
    "SELECT NULL::VARCHAR AS run_id, NULL::DATE AS as_of, NULL::TIMESTAMPTZ AS started_at, "
    "NULL::STRUCT(source VARCHAR, rows_in BIGINT)[] AS input_files WHERE false"
)
_RUNS = "SELECT run_id, as_of, started_at, input_files FROM warehouse.runs"


class GateFailed(Exception):
    """A gate failed and `[gates] on_failure` is "fail"."""


def check_gates(runner: Runner, settings: Settings, earlier_runs: bool) -> list[str]:
    """Build `gate_results` (sql/gates/); log and return the failed gates' messages.

    Needs the run's tables (`purchases`, `usage`, `refunds`, `account_status`, `run_inputs`) and,
    with `earlier_runs`, the warehouse attached as `warehouse` holding `runs`.
    Raises GateFailed when a gate failed and `on_failure` is "fail".
    """
    runner.engine.execute(f"CREATE OR REPLACE TEMP VIEW gate_runs AS {_RUNS if earlier_runs else _NO_RUNS}", {})
    runner.provide("gate_runs")
    runner.run(discover("gates"))
    _, failed = runner.engine.fetch(
        "SELECT gate, source, message FROM gate_results WHERE NOT passed ORDER BY gate, source", {}
    )
    for gate, source, message in failed:
        log.warning(message, extra={"event": "gate_warning", "gate": gate, "source": source})
    if failed and settings.gates.on_failure == "fail":
        names = ", ".join(f"{gate} of {source}" for gate, source, _ in failed)
        raise GateFailed(
            f'run stopped: {len(failed)} gate(s) failed ({names}) and gates.on_failure is "fail"; nothing is written'
        )
    return [message for _, _, message in failed]


def gate_params(settings: Settings) -> dict[str, Typed]:
    """The parameters sql/gates/ declares, from `[gates]`."""
    gates = settings.gates
    return {
        "gate_freshness_max_age_hours": Typed(dict(gates.freshness_max_age_hours), "MAP(VARCHAR, INTEGER)"),
        "gate_volume_max_factor": Typed(Decimal(str(gates.volume_max_factor)), "DECIMAL(18,6)"),
        "gate_volume_trailing_nights": Typed(gates.volume_trailing_nights, "INTEGER"),
        "gate_volume_min_nights": Typed(gates.volume_min_nights, "INTEGER"),
        "gate_sources": Typed(list(EXPORTS), "VARCHAR[]"),
    }
