"""pending_refund_decisions (issue 15): pay, hold or decline for every refund pending on the night.

The decision step runs on small tables (verdicts, orders, cases, list events): rows in, decisions
out, at the edges of each rule (the score threshold, an expired entry, a fingerprint shared by
two entities, an allow entry against a rule breach). Then whole nights: the sample, a generated
night, and a case confirmed by a reviewer between two nights.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.config import Settings, load_settings
from jobs.engine.engine import DuckDBEngine
from jobs.engine.runner import Runner
from jobs.engine.steps import step
from jobs.params import night_params
from jobs.pipeline import run
from jobs.stages import dispositions
from jobs.stages.decisions import DECISION_STEP, LIST_STEPS
from jobs.tools.generate import DEFAULT_AS_OF

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
CLI = Path(sys.executable).parent / "refund-recon"
AS_OF = date(2026, 3, 31)
RUN_STARTED = datetime(2026, 4, 1, 2, 0, tzinfo=UTC)
FIXTURE_TABLES = """
CREATE TABLE refund_verdicts (refund_id VARCHAR, verdict VARCHAR, rule_codes VARCHAR[], order_id VARCHAR,
    account_id VARCHAR, entity_id VARCHAR, refund_status VARCHAR, refund_amount DECIMAL(18,2), currency VARCHAR);
CREATE TABLE purchases (order_id VARCHAR, payment_fingerprint VARCHAR);
CREATE TABLE abuse_cases (case_id VARCHAR, entity_ids VARCHAR[], score DOUBLE, disposition VARCHAR,
    signal_codes VARCHAR[], reviewer VARCHAR, decided_at TIMESTAMPTZ);
"""


# --- fixture rows -------------------------------------------------------------------------------


def refund(
    refund_id: str,
    entity_id: str,
    *,
    verdict: str = "compliant",
    rules: tuple[str, ...] = (),
    fingerprint: str | None = None,
    status: str = "pending",
    amount: str = "100.00",
) -> dict:
    """A refund of order O-<refund_id> by account A-<entity_id>, paid with `fingerprint`."""
    return {
        "refund_id": refund_id,
        "entity_id": entity_id,
        "verdict": verdict,
        "rules": list(rules),
        "fingerprint": fingerprint,
        "status": status,
        "amount": amount,
    }


def case(case_id: str, *entities: str, score: float, disposition: str = "open") -> dict:
    return {"case_id": case_id, "entities": list(entities), "score": score, "disposition": disposition}


def entry(list_name: str, kind: str, value: str, *, expires_at: datetime | None = None, action: str = "add") -> dict:
    return {"list_name": list_name, "kind": kind, "value": value, "expires_at": expires_at, "action": action}


def decide(
    refunds: list[dict], cases: list[dict] = (), lists: list[dict] = (), hold_min_score: float = 60.0
) -> dict[str, tuple[str, list[str]]]:
    """Run the decision step on these rows: refund_id -> (decision, reasons)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    con.execute(FIXTURE_TABLES)
    for item in refunds:
        con.execute(
            "INSERT INTO refund_verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'USD')",
            [
                item["refund_id"],
                item["verdict"],
                item["rules"],
                f"O-{item['refund_id']}",
                f"A-{item['entity_id']}",
                item["entity_id"],
                item["status"],
                item["amount"],
            ],
        )
        con.execute("INSERT INTO purchases VALUES (?, ?)", [f"O-{item['refund_id']}", item["fingerprint"]])
    for item in cases:
        con.execute(
            "INSERT INTO abuse_cases VALUES (?, ?, ?, ?, ['SERIAL_REFUNDER'], ?, ?)",
            [
                item["case_id"],
                item["entities"],
                item["score"],
                item["disposition"],
                None if item["disposition"] == "open" else "rita",
                RUN_STARTED - timedelta(days=1),
            ],
        )
    params = night_params(Settings(hold_min_score=hold_min_score), "test-run", AS_OF, "test", None, RUN_STARTED)
    runner = Runner(DuckDBEngine(con), params, provided=("refund_verdicts", "purchases", "abuse_cases"))
    runner.run(tuple(step(name) for name in ("staging/masking", *LIST_STEPS)))
    for number, item in enumerate(lists, start=1):
        con.execute(
            "INSERT INTO list_events VALUES (?, ?, ?, ?, ?, 'a reason', 'ana', ?, ?)",
            [
                number,
                item["action"],
                item["list_name"],
                item["kind"],
                item["value"],
                RUN_STARTED - timedelta(days=2),
                item["expires_at"],
            ],
        )
    runner.run((step(DECISION_STEP),))
    rows = con.execute("SELECT refund_id, decision, reasons FROM pending_refund_decisions").fetchall()
    return {refund_id: (decision, reasons) for refund_id, decision, reasons in rows}


