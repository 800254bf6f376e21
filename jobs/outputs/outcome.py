"""How a published night went, in one word for schedulers: the one definition of its warnings.

A night that published is `succeeded`, or `succeeded_with_warnings` when its figures hold with
reservations (docs/report.md "Warnings"):

    gate        a freshness or volume gate failed (gate_results.passed is false; NULL, no
                judgement, is not a warning)
    quarantine  an export had rows quarantined: they are under max_bad_row_fraction, so the night
                ran, but their records are not in tonight's figures

The summary, the `run_finished` event, the notification, run_results.json, the workbook and the
report all call `night_warnings` with the rows they already read, and `night_status` on its
result. A failed night never gets here: it publishes nothing.

`money_by_currency` is the money finance came for, per currency (the summary and the workbook).
"""

from __future__ import annotations

from jobs.engine.engine import Engine

_MONEY_SQL = """
SELECT currency, sum(at_risk_total) AS amount_at_risk, sum(amount_recoverable) AS amount_recoverable,
       sum(amount_owed_to_customers) AS amount_owed_to_customers
FROM daily_reconciliation GROUP BY currency ORDER BY currency
"""
SUCCEEDED, WITH_WARNINGS = "succeeded", "succeeded_with_warnings"


def night_warnings(gates: list[dict], files: list[dict]) -> list[dict]:
    """The night's warnings, gates first: each `{kind, source, message}` (plus `gate`).

    `gates`: rows of gate_results (gate, source, passed, message); `files`: the night's input
    files (source, rows_in, rows_quarantined)."""
    warnings = [
        {"kind": "gate", "gate": gate["gate"], "source": gate["source"], "message": gate["message"]}
        for gate in gates
        if gate["passed"] is False
    ]
    for item in sorted(files, key=lambda item: item["source"]):
        quarantined, rows_in = item["rows_quarantined"] or 0, item["rows_in"] or 0
        if quarantined:
            warnings.append(
                {
                    "kind": "quarantine",
                    "source": item["source"],
                    "message": f"{item['source']}: {quarantined:,} of {rows_in:,} rows quarantined "
                    f"({quarantined / rows_in:.2%}), not in tonight's figures",
                }
            )
    return warnings


def night_status(warnings: list[dict]) -> str:
    """`succeeded`, or `succeeded_with_warnings` when there is any warning."""
    return WITH_WARNINGS if warnings else SUCCEEDED


def money_by_currency(engine: Engine) -> dict[str, dict]:
    """{currency: {amount_at_risk, amount_recoverable, amount_owed_to_customers}} of the night's
    `daily_reconciliation` (every billing day it holds), as Decimal."""
    names, rows = engine.fetch(_MONEY_SQL, {})
    return {row[0]: dict(zip(names[1:], row[1:], strict=True)) for row in rows}
