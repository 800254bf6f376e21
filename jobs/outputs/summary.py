"""The end-of-run summary: the night's status and warnings, rows per file, flags per rule, money
at risk per verdict, and per currency what is at risk, recoverable and owed to customers.

`summary_fields` gathers it once (money as Decimal); `summary_lines` renders it for the terminal,
and the `run_finished` JSON event carries the fields themselves (jobs/logs.py).
"""

from __future__ import annotations

import os

from jobs.engine.engine import records
from jobs.outputs.outcome import money_by_currency, night_status, night_warnings
from jobs.stages.decisions import decision_totals
from jobs.stages.run_result import RunResult


def summary_fields(result: RunResult) -> dict:
    """The summary as data: counts per file, flags per rule, refunds and money per verdict and currency."""
    engine = result.runner.engine
    _, flags = engine.fetch(
        "SELECT rule.rule_code, count(flag.rule_code) FROM rule_catalog AS rule "
        "LEFT JOIN refund_flags AS flag USING (rule_code) GROUP BY rule.rule_code, rule.position "
        "ORDER BY rule.position",
        {},
    )
    verdicts: dict[str, dict] = {}
    for verdict, currency, count, amount in engine.fetch(
        "SELECT verdict, currency, count(*), sum(amount_at_risk) FROM refund_verdicts "
        "GROUP BY ALL ORDER BY verdict, currency",
        {},
    )[1]:
        verdicts.setdefault(verdict, {})[currency] = {"refunds": count, "amount_at_risk": amount}
    decisions: dict[str, dict] = {}
    for row in decision_totals(engine):
        decisions.setdefault(row["decision"], {})[row["currency"]] = {
            "refunds": row["refunds"],
            "refund_amount": row["refund_amount"],
        }
    _, [(passed, checked)] = engine.fetch("SELECT count(*) FILTER (WHERE passed), count(*) FROM invariant_results", {})
    gates = records(engine, "SELECT gate, source, passed, message FROM gate_results ORDER BY gate, source")
    files = [
        {"source": counts.source, "rows_in": counts.rows_in, "rows_quarantined": counts.rows_quarantined}
        for counts in result.files.values()
    ]
    return {
        "run_id": result.run_id,
        "as_of": result.as_of.isoformat(),
        "warnings": night_warnings(gates, files),
        "files": {
            counts.source: {
                "rows_in": counts.rows_in,
                "loaded": counts.rows_loaded,
                "quarantined": counts.rows_quarantined,
                "after_as_of": counts.rows_after_as_of,
            }
            for counts in result.files.values()
        },
        "flags": dict(flags),
        "verdicts": verdicts,
        "decisions": decisions,
        "money": money_by_currency(engine),
        "invariants": {"passed": passed, "checked": checked},
        "report_paths": [str(path) for path in result.report_paths],
        "export_paths": [str(path) for path in result.export_paths],
        "stage_seconds": {stage: round(seconds, 3) for stage, seconds in result.stage_seconds.items()},
        "peak_rss_bytes": result.peak_rss_bytes,
    }


def summary_lines(result: RunResult) -> list[str]:
    """Plain-text lines for the terminal and the log."""
    fields = summary_fields(result)
    lines = [f"refund-recon run {fields['run_id']}  as_of {fields['as_of']}"]
    warnings = fields["warnings"]
    lines.append(f"  status: {night_status(warnings).replace('_', ' ')}" + (f" ({len(warnings)})" if warnings else ""))
    lines += [f"  ⚠ {warning['message']}" for warning in warnings]
    if fields["files"]:
        lines.append(f"  {'export':<16}{'rows in':>12}{'loaded':>12}{'quarantined':>13}{'after as_of':>13}")
        lines += [
            f"  {source:<16}{counts['rows_in']:>12,}{counts['loaded']:>12,}"
            f"{counts['quarantined']:>13,}{counts['after_as_of']:>13,}"
            for source, counts in fields["files"].items()
        ]
    else:
        lines.append("  replayed from the warehouse: no exports read")
    lines.append("  flags per rule:")
    lines += [f"    {code:<22}{count:>10,}" for code, count in fields["flags"].items()]
    lines.append("  verdicts (refunds, money at risk):")
    lines += [
        f"    {verdict:<10}{currency:<5}{money['refunds']:>10,}{money['amount_at_risk']:>16,.2f}"
        for verdict, currencies in fields["verdicts"].items()
        for currency, money in currencies.items()
    ]
    lines.append("  pending refunds to decide (refunds, refund amount):")
    lines += [
        f"    {decision:<10}{currency:<5}{money['refunds']:>10,}{money['refund_amount']:>16,.2f}"
        for decision, currencies in fields["decisions"].items()
        for currency, money in currencies.items()
    ]
    lines.append("  money (at risk, recoverable, owed to customers):")
    lines += [
        f"    {currency:<5}{money['amount_at_risk']:>16,.2f}{money['amount_recoverable']:>16,.2f}"
        f"{money['amount_owed_to_customers']:>16,.2f}"
        for currency, money in fields["money"].items()
    ]
    lines.append(f"  invariants: {fields['invariants']['passed']}/{fields['invariants']['checked']} passed")
    lines += [f"  report: {path}" for path in fields["report_paths"]]
    if fields["export_paths"]:
        lines.append(
            f"  exports: {len(fields['export_paths'])} files under {os.path.commonpath(fields['export_paths'])}"
        )
    timings = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in result.stage_seconds.items())
    lines.append(f"  stages: {timings}")
    if result.peak_rss_bytes is not None:
        lines.append(f"  peak memory: {result.peak_rss_bytes / 2**30:.2f} GiB")
    return lines