def decisions_of(found: dict) -> dict[str, str]:
    return {refund_id: decision for refund_id, (decision, _) in found.items()}


# --- rows in, decisions out ---------------------------------------------------------------------

CASES = [
    # (what it shows, refunds, cases, lists, hold_min_score, expected decisions)
    (
        "a pending refund breaking a rule is declined",
        [refund("R1", "E1", verdict="stop", rules=("PAST_WINDOW",))],
        [],
        [],
        60,
        {"R1": "decline"},
    ),
    (
        "only pending refunds are decided",
        [
            refund("R1", "E1"),
            refund("R2", "E1", status="paid"),
            refund("R3", "E1", status="rejected", verdict="rejected"),
        ],
        [],
        [],
        60,
        {"R1": "pay"},
    ),
    (
        "a score exactly at the threshold holds",
        [refund("R1", "E1")],
        [case("C1", "E1", score=60.0)],
        [],
        60,
        {"R1": "hold"},
    ),
    (
        "a score just below the threshold pays",
        [refund("R1", "E1")],
        [case("C1", "E1", score=59.9)],
        [],
        60,
        {"R1": "pay"},
    ),
    ("the threshold is the config's", [refund("R1", "E1")], [case("C1", "E1", score=59.9)], [], 50, {"R1": "hold"}),
    (
        "every entity of the case is held, not only the one with refunds in it",
        [refund("R1", "E1"), refund("R2", "E2")],
        [case("C1", "E1", "E2", score=70.0)],
        [],
        60,
        {"R1": "hold", "R2": "hold"},
    ),
    (
        "a case confirmed as abuse declines, whatever its score",
        [refund("R1", "E1")],
        [case("C1", "E1", score=10.0, disposition="confirmed")],
        [],
        60,
        {"R1": "decline"},
    ),
    (
        "a false positive does not hold",
        [refund("R1", "E1")],
        [case("C1", "E1", score=90.0, disposition="false_positive")],
        [],
        60,
        {"R1": "pay"},
    ),
    (
        "a reopened case holds",
        [refund("R1", "E1")],
        [case("C1", "E1", score=90.0, disposition="reopened")],
        [],
        60,
        {"R1": "hold"},
    ),
    (
        "needs_info holds",
        [refund("R1", "E1")],
        [case("C1", "E1", score=90.0, disposition="needs_info")],
        [],
        60,
        {"R1": "hold"},
    ),
    (
        "a blocked entity is held",
        [refund("R1", "E1"), refund("R2", "E2")],
        [],
        [entry("block", "entity", "E1")],
        60,
        {"R1": "hold", "R2": "pay"},
    ),
    (
        "a blocked account is held",
        [refund("R1", "E1"), refund("R2", "E2")],
        [],
        [entry("block", "account", "A-E2")],
        60,
        {"R1": "pay", "R2": "hold"},
    ),
    (
        "a blocked fingerprint shared by two entities holds the refunds of both paid with it",
        [
            refund("R1", "E1", fingerprint="F1"),
            refund("R2", "E2", fingerprint="F1"),
            refund("R3", "E2", fingerprint="F2"),
            refund("R4", "E3"),
        ],
        [],
        [entry("block", "fingerprint", "F1")],
        60,
        {"R1": "hold", "R2": "hold", "R3": "pay", "R4": "pay"},
    ),
    (
        "an expired block entry is ignored",
        [refund("R1", "E1")],
        [],
        [entry("block", "entity", "E1", expires_at=RUN_STARTED)],
        60,
        {"R1": "pay"},
    ),
    (
        "a block entry expiring after the run's start holds",
        [refund("R1", "E1")],
        [],
        [entry("block", "entity", "E1", expires_at=RUN_STARTED + timedelta(seconds=1))],
        60,
        {"R1": "hold"},
    ),
    (
        "a removed block entry is ignored",
        [refund("R1", "E1")],
        [],
        [entry("block", "entity", "E1"), entry("block", "entity", "E1", action="remove")],
        60,
        {"R1": "pay"},
    ),
    (
        "an allow entry lifts a case's hold",
        [refund("R1", "E1")],
        [case("C1", "E1", score=90.0)],
        [entry("allow", "entity", "E1")],
        60,
        {"R1": "pay"},
    ),
    (
        "an allow entry lifts a block on the same refund",
        [refund("R1", "E1", fingerprint="F1"), refund("R2", "E2", fingerprint="F1")],
        [],
        [entry("block", "fingerprint", "F1"), entry("allow", "entity", "E2")],
        60,
        {"R1": "hold", "R2": "pay"},
    ),
    (
        "an allow-listed entity with a stop verdict is still declined",
        [refund("R1", "E1", verdict="stop", rules=("MINUTES_USED",))],
        [],
        [entry("allow", "entity", "E1")],
        60,
        {"R1": "decline"},
    ),
    (
        "an allow-listed entity in a confirmed case is still declined",
        [refund("R1", "E1")],
        [case("C1", "E1", score=90.0, disposition="confirmed")],
        [entry("allow", "entity", "E1")],
        60,
        {"R1": "decline"},
    ),
    (
        "an expired allow entry lifts nothing",
        [refund("R1", "E1")],
        [case("C1", "E1", score=90.0)],
        [entry("allow", "entity", "E1", expires_at=RUN_STARTED - timedelta(days=1))],
        60,
        {"R1": "hold"},
    ),
]


