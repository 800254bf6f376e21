"""The rule and signal catalogues, read from the headers of `sql/rules/` and `sql/signals/`.

Adding a rule or a signal is adding its SQL file: these tables, and the outputs that join them
(`refund_flags`, `daily_reconciliation`, the data dictionary, docs/rules.md), follow from its
header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow

from jobs.engine.steps import Step, StepError, discover

_CODE = re.compile(r"[A-Z][A-Z0-9_]*")

_RULE_COLUMNS = pyarrow.schema(
    [
        ("position", pyarrow.int32()),
        ("rule_code", pyarrow.string()),
        ("category", pyarrow.string()),
        ("severity", pyarrow.string()),
        ("whole_refund_at_risk", pyarrow.bool_()),
        ("summary", pyarrow.string()),
    ]
)
_SIGNAL_COLUMNS = pyarrow.schema(
    [
        ("position", pyarrow.int32()),
        ("signal_code", pyarrow.string()),
        ("origin", pyarrow.string()),
        ("weight", pyarrow.float64()),
        ("enabled", pyarrow.bool_()),
        ("summary", pyarrow.string()),
    ]
)


@dataclass(frozen=True)
class Catalog:
    """Every rule and signal step, in catalogue order."""

    rules: tuple[Step, ...]
    signals: tuple[Step, ...]
    linking: tuple[Step, ...]  # sql/abuse/: linked groups and cases

    def signal_settings(self) -> dict[str, Any]:
        """The `[settings]` of the signals and of the linking steps, with their defaults: the keys
        of `[signals]` in the config."""
        return {name: value for step in (*self.linking, *self.signals) for name, value in step.settings.items()}

    def signal_weights(self) -> dict[str, float]:
        """Each signal's default weight in a case's score."""
        return {signal.code: float(signal.meta["weight"]) for signal in self.signals}

    def rule_table(self) -> pyarrow.Table:
        """`rule_catalog`: position, rule_code, category, severity, whole_refund_at_risk, summary."""
        return pyarrow.Table.from_pylist(
            [
                {
                    "position": rule.meta["position"],
                    "rule_code": rule.code,
                    "category": rule.meta["category"],
                    "severity": rule.meta["severity"],
                    "whole_refund_at_risk": rule.meta["whole_refund_at_risk"],
                    "summary": rule.meta["summary"],
                }
                for rule in self.rules
            ],
            schema=_RULE_COLUMNS,
        )

    def signal_table(self, weights: dict[str, float], disabled: tuple[str, ...]) -> pyarrow.Table:
        """`signal_catalog`: position, signal_code, origin, weight, enabled, summary."""
        return pyarrow.Table.from_pylist(
            [
                {
                    "position": signal.meta["position"],
                    "signal_code": signal.code,
                    "origin": signal.meta["origin"],
                    "weight": weights[signal.code],
                    "enabled": signal.code not in disabled,
                    "summary": signal.meta["summary"],
                }
                for signal in self.signals
            ],
            schema=_SIGNAL_COLUMNS,
        )


def load_catalog(sql_dir: Path | None = None) -> Catalog:
    """The catalogue of `sql_dir` (default: the job's own sql/)."""
    return Catalog(
        _in_position_order(discover("rules", sql_dir)),
        _in_position_order(discover("signals", sql_dir)),
        discover("abuse", sql_dir),
    )


def _in_position_order(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    for step in steps:
        if not _CODE.fullmatch(step.code) or step.path.stem != step.code:
            raise StepError(f"{step.path}: a code is UPPER_SNAKE_CASE and names its file, got {step.code!r}")
    ordered = tuple(sorted(steps, key=lambda step: step.meta["position"]))
    positions = [step.meta["position"] for step in ordered]
    if positions != list(range(1, len(ordered) + 1)):
        folder = ordered[0].path.parent if ordered else "?"
        raise ValueError(f"{folder}: catalogue positions must be 1..{len(ordered)}, got {positions}")
    return ordered


CATALOG = load_catalog()
