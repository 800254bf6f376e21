"""`refund-recon review`: list, show, decide, export and import, on warehouses built by the job.

The fixture night: E1 (account A1) has three live refunds in March (SERIAL_REFUNDER) and pays
with a fingerprint it shares with E3, which only bought; E2 (account B1) has three more.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from exports import AS_OF, purchase, refund, status, write_exports

from jobs.cli import main
from jobs.config import Settings, load_settings
from jobs.pipeline import run

SAMPLE = Path(__file__).parent.parent / "data" / "sample"
FINGERPRINT = "fp_secret_0123456789"
MASKED = "fp_…89"


def e1_orders() -> list[dict]:
    days = ("01", "10", "20")
    return [
        purchase(order_id=f"O{n}", purchased_at=f"2026-03-{day} 10:00:00", payment_fingerprint=FINGERPRINT)
        for n, day in enumerate(days, start=1)
    ]


def e1_refunds() -> list[dict]:
    days = ((1, "02", "03"), (2, "11", "12"), (3, "21", "22"))
    return [
        refund(
            refund_id=f"R{n}",
            order_id=f"O{n}",
            requested_at=f"2026-03-{asked} 12:00:00",
            processed_at=f"2026-03-{paid} 12:00:00",
        )
        for n, asked, paid in days
    ]


def e2_night() -> tuple[list[dict], list[dict]]:
    days = ((1, "04", "05"), (2, "13", "14"), (3, "23", "24"))
    orders = [
        purchase(order_id=f"P{n}", account_id="B1", entity_id="E2", purchased_at=f"2026-03-{asked} 08:00:00")
        for n, asked, _ in days
    ]
    refunds = [
        refund(
            refund_id=f"S{n}",
            order_id=f"P{n}",
            requested_at=f"2026-03-{asked} 12:00:00",
            processed_at=f"2026-03-{paid} 12:00:00",
        )
        for n, asked, paid in days
    ]
    return orders, refunds


def night_exports(folder, extra_orders=(), extra_refunds=()):
    e2_orders, e2_refunds = e2_night()
    e3 = purchase(
        order_id="O9",
        account_id="A3",
        entity_id="E3",
        purchased_at="2026-02-01 10:00:00",
        payment_fingerprint=FINGERPRINT,
    )
    return write_exports(
        folder,
        purchases=[*e1_orders(), e3, *e2_orders, *extra_orders],
        refunds=[*e1_refunds(), *e2_refunds, *extra_refunds],
        account_status=[status(reason="overdue_payment", effective_at="2026-03-25 09:00:00")],
    )


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """The fixture night published once, with its report and exports: the folder holding them."""
    folder = tmp_path_factory.mktemp("published")
    run(Settings(), night_exports(folder / "night1"), AS_OF, folder / "recon.duckdb")
    return folder


@pytest.fixture
def warehouse(published, tmp_path):
    """A copy of the published night in tmp_path (warehouse, report, exports, the night1 folder);
    returns the warehouse path."""
    shutil.copytree(published, tmp_path, dirs_exist_ok=True)
    return tmp_path / "recon.duckdb"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The sample night (data/sample: 7 cases, CNY and USD) published, without report or exports."""
    db_path = tmp_path_factory.mktemp("sample") / "recon.duckdb"
    settings = replace(load_settings(SAMPLE / "refund-recon.toml"), write_report=False, write_exports=False)
    run(settings, SAMPLE, AS_OF, db_path)
    decisions = (
        ("C-125002de9281", "confirmed", None),
        ("C-9c7e07232743", "false_positive", None),
        ("C-6d8fb39960a9", "needs_info", "=ask the account manager"),
    )
    for case_id, disposition, note in decisions:
        assert (
            review(
                db_path,
                "decide",
                case_id,
                "--disposition",
                disposition,
                "--reviewer",
                "ana",
                *(["--note", note] if note else []),
            ).exit_code
            == 0
        )
    return db_path


def review(db_path, *args, width: int = 80):
    return CliRunner(env={"COLUMNS": str(width)}).invoke(main, ["review", *args, "--db", str(db_path)])


def case_of(db_path, entity_id: str) -> dict:
    with duckdb.connect(str(db_path), read_only=True) as con:
        cursor = con.execute("SELECT * FROM abuse_cases WHERE list_contains(entity_ids, ?)", [entity_id])
        row = cursor.fetchone()
        return None if row is None else dict(zip([column[0] for column in cursor.description], row, strict=False))