@pytest.mark.parametrize(
    "refunds, cases, lists, hold_min_score, expected", [pytest.param(*row[1:], id=row[0]) for row in CASES]
)
def test_decisions(refunds, cases, lists, hold_min_score, expected):
    assert decisions_of(decide(refunds, cases, lists, hold_min_score)) == expected


REASONS = [
    # (what it shows, refunds, cases, lists, refund, expected reasons)
    (
        "a decline for rules lists its rule codes first",
        [refund("R1", "E1", verdict="stop", rules=("PAST_WINDOW", "MINUTES_USED"))],
        [],
        [],
        "R1",
        ["PAST_WINDOW", "MINUTES_USED"],
    ),
    (
        "a confirmed case names the case and who confirmed it",
        [refund("R1", "E1")],
        [case("C1", "E1", score=10.0, disposition="confirmed")],
        [],
        "R1",
        ["case C1 confirmed as abuse by rita on 2026-03-31"],
    ),
    (
        "a hold by score names the case, its score, the threshold and its signals",
        [refund("R1", "E1")],
        [case("C1", "E1", score=60.0)],
        [],
        "R1",
        ["case C1 (open, score 60.0, hold at 60: SERIAL_REFUNDER)"],
    ),
    (
        "a block names the entry, a fingerprint masked",
        [refund("R1", "E1", fingerprint="FP-0000001")],
        [],
        [entry("block", "fingerprint", "FP-0000001")],
        "R1",
        ["block fingerprint FP-…01: a reason (ana)"],
    ),
    (
        "an expired entry says so",
        [refund("R1", "E1")],
        [],
        [entry("block", "entity", "E1", expires_at=datetime(2026, 3, 31, 16, 0, tzinfo=UTC))],
        "R1",
        ["block entity E1: a reason (ana, until 2026-04-01 00:00 +08) expired, ignored"],
    ),
    (
        "an allow entry that lifts a hold says so",
        [refund("R1", "E1")],
        [case("C1", "E1", score=90.0)],
        [entry("allow", "entity", "E1")],
        "R1",
        ["case C1 (open, score 90.0, hold at 60: SERIAL_REFUNDER)", "allow entity E1: a reason (ana) - lifts the hold"],
    ),
    (
        "an allow entry against a breach says it lifts nothing",
        [refund("R1", "E1", verdict="stop", rules=("MINUTES_USED",))],
        [],
        [entry("allow", "entity", "E1")],
        "R1",
        ["MINUTES_USED", "allow entity E1: a reason (ana) - an allow entry never lifts a decline"],
    ),
    ("a plain pay has nothing to say", [refund("R1", "E1")], [], [], "R1", []),
]


