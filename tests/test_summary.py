"""The terminal summary and the one definition of a night's warnings (jobs/outputs/outcome.py, issue #14).

A published night is `succeeded`, or `succeeded_with_warnings` when a gate failed or rows were
quarantined; the summary puts the warnings first and shows the money finance came for
(recoverable, owed) per currency.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from jobs.config import load_settings
from jobs.outputs.outcome import night_status, night_warnings
from jobs.outputs.summary import summary_fields, summary_lines
from jobs.pipeline import run

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def gate(gate_name="freshness", source="refunds", passed=True, message="ok"):
    return {"gate": gate_name, "source": source, "passed": passed, "message": message}


def file_counts(source="refunds", rows_in=100, rows_quarantined=0):
    return {"source": source, "rows_in": rows_in, "rows_quarantined": rows_quarantined}


@pytest.mark.parametrize(
    "gates, files, kinds, status",
    [
        ([gate()], [file_counts()], [], "succeeded"),
        ([gate(passed=None)], [file_counts()], [], "succeeded"),  # no judgement: no warning
        (
            [gate(passed=False, message="Freshness of refunds: stale")],
            [file_counts()],
            [("gate", "refunds")],
            "succeeded_with_warnings",
        ),
        ([gate()], [file_counts(rows_quarantined=1)], [("quarantine", "refunds")], "succeeded_with_warnings"),
        (
            [gate("volume", "usage", False)],
            [file_counts("usage", 10, 2)],
            [("gate", "usage"), ("quarantine", "usage")],
            "succeeded_with_warnings",
        ),
        ([], [], [], "succeeded"),  # a replay reads no file
    ],
)
def test_what_makes_a_night_succeed_with_warnings(gates, files, kinds, status):
    warnings = night_warnings(gates, files)
    assert [(warning["kind"], warning["source"]) for warning in warnings] == kinds
    assert night_status(warnings) == status


def test_a_quarantine_warning_says_how_many_rows_of_which_file():
    (warning,) = night_warnings([], [file_counts("usage", 4_000, 3)])
    assert warning["message"] == "usage: 3 of 4,000 rows quarantined (0.07%), not in tonight's figures"


@pytest.fixture(scope="module")
def sample_night(tmp_path_factory):
    settings = replace(load_settings(SAMPLE / "refund-recon.toml"), write_report=False, write_exports=False)
    result = run(settings, SAMPLE, date(2026, 3, 31), tmp_path_factory.mktemp("summary") / "recon.duckdb")
    yield result
    result.con.close()


def test_the_summary_starts_with_the_status_and_its_warnings(sample_night):
    lines = summary_lines(sample_night)
    assert lines[1] == "  status: succeeded with warnings (3)"
    assert lines[2:5] == [
        "  ⚠ purchases: 1 of 35 rows quarantined (2.86%), not in tonight's figures",
        "  ⚠ refunds: 2 of 26 rows quarantined (7.69%), not in tonight's figures",
        "  ⚠ usage: 2 of 41 rows quarantined (4.88%), not in tonight's figures",
    ]
    assert [warning["kind"] for warning in summary_fields(sample_night)["warnings"]] == ["quarantine"] * 3


def test_the_summary_shows_recoverable_and_owed_per_currency(sample_night):
    expected = sample_night.con.execute(
        "SELECT currency, sum(at_risk_total), sum(amount_recoverable), sum(amount_owed_to_customers) "
        "FROM daily_reconciliation GROUP BY currency ORDER BY currency"
    ).fetchall()
    assert [currency for currency, *_ in expected] == ["CNY", "USD"]
    lines = summary_lines(sample_night)
    money = lines[lines.index("  money (at risk, recoverable, owed to customers):") + 1 :][: len(expected)]
    assert [line.split() for line in money] == [
        [currency, f"{at_risk:,.2f}", f"{recoverable:,.2f}", f"{owed:,.2f}"]
        for currency, at_risk, recoverable, owed in expected
    ]
    fields = summary_fields(sample_night)["money"]
    assert {
        currency: (item["amount_recoverable"], item["amount_owed_to_customers"]) for currency, item in fields.items()
    } == {currency: (recoverable, owed) for currency, _, recoverable, owed in expected}