def query(db_path, sql: str, params=()):
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


# --- list -------------------------------------------------------------------------------------


def test_list_shows_the_open_cases_highest_score_first(warehouse):
    e1, e2 = case_of(warehouse, "E1"), case_of(warehouse, "E2")
    assert e1["signal_codes"] == ["SERIAL_REFUNDER"] and e1["entity_ids"] == ["E1", "E3"]
    result = review(warehouse, "list", width=200)
    assert result.exit_code == 0, result.output
    assert "2 open case(s)" in result.output
    row = next(line for line in result.output.splitlines() if line.startswith(e1["case_id"]))
    assert re.search(r"medium\s+50\.0\s+E1, E3\s+SERIAL_REFUNDER\s+3\s+300\.00 USD\s+open", row)
    listed = [line.split()[0] for line in result.output.splitlines() if line.startswith("C-")]
    assert listed == [case["case_id"] for case in sorted((e1, e2), key=lambda case: (-case["score"], case["case_id"]))]


# The sample's cases: id, score, signals, refunded, expected loss, held refunds; decided as above.
#   C-fe82d85024fc  76.0  PROMO_REFUNDS, REFUND_CYCLE               3,808.10 CNY  2,894.16 CNY  0
#   C-ced0b9938134  72.0  LINKED_TO_SUSPENDED, REFUND_VELOCITY        899.00 CNY  2,806.56 CNY  1
#   C-125002de9281  80.0  REFUND_BEFORE_SUSPENSION (confirmed)      1,999.00 CNY  1,599.20 CNY  0
#   C-e66a14d86988  79.0  LINKED_ENTITIES, REFUND_VELOCITY          1,198.00 CNY    946.42 CNY  1
#   C-6d8fb39960a9  65.0  REFUND_VELOCITY, USAGE_SHIFT (needs_info)   899.00 CNY    584.35 CNY  1
#   C-f10c347e55ba  50.0  SERIAL_REFUNDER                             328.00 USD    164.00 USD  0
#   C-9c7e07232743  30.0  REFUND_VELOCITY (false_positive)             29.00 USD      8.70 USD  0
FE, CE, C1, E6, D8, F1, C9 = (
    "C-fe82d85024fc",
    "C-ced0b9938134",
    "C-125002de9281",
    "C-e66a14d86988",
    "C-6d8fb39960a9",
    "C-f10c347e55ba",
    "C-9c7e07232743",
)


@pytest.mark.parametrize(
    "args, listed, more",
    [
        ((), [FE, CE, E6, D8, F1], 0),  # open, reopened, needs_info; by expected loss
        (("--all",), [FE, CE, C1, E6, D8, F1, C9], 0),
        (("--status", "confirmed"), [C1], 0),
        (("--status", "false_positive", "--status", "confirmed"), [C1, C9], 0),
        (("--status", "needs_info"), [D8], 0),
        (("--signal", "REFUND_VELOCITY"), [CE, E6, D8], 0),
        (("--signal", "refund_velocity", "--signal", "SERIAL_REFUNDER", "--all"), [CE, E6, D8, F1, C9], 0),
        (("--min-score", "72"), [FE, CE, E6], 0),
        (("--min-score", "72.1", "--all"), [FE, C1, E6], 0),
        (("--sort", "score"), [E6, FE, CE, D8, F1], 0),
        (("--sort", "score", "--all"), [C1, E6, FE, CE, D8, F1, C9], 0),
        (("--sort", "money"), [FE, E6, CE, D8, F1], 0),  # refunded; 899.00 CNY twice: score breaks the tie
        (("--sort", "loss", "--all"), [FE, CE, C1, E6, D8, F1, C9], 0),
        (("--pending",), [CE, E6, D8], 0),
        (("--limit", "2"), [FE, CE], 3),
        (("--limit", "0", "--all"), [FE, CE, C1, E6, D8, F1, C9], 0),
        (("--pending", "--sort", "score", "--limit", "1"), [E6], 2),
        (("--signal", "USAGE_SHIFT", "--min-score", "70"), [], 0),
    ],
)
@pytest.mark.parametrize("width", [80, 200])
def test_list_filters_sorts_and_pages_the_cases_within_the_terminal_width(sample, args, listed, more, width):
    result = review(sample, "list", *args, width=width)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines if line.startswith("C-")] == listed
    assert max(len(line) for line in lines) <= width
    assert lines[0].startswith(f"{len(listed) + more} ")
    assert [line for line in lines if "more" in line] == ([f"… {more} more (--limit 0 lists them all)"] if more else [])
    headers = [line for line in lines if line.startswith("case ")]
    assert len(headers) == (1 if listed else 0)
    if width == 200 and listed:
        assert headers[0].split() == [
            "case",
            "severity",
            "score",
            "entities",
            "signals",
            "refunds",
            "refunded",
            "disposition",
            "expected",
            "loss",
            "held",
            "days",
            "open",
        ]