@pytest.mark.parametrize(
    "refunds, cases, lists, refund_id, expected", [pytest.param(*row[1:], id=row[0]) for row in REASONS]
)
def test_reasons(refunds, cases, lists, refund_id, expected):
    assert decide(refunds, cases, lists)[refund_id][1] == expected


# --- whole nights -------------------------------------------------------------------------------


def assert_one_decision_each(con: duckdb.DuckDBPyConnection) -> None:
    """Every pending refund exactly one decision; declines = stop verdicts + confirmed-abuse refunds."""
    assert (
        con.execute(
            "SELECT count(*) FROM refund_verdicts AS verdict FULL JOIN "
            "(SELECT refund_id, count(*) AS n FROM pending_refund_decisions GROUP BY ALL) AS decided USING (refund_id) "
            "WHERE coalesce(verdict.refund_status = 'pending', false) <> coalesce(decided.n = 1, false)"
        ).fetchone()[0]
        == 0
    )
    declined = {
        r
        for (r,) in con.execute("SELECT refund_id FROM pending_refund_decisions WHERE decision = 'decline'").fetchall()
    }
    expected = {
        r
        for (r,) in con.execute(
            "SELECT refund_id FROM refund_verdicts WHERE refund_status = 'pending' AND (verdict = 'stop' "
            "OR entity_id IN (SELECT unnest(entity_ids) FROM abuse_cases WHERE disposition = 'confirmed'))"
        ).fetchall()
    }
    assert declined == expected
    assert con.execute("SELECT bool_and(passed) FROM invariant_results WHERE invariant = 'I17'").fetchone()[0]


def test_the_sample_night_decides_each_pending_refund_once():
    con = run(load_settings(SAMPLE / "refund-recon.toml"), SAMPLE, AS_OF, None).con
    assert_one_decision_each(con)
    assert dict(con.execute("SELECT refund_id, decision FROM pending_refund_decisions").fetchall()) == {
        "RF2603280016": "decline",
        "RF2603300018": "decline",
        "RF2603300019": "decline",
        "RF2603310023": "hold",
        "RF2603310024": "hold",
        "RF2603310025": "hold",
        "RF2603310026": "pay",
    }


