"""Abuse detection: signals about entities, linked groups, and cases for reviewers (SPEC 5).

After the rules, this stage links entities that share a payment fingerprint into groups
(`sql/abuse/`: connected components by label propagation, one round repeated until it
settles), runs each enabled signal, one file `sql/signals/<CODE>.sql` returning
`entity_id, evidence, refund_ids`, and folds the signals of each group into one case with a
score and the reviewers' standing disposition (`build_cases`, run where the warehouse's
decisions are at hand). Thresholds come from `[signals]` in the config.
"""

from __future__ import annotations

from jobs.catalog import CATALOG
from jobs.config import SignalSettings
from jobs.engine.runner import Runner
from jobs.engine.steps import step

LINKING = (
    "abuse/10_fingerprint_sharing",
    "abuse/20_entity_groups_start",
    "abuse/21_entity_groups_round",
    "abuse/22_entity_groups",
    "abuse/30_abuse_signals",
)


def detect_abuse(runner: Runner, settings: SignalSettings) -> None:
    """Leave `entity_groups`, `fingerprint_sharing` and `abuse_signals`."""
    runner.engine.write_table("signal_catalog", CATALOG.signal_table(settings.weights, settings.disabled))
    runner.provide("signal_catalog")
    enabled = tuple(signal for signal in CATALOG.signals if signal.code not in settings.disabled)
    runner.run(tuple(step(name) for name in LINKING) + enabled)


def build_cases(runner: Runner) -> None:
    """`abuse_cases` from tonight's signals, `case_dispositions` and `prior_case_members`."""
    runner.run((step("abuse/40_abuse_cases"),))