@pytest.mark.parametrize(
    "args, width, fe82_row",
    [
        (
            ("--all",),
            200,
            r"high\s+76\.0\s+ENT0010544\s+PROMO_REFUNDS, REFUND_CYCLE\s+2\s+3,808\.10 CNY\s+open\s+"
            r"2,894\.16 CNY\s+0\s+0",
        ),
        ((), 80, r"76\.0\s+PROMO_REFUN…\s+open\s+2,894\.16 CNY\s+0\s+0"),
        (("--all",), 80, r"76\.0\s+PROMO_REFUNDS, REFU…\s+open\s+2,894\.16 CNY\s+0"),
        ((), 70, r"76\.0\s+PROMO_[^…]*…\s+open\s+2,894\.16 CNY\s+0"),  # open and needs_info: days go first
        (("--status", "open"), 70, r"76\.0\s+PROMO_[^…]*…\s+2,894\.16 CNY\s+0\s+0"),  # all open: disposition goes
        (("--all",), 60, r"76\.0\s+PROMO_REFUNDS, REFUND…\s+2,894\.16 CNY"),
        (("--sort", "money"), 80, r"76\.0\s+PROMO_[^…]*…\s+3,808\.10 CNY\s+open\s+2,894\.16 CNY"),  # sorted by: kept
    ],
)
def test_list_on_a_narrow_terminal_leaves_out_columns_and_cuts_long_cells_with_an_ellipsis(
    sample, args, width, fe82_row
):
    lines = review(sample, "list", *args, width=width).stdout.splitlines()
    assert max(len(line) for line in lines) <= width
    assert re.fullmatch(rf"{FE}\s+{fe82_row}", next(line for line in lines if line.startswith(FE)))


@pytest.mark.parametrize(
    "args, listed, more",
    [
        (("--format", "csv"), [FE, CE, E6, D8, F1], 0),  # every case: no default limit
        (("--format", "csv", "--all", "--sort", "score"), [C1, E6, FE, CE, D8, F1, C9], 0),
        (("--format", "json", "--limit", "2"), [FE, CE], 3),
        (("--format", "json", "--signal", "SERIAL_REFUNDER"), [F1], 0),
    ],
)
def test_list_as_csv_or_json_gives_every_field_of_the_listed_cases(sample, args, listed, more):
    result = review(sample, "list", *args, width=40)
    assert result.exit_code == 0, result.output
    if "csv" in args:
        rows = list(csv.DictReader(result.stdout.splitlines()))
        by_id = {row["case_id"]: row for row in rows}
        assert by_id[E6] == {
            "case_id": E6,
            "severity": "high",
            "score": "79.0",
            "entity_ids": "ENT0011563; ENT0011618; ENT0011702",
            "signal_codes": "LINKED_ENTITIES; REFUND_VELOCITY",
            "refund_count": "2",
            "refunded": "1198.00 CNY",
            "disposition": "open",
            "disposition_reason": "",
            "expected_loss": "946.42 CNY",
            "held_refunds": "1",
            "days_open": "0",
        }
        assert by_id[D8]["disposition_reason"] == "'=ask the account manager"  # neutralised, as in the exports
    else:
        rows = json.loads(result.stdout)
        if F1 in listed:
            assert rows[0] == {
                "case_id": F1,
                "severity": "medium",
                "score": 50.0,
                "entity_ids": ["ENT0020117"],
                "signal_codes": ["SERIAL_REFUNDER"],
                "refund_count": 3,
                "refunded": [{"currency": "USD", "amount": 328.0}],
                "disposition": "open",
                "disposition_reason": None,
                "expected_loss": [{"currency": "USD", "amount": 164.0}],
                "held_refunds": 0,
                "days_open": 0,
            }
    assert [row["case_id"] for row in rows] == listed
    notice = f"refund-recon: {more} more case(s) not listed (--limit 0 lists them all)\n"
    assert result.stderr == (notice if more else "")