@pytest.fixture(scope="module")
def generated_night(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    subprocess.run(
        [CLI, "generate", "--scale", "0.01", "--seed", "1", "--out", str(folder)],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return folder


def test_a_generated_night_decides_each_pending_refund_once(generated_night):
    settings = Settings(max_bad_row_fraction=1.0, write_report=False, write_exports=False)
    con = run(settings, generated_night, DEFAULT_AS_OF, None).con
    assert con.execute("SELECT count(*) FROM pending_refund_decisions").fetchone()[0] > 0
    assert_one_decision_each(con)


def test_a_case_confirmed_between_two_nights_declines_its_pending_refunds(tmp_path):
    settings = replace(load_settings(SAMPLE / "refund-recon.toml"), write_report=False, write_exports=False)
    db_path = tmp_path / "recon.duckdb"
    run(settings, SAMPLE, AS_OF, db_path)
    with duckdb.connect(str(db_path)) as con:
        dispositions.decide(con, "C-e66a14d86988", "confirmed", "rita", "ring of three")
    con = run(settings, SAMPLE, AS_OF, db_path).con
    assert_one_decision_each(con)
    decision, reasons = con.execute(
        "SELECT decision, reasons FROM pending_refund_decisions WHERE refund_id = 'RF2603310023'"
    ).fetchone()
    assert decision == "decline" and reasons[0].startswith("case C-e66a14d86988 confirmed as abuse by rita")


def test_summary_and_run_results_count_decisions_and_money(tmp_path):
    db_path = tmp_path / "recon.duckdb"
    shutil.copy(SAMPLE / "refund-recon.toml", tmp_path / "recon.toml")
    completed = subprocess.run(
        [
            CLI,
            "run",
            "--input",
            str(SAMPLE),
            "--db",
            str(db_path),
            "--as-of",
            "2026-03-31",
            "--config",
            str(tmp_path / "recon.toml"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert completed.returncode == 0, completed.stderr
    decisions = completed.stdout.split("pending refunds to decide (refunds, refund amount):\n")[1].splitlines()[:3]
    assert [line.split() for line in decisions] == [
        ["decline", "CNY", "3", "3,397.00"],
        ["hold", "CNY", "3", "2,397.00"],
        ["pay", "USD", "1", "29.00"],
    ]
    document = json.loads((tmp_path / "run_results.json").read_text())
    assert document["decisions"] == [
        {"decision": "decline", "currency": "CNY", "refunds": 3, "refund_amount": 3397},
        {"decision": "hold", "currency": "CNY", "refunds": 3, "refund_amount": 2397},
        {"decision": "pay", "currency": "USD", "refunds": 1, "refund_amount": 29},
    ]
    assert (tmp_path / "exports" / "csv" / "as_of=2026-03-31" / "pending_refund_decisions.csv").exists()


# --- the review queue: largest expected loss first -------------------------------------------------


def queue(db_path: Path, *args: str) -> list[list[str]]:
    """`review list` rows: case, then the expected loss, held and days open columns."""
    result = CliRunner().invoke(main, ["review", "list", *args, "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("C-")]
    return [[line.split()[0], *re.split(r"\s{2,}", line)[-3:]] for line in rows]


def test_review_list_orders_cases_by_expected_loss_and_filters_those_holding_refunds(tmp_path):
    db_path = tmp_path / "recon.duckdb"
    settings = replace(load_settings(SAMPLE / "refund-recon.toml"), write_report=False, write_exports=False)
    run(settings, SAMPLE, AS_OF, db_path)
    # score / 100 x the refunds of the case's entities pending or paid: C-ced0b9938134 scores less
    # than C-125002de9281 but its entity has 3,898.00 CNY at stake against 1,999.00.
    assert queue(db_path) == [
        ["C-fe82d85024fc", "2,894.16 CNY", "0", "0"],
        ["C-ced0b9938134", "2,806.56 CNY", "1", "0"],
        ["C-125002de9281", "1,599.20 CNY", "0", "0"],
        ["C-e66a14d86988", "946.42 CNY", "1", "0"],
        ["C-6d8fb39960a9", "584.35 CNY", "1", "0"],
        ["C-f10c347e55ba", "164.00 USD", "0", "0"],
        ["C-9c7e07232743", "8.70 USD", "0", "0"],
    ]
    assert [row[0] for row in queue(db_path, "--pending")] == ["C-ced0b9938134", "C-e66a14d86988", "C-6d8fb39960a9"]
    run(settings, SAMPLE, AS_OF + timedelta(days=2), db_path)
    assert {row[0]: row[3] for row in queue(db_path, "--all")}["C-fe82d85024fc"] == "2"
