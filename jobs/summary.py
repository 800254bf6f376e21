"""The end-of-run summary: rows per file, flags per rule, money at risk per verdict."""

from __future__ import annotations

import os

from .pipeline import RunResult


def summary_lines(result: RunResult) -> list[str]:
    """Plain-text lines for the terminal and the log."""
    lines = [f"refund-recon run {result.run_id}  as_of {result.as_of}"]
    lines.append(f"  {'export':<16}{'rows in':>10}{'loaded':>10}{'quarantined':>13}{'after as_of':>13}")
    for counts in result.files.values():
        lines.append(
            f"  {counts.source:<16}{counts.rows_in:>10}{counts.rows_loaded:>10}"
            f"{counts.rows_quarantined:>13}{counts.rows_after_as_of:>13}"
        )
    flags = result.con.execute(
        "SELECT rule.rule_code, count(flag.rule_code) FROM rule_catalog AS rule "
        "LEFT JOIN refund_flags AS flag USING (rule_code) GROUP BY rule.rule_code, rule.position "
        "ORDER BY rule.position"
    ).fetchall()
    lines.append("  flags per rule:")
    lines += [f"    {code:<22}{count:>8}" for code, count in flags]
    verdicts = result.con.execute(
        "SELECT verdict, currency, count(*), sum(amount_at_risk) FROM refund_verdicts "
        "GROUP BY ALL ORDER BY verdict, currency"
    ).fetchall()
    lines.append("  verdicts (refunds, money at risk):")
    lines += [f"    {verdict:<10}{currency:<5}{count:>8}{amount:>16,.2f}" for verdict, currency, count, amount in verdicts]
    passed, checked = result.con.execute("SELECT count(*) FILTER (WHERE passed), count(*) FROM invariant_results").fetchone()
    lines.append(f"  invariants: {passed}/{checked} passed")
    lines += [f"  report: {path}" for path in result.report_paths]
    if result.export_paths:
        lines.append(f"  exports: {len(result.export_paths)} files under {os.path.commonpath(result.export_paths)}")
    timings = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in result.stage_seconds.items())
    lines.append(f"  stages: {timings}")
    return lines