@pytest.mark.parametrize(
    "args, message",
    [
        (("--signal", "NO_SUCH_SIGNAL"), "no signal NO_SUCH_SIGNAL (known: LINKED_ENTITIES"),
        (("--status", "confirmed", "--all"), "--all and --status"),
        (("--min-score", "101"), "--min-score"),
        (("--sort", "age"), "--sort"),
        (("--limit", "-1"), "--limit"),
        (("--format", "xml"), "--format"),
    ],
)
def test_list_refuses_options_it_cannot_honour_with_exit_2(sample, args, message):
    result = review(sample, "list", *args)
    assert result.exit_code == 2 and message in result.output, result.output


# --- show -------------------------------------------------------------------------------------


def test_show_prints_evidence_entities_refunds_and_a_timeline_in_time_order(warehouse):
    result = review(warehouse, "show", case_of(warehouse, "E1")["case_id"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "live_refunds: 3" in out and "threshold: 3" in out
    assert "- refund_id: R1, order_id: O1" in out and '{"' not in out  # readable, not raw JSON
    assert "account A1: suspended (overdue_payment) since 2026-03-25 09:00:00" in out
    assert f"shares {MASKED} with E3 (links)" in out
    assert re.search(r"\*\s+R1\s+O1\s+A1\s+E1\s+2026-03-02 12:00:00\s+paid\s+100\.00 USD", out)
    timeline = [line.split() for line in out.split("Timeline (billing time, Asia/Shanghai)")[1].splitlines() if line]
    times = [f"{day} {clock}" for day, clock, *_ in timeline]
    assert times == sorted(times) and len(times) == 11  # 4 purchases, 3 requests, 3 payouts, 1 status
    events = [" ".join(words[2:4]) for words in timeline]
    assert events[:4] == ["purchase order", "purchase order", "refund requested", "refund paid"]
    assert ["2026-03-25", "09:00:00", "account", "suspended", "account", "A1", "(overdue_payment)"] in timeline
    assert FINGERPRINT not in out and MASKED in out


def test_show_prints_a_signal_once_with_the_evidence_its_entities_share_once(sample):
    """LINKED_ENTITIES fires for the 3 entities of C-e66a14d86988's group with the same pairs and
    window, each with its own shared fingerprints: one signal, what they share once, what differs
    under the entity it belongs to."""
    out = review(sample, "show", "C-e66a14d86988").output
    signals = out.split("Signals\n")[1].split("\n\n")[0].splitlines()
    assert [line for line in signals if line.startswith("  LINKED")] == [
        "  LINKED_ENTITIES  entities ENT0011563, ENT0011618, ENT0011702  weight 0.7  "
        "(the one-at-a-time rule dodged through entities sharing a payment instrument)"
    ]
    for shared in (
        "    refunds: RF2603270022, RF2603310023",
        "    group_id: G-ENT0011563",
        "    refund_pairs:",
        "    refund_window_days: 5",
        "    window_days: 180",
    ):
        assert signals.count(shared) == 1, shared
    assert [line.strip() for line in signals if line.startswith("    entity ")] == [
        "entity ENT0011563:",
        "entity ENT0011618:",
        "entity ENT0011702:",
    ]
    assert out.count("billing_days_apart: 4") == 1 and out.count("shared_fingerprints:") == 3
    assert "  REFUND_VELOCITY  entity ENT0011702  weight 0.3" in out


def test_show_and_the_report_give_a_case_the_same_timeline(warehouse):
    """One case_timeline (sql/report/case_timeline.sql): the same events, times and details."""
    case_id = case_of(warehouse, "E1")["case_id"]
    out = review(warehouse, "show", case_id).output
    shown = [
        (line[2:18], line[23:41].strip(), line[42:])
        for line in out.split("Timeline (billing time, Asia/Shanghai)\n")[1].split("\n\n")[0].splitlines()
    ]
    page = (warehouse.parent / f"report-{AS_OF}.html").read_text(encoding="utf-8")
    article = re.search(rf'<article class="case" id="case-{case_id}">(.*?)</article>', page, re.S).group(1)
    events = re.search(r'<table class="mini timeline-events">.*?<tbody>(.*?)</tbody>', article, re.S).group(1)
    in_report = [
        tuple(html.unescape(cell) for cell in cells)
        for cells in re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", events)
    ]
    assert len(shown) == 11 and shown == in_report


def test_show_of_an_unknown_case_exits_1(warehouse):
    result = review(warehouse, "show", "C-000000000000")
    assert result.exit_code == 1
    assert "no case C-000000000000" in result.output


# --- decide -----------------------------------------------------------------------------------


def test_a_decision_survives_a_rerun_of_the_same_night(warehouse, tmp_path):
    e1, e2 = case_of(warehouse, "E1")["case_id"], case_of(warehouse, "E2")["case_id"]
    assert (
        review(
            warehouse,
            "decide",
            e1,
            "--disposition",
            "false_positive",
            "--reviewer",
            "alice",
            "--note",
            "known reseller",
        ).exit_code
        == 0
    )
    assert review(warehouse, "decide", e2, "--disposition", "confirmed", "--reviewer", "bob").exit_code == 0
    run(Settings(), tmp_path / "night1", AS_OF, warehouse)
    case = case_of(warehouse, "E1")
    assert (case["disposition"], case["reviewer"], case["disposition_reason"]) == (
        "false_positive",
        "alice",
        "known reseller",
    )
    assert case_of(warehouse, "E2")["disposition"] == "confirmed"
    listed = review(warehouse, "list").output
    assert e1 not in listed and e2 not in listed and "0 open case(s)" in listed
    assert re.search(rf"{e1}.*false_positive", review(warehouse, "list", "--all").output)
    stored = query(
        warehouse,
        "SELECT disposition, reviewer, note, refund_ids, signal_codes FROM case_dispositions WHERE case_id = ?",
        [e1],
    )
    assert stored == [("false_positive", "alice", "known reseller", ["R1", "R2", "R3"], ["SERIAL_REFUNDER"])]


def test_a_false_positive_reopens_when_a_new_refund_arrives(warehouse, tmp_path):
    e1 = case_of(warehouse, "E1")["case_id"]
    review(warehouse, "decide", e1, "--disposition", "false_positive", "--reviewer", "alice")
    later = night_exports(
        tmp_path / "night2",
        extra_orders=[purchase(order_id="O4", purchased_at="2026-04-05 10:00:00")],
        extra_refunds=[
            refund(
                refund_id="R4", order_id="O4", requested_at="2026-04-06 12:00:00", processed_at="2026-04-07 12:00:00"
            )
        ],
    )
    run(Settings(), later, date(2026, 4, 10), warehouse)
    case = case_of(warehouse, "E1")
    assert case["case_id"] == e1 and case["disposition"] == "reopened"
    assert "R4" in case["disposition_reason"]
    listed = review(warehouse, "list").output
    assert re.search(rf"{e1}.*reopened", listed)
    assert re.search(r"reopened: new evidence .*refunds R4", listed)


def test_a_reopened_case_shows_no_reviewer_or_time_of_the_decision_it_reopened(warehouse, tmp_path):
    """The warehouse row and the night's abuse_cases.csv: the false positive is history (the reason
    says when it was taken); the reopened case waits for a new decision."""
    e1 = case_of(warehouse, "E1")["case_id"]
    review(warehouse, "decide", e1, "--disposition", "false_positive", "--reviewer", "alice", "--note", "reseller")
    later = night_exports(
        tmp_path / "night2",
        extra_orders=[purchase(order_id="O4", purchased_at="2026-04-05 10:00:00")],
        extra_refunds=[
            refund(
                refund_id="R4", order_id="O4", requested_at="2026-04-06 12:00:00", processed_at="2026-04-07 12:00:00"
            )
        ],
    )
    run(Settings(), later, date(2026, 4, 10), warehouse)
    case = case_of(warehouse, "E1")
    assert (case["disposition"], case["reviewer"], case["decided_at"]) == ("reopened", None, None)
    exported = warehouse.parent / "exports" / "csv" / "as_of=2026-04-10" / "abuse_cases.csv"
    with exported.open(encoding="utf-8", newline="") as stream:
        row = next(row for row in csv.DictReader(stream) if row["case_id"] == e1)
    assert (row["disposition"], row["reviewer"], row["decided_at"]) == ("reopened", "", "")
    assert re.fullmatch(
        r"new evidence since the false positive of 2026-\d\d-\d\d: refunds R4", row["disposition_reason"]
    )


def test_decide_on_an_unknown_case_exits_1_and_records_nothing(warehouse):
    result = review(warehouse, "decide", "C-000000000000", "--disposition", "confirmed", "--reviewer", "alice")
    assert result.exit_code == 1
    assert query(warehouse, "SELECT count(*) FROM case_dispositions") == [(0,)]


def test_signal_precision_reflects_confirmed_and_false_positive(warehouse):
    review(warehouse, "decide", case_of(warehouse, "E1")["case_id"], "--disposition", "confirmed", "--reviewer", "a")
    review(
        warehouse, "decide", case_of(warehouse, "E2")["case_id"], "--disposition", "false_positive", "--reviewer", "b"
    )
    rows = query(
        warehouse,
        "SELECT confirmed, false_positive, needs_info, precision FROM signal_precision "
        "WHERE signal_code = 'SERIAL_REFUNDER'",
    )
    assert rows == [(1, 1, 0, 0.5)]


# --- export and import ------------------------------------------------------------------------


def test_export_then_import_round_trips_decisions_and_neutralises_formulas(warehouse, tmp_path):
    e1, e2 = case_of(warehouse, "E1")["case_id"], case_of(warehouse, "E2")["case_id"]
    review(warehouse, "decide", e1, "--disposition", "confirmed", "--reviewer", "alice", "--note", "=1+1")
    review(warehouse, "decide", e2, "--disposition", "needs_info", "--reviewer", "bob", "--note", '@ask, "ops"')
    out = tmp_path / "cases.csv"
    assert review(warehouse, "export", "--out", str(out)).exit_code == 0
    with out.open(encoding="utf-8", newline="") as stream:
        rows = {row["case_id"]: row for row in csv.DictReader(stream)}
    assert rows[e1]["note"] == "'=1+1" and rows[e1]["entity_ids"] == "E1; E3"
    assert rows[e1]["refund_ids"] == "R1; R2; R3"
    # money as numbers a spreadsheet sums, the currency in its own column (#14)
    assert (rows[e1]["currency"], rows[e1]["amount_refunded"], rows[e1]["amounts_by_currency"]) == (
        "USD",
        "300.00",
        "300.00 USD",
    )
    assert Decimal(rows[e1]["amount_at_risk"]) >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", rows[e1]["decided_at"])

    fresh = tmp_path / "fresh.duckdb"
    run(Settings(), tmp_path / "night1", AS_OF, fresh)
    result = review(fresh, "import", str(out))
    assert result.exit_code == 0, result.output
    assert "2 decision(s) imported" in result.output
    decisions = "SELECT case_id, disposition, reviewer, note, decided_at FROM case_dispositions ORDER BY case_id"
    assert query(fresh, decisions) == query(warehouse, decisions)
    assert case_of(fresh, "E1")["disposition"] == "confirmed"
    again = review(fresh, "import", str(out))
    assert again.exit_code == 0 and "0 decision(s) imported, 2 already recorded" in again.output


def test_import_reports_bad_rows_by_line_and_imports_the_good_ones(warehouse, tmp_path):
    e1, e2 = case_of(warehouse, "E1")["case_id"], case_of(warehouse, "E2")["case_id"]
    sheet = tmp_path / "decisions.csv"
    sheet.write_text(
        "case_id,disposition,reviewer,note\n"
        f'{e1},false_positive,carol,"two lines\nof note"\n'  # lines 2-3
        "C-000000000000,confirmed,carol,\n"  # line 4
        f"{e2},maybe,carol,\n"  # line 5
        f"{e2},open,,\n",  # line 6: no decision yet
        encoding="utf-8",
    )
    result = review(warehouse, "import", str(sheet))
    assert result.exit_code == 1
    assert "1 decision(s) imported" in result.output and "1 row(s) without a decision" in result.output
    assert "line 4: unknown case_id 'C-000000000000'" in result.output
    assert "line 5: disposition 'maybe'" in result.output
    assert case_of(warehouse, "E1")["disposition"] == "false_positive"
    assert query(warehouse, "SELECT reviewer, note FROM case_dispositions") == [("carol", "two lines\nof note")]


# --- the warehouse ----------------------------------------------------------------------------


def test_a_missing_warehouse_exits_1_without_a_traceback(tmp_path):
    result = review(tmp_path / "nowhere.duckdb", "list")
    assert result.exit_code == 1
    assert "no warehouse here" in result.output and "Traceback" not in result.output


def test_a_warehouse_locked_by_a_running_job_exits_1_with_one_line(warehouse):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.read()",
            str(warehouse),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        result = review(warehouse, "list")
    finally:
        holder.communicate("")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "cannot open the warehouse" in result.output


# --- hostile decision times and text (issue #10) ---------------------------------------------


@pytest.mark.parametrize(
    "decided_at, problem",
    [
        ("9999-12-31", "is in the future"),
        ("9999-12-31T23:59:59+00:00", "is in the future"),
        ("{in_10_minutes}", "is in the future"),
        ("0001-01-01", "is before 2000-01-01"),
        ("1999-12-31T23:59:59+00:00", "is before 2000-01-01"),
        ("0001-01-01T00:00:00+08:00", "is before 2000-01-01"),
        ("2000-01-01T00:00:00+00:00", None),
        ("2026-03-31T10:00:00", None),
        ("{in_2_minutes}", None),
    ],
)
def test_import_takes_a_decision_time_only_if_it_is_a_real_past_instant(warehouse, tmp_path, decided_at, problem):
    from datetime import datetime, timedelta

    now = datetime.now(UTC)
    decided_at = decided_at.format(
        in_10_minutes=(now + timedelta(minutes=10)).isoformat(), in_2_minutes=(now + timedelta(minutes=2)).isoformat()
    )
    e1, e2 = case_of(warehouse, "E1")["case_id"], case_of(warehouse, "E2")["case_id"]
    sheet = tmp_path / "decisions.csv"
    sheet.write_text(
        "case_id,disposition,reviewer,note,decided_at\n"
        f"{e1},confirmed,carol,,{decided_at}\n"  # line 2
        f"{e2},confirmed,carol,,\n",
        encoding="utf-8",
    )  # line 3: now
    result = review(warehouse, "import", str(sheet))
    imported = {case for (case,) in query(warehouse, "SELECT case_id FROM case_dispositions")}
    if problem is None:
        assert result.exit_code == 0, result.output
        assert imported == {e1, e2}
    else:
        assert result.exit_code == 1
        assert f"line 2: decided_at {decided_at!r} {problem}" in result.output
        assert imported == {e2} and "Traceback" not in result.output


@pytest.mark.parametrize("stored", ["9999-12-31 23:59:59+00", "0001-01-01 00:00:00+00", "infinity", "-infinity"])
def test_show_and_export_survive_a_stored_decision_time_out_of_range(warehouse, tmp_path, stored):
    e1 = case_of(warehouse, "E1")["case_id"]
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "INSERT INTO case_dispositions (case_id, disposition, reviewer, note, decided_at) "
            "VALUES (?, 'confirmed', 'mallory', NULL, CAST(? AS TIMESTAMPTZ))",
            [e1, stored],
        )
    shown = review(warehouse, "show", e1)
    assert shown.exit_code == 0, shown.output
    assert "confirmed by mallory" in shown.output
    assert review(warehouse, "export", "--out", str(tmp_path / "cases.csv")).exit_code == 0


CONTROL_TEXT = "\x1b[2J\x1b]0;owned\x07back\bspace\rreturn\x9b31m\u202eevil"


def raw_controls(text: str) -> list[str]:
    return [char for char in text if (ord(char) < 32 and char != "\n") or 127 <= ord(char) < 160 or char == "\u202e"]


def test_list_and_show_print_control_characters_escaped(warehouse):
    e1 = case_of(warehouse, "E1")["case_id"]
    assert (
        review(
            warehouse, "decide", e1, "--disposition", "needs_info", "--reviewer", CONTROL_TEXT, "--note", CONTROL_TEXT
        ).exit_code
        == 0
    )
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "UPDATE abuse_cases SET entity_ids = list_append(entity_ids, ?) WHERE case_id = ?", [CONTROL_TEXT, e1]
        )
    for args in (("list",), ("list", "--all"), ("show", e1)):
        result = review(warehouse, *args, width=250)
        assert result.exit_code == 0, result.output
        assert raw_controls(result.output) == []
        assert "\\x1b[2J\\x1b]0;owned\\x07back\\x08space\\rreturn\\x9b31m\\u202eevil" in result.output
