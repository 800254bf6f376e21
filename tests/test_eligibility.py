"""`refund-recon eligibility` (issue 15): the answer for an order agrees with what the next night flags
on a full refund of it requested at that moment (the sample night 2026-03-31 published, then the same
exports with that one refund added)."""

from __future__ import annotations

import csv
import shutil
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.config import load_settings
from jobs.pipeline import run
from jobs.tools.eligibility import check

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
AS_OF = date(2026, 3, 31)
SETTINGS = replace(load_settings(SAMPLE / "refund-recon.toml"), write_report=False, write_exports=False)
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    db_path = tmp_path_factory.mktemp("sample") / "recon.duckdb"
    run(SETTINGS, SAMPLE, AS_OF, db_path)
    return db_path


ASKED = [
    # (order, requested at in billing time, what the night says)
    ("202603240002", "2026-03-25 10:00:00", []),  # day 2 of its window, no usage, no other live refund
    ("202603240002", "2026-03-31 20:00:00", ["PAST_WINDOW"]),  # day 8
    ("202603290002", "2026-03-31 20:00:00", ["MINUTES_USED", "CONCURRENT_REFUND", "DUPLICATE_REFUND"]),
    ("202603300001", "2026-03-31 20:00:00", ["CONCURRENT_REFUND", "DUPLICATE_REFUND"]),
]


def next_night_codes(tmp_path: Path, db_path: Path, order_id: str, at: datetime) -> list[str]:
    """The rule codes the night flags on a full refund of `order_id` requested at `at`, added to the sample."""
    folder = tmp_path / "night"
    shutil.copytree(SAMPLE, folder)
    with duckdb.connect(str(db_path), read_only=True) as con:
        currency, cash, commission, free = con.execute(
            "SELECT currency, paid_cash_credit, paid_commission_credit, paid_free_credit FROM purchases "
            "WHERE order_id = ?",
            [order_id],
        ).fetchone()
    with (folder / "refunds.csv").open("a", newline="", encoding="utf-8") as stream:
        csv.writer(stream).writerow(
            [
                "RF-ASKED",
                order_id,
                at.isoformat(),
                "pending",
                "",
                currency,
                cash,
                commission,
                free,
                cash + commission + free,
                "",
            ]
        )
    con = run(SETTINGS, folder, AS_OF, None).con
    return [
        code
        for (code,) in con.execute(
            "SELECT unnest(rule_codes) FROM refund_verdicts WHERE refund_id = 'RF-ASKED'"
        ).fetchall()
    ]


@pytest.mark.parametrize("order_id, at, expected", ASKED, ids=[f"{o}@{a}" for o, a, _ in ASKED])
def test_the_answer_agrees_with_what_the_next_night_flags(warehouse, tmp_path, order_id, at, expected):
    moment = datetime.fromisoformat(at).replace(tzinfo=SHANGHAI)
    answer = check(warehouse, order_id, moment, SETTINGS)
    assert answer["rule_codes"] == expected
    assert answer["refundable"] is (expected == [])
    assert next_night_codes(tmp_path, warehouse, order_id, moment) == expected


def test_the_answer_names_the_money_and_the_window(warehouse):
    result = CliRunner().invoke(
        main, ["eligibility", "--order-id", "202603240002", "--at", "2026-03-25 10:00:00", "--db", str(warehouse)]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("REFUNDABLE at 2026-03-25T10:00:00+08:00") and "NOT" not in lines[0]
    assert "days left in the window (billing days after today): 3" in result.output
    assert "withheld: discount" in result.output and "abuse case C-fe82d85024fc" in result.output


def test_an_unknown_order_is_one_line(warehouse):
    result = CliRunner().invoke(main, ["eligibility", "--order-id", "NOPE", "--db", str(warehouse)])
    assert result.exit_code == 1 and result.output == "refund-recon: no order NOPE in the warehouse\n"
