"""Tiny explicit exports for tests: one valid row of each export, overridden per test.

    outcome = run_night(tmp_path, purchases=[purchase(order_id="O1")],
                        refunds=[refund(requested_at="2026-03-05 23:59:30")])
    assert outcome.codes("R1") == {"PAST_WINDOW"}

Timestamps without an offset are billing time (Asia/Shanghai, UTC+8), as in the exports.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from jobs.config import Settings
from jobs.engine.runner import Runner
from jobs.pipeline import run
from jobs.stages.schemas import EXPORTS

AS_OF = date(2026, 3, 31)


# SPEC section 4's ten rule codes, in its order: the codes every test expects, written once.
SPEC_RULE_CODES = (
    "PAST_WINDOW",
    "MINUTES_USED",
    "CONCURRENT_REFUND",
    "ACCOUNT_SUSPENDED",
    "COUPON_REFUNDED",
    "PATH_MISMATCH",
    "DUPLICATE_REFUND",
    "USAGE_AFTER_REFUND",
    "UNDER_REFUNDED",
    "REJECTED_WITH_PAYOUT",
)


def purchase(**overrides) -> dict:
    """A valid order: 100.00 USD paid in cash, bought 2026-03-01 10:00 billing time."""
    row = dict(
        order_id="O1",
        account_id="A1",
        entity_id="E1",
        sdkappid=1400000001,
        product="call",
        package_kind="package",
        edition="standard",
        gifted_minutes=1000,
        purchased_at="2026-03-01 10:00:00",
        currency="USD",
        list_price="100.00",
        discount_amount="0.00",
        coupon_amount="0.00",
        paid_cash_credit="100.00",
        paid_commission_credit="0.00",
        paid_free_credit="0.00",
        payment_fingerprint="",
    )
    return row | overrides


def usage(**overrides) -> dict:
    """A valid usage record of O1: 10 minutes of audio on 2026-03-02."""
    row = dict(
        usage_id="U1",
        order_id="O1",
        sdkappid=1400000001,
        started_at="2026-03-02 12:00:00",
        minutes="10",
        media_type="audio",
    )
    return row | overrides


def refund(**overrides) -> dict:
    """A valid, compliant refund of O1: requested on day 2, paid in full the next day."""
    row = dict(
        refund_id="R1",
        order_id="O1",
        requested_at="2026-03-02 12:00:00",
        status="paid",
        processed_at="2026-03-03 12:00:00",
        currency="USD",
        refund_cash_credit="100.00",
        refund_commission_credit="0.00",
        refund_free_credit="0.00",
        refund_amount="100.00",
    )
    return row | overrides


def status(**overrides) -> dict:
    """A status change of A1."""
    row = dict(account_id="A1", status="suspended", reason="content_violation", effective_at="2026-03-02 09:00:00")
    return row | overrides


PLAIN_LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ [A-Z]+ refund_recon: ")


def error_lines(stderr: str) -> list[str]:
    """A command's standard error without the plain log lines a run writes off a terminal."""
    return [line for line in stderr.splitlines() if not PLAIN_LOG_LINE.match(line)]


def write_exports(folder: Path, purchases=(), usage=(), refunds=(), account_status=()) -> Path:
    """Write the four exports as CSV into `folder` (created) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"purchases": purchases, "usage": usage, "refunds": refunds, "account_status": account_status}
    for stem, rows in tables.items():
        extra = [name for row in rows for name in row if name not in EXPORTS[stem].columns]
        columns = list(EXPORTS[stem].columns) + list(dict.fromkeys(extra))  # extra columns go last
        with (folder / f"{stem}.csv").open("w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="raise")
            writer.writeheader()
            writer.writerows(rows)
    return folder


@dataclass
class Night:
    """The outcome of one run, read from its in-memory working database."""

    runner: Runner

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self.runner.engine.con

    def codes(self, refund_id: str) -> set[str]:
        """The rule codes flagged on a refund."""
        rows = self.con.execute("SELECT rule_code FROM refund_flags WHERE refund_id = ?", [refund_id]).fetchall()
        return {code for (code,) in rows}

    def flag(self, refund_id: str, code: str) -> dict:
        """One flag's amount_at_risk (as a string) and evidence (parsed)."""
        amount, evidence = self.con.execute(
            "SELECT CAST(amount_at_risk AS VARCHAR), evidence FROM refund_flags WHERE refund_id = ? AND rule_code = ?",
            [refund_id, code],
        ).fetchone()
        return {"amount_at_risk": amount, "evidence": json.loads(evidence)}

    def verdict(self, refund_id: str) -> dict:
        """The refund's verdict row: verdict, rule_codes, amount_at_risk (string)."""
        row = self.con.execute(
            "SELECT verdict, rule_codes, CAST(amount_at_risk AS VARCHAR) FROM refund_verdicts WHERE refund_id = ?",
            [refund_id],
        ).fetchone()
        return None if row is None else {"verdict": row[0], "rule_codes": row[1], "amount_at_risk": row[2]}

    def errors(self, source: str) -> list[dict]:
        """The quarantine entries of one export, in line order."""
        rows = self.con.execute(
            'SELECT line, "column", "check", value, message FROM quarantine WHERE source = ? ORDER BY line, "check"',
            [source],
        ).fetchall()
        return [dict(zip(("line", "column", "check", "value", "message"), row, strict=False)) for row in rows]

    def loaded_keys(self, table: str, key: str) -> list:
        """The key values of tonight's loaded rows of an export, in line order."""
        return [
            value for (value,) in self.con.execute(f"SELECT {key} FROM delivered_{table} ORDER BY _line").fetchall()
        ]


def run_night(tmp_path: Path, *, as_of: date = AS_OF, settings: Settings | None = None, **exports) -> Night:
    """Write the given exports and run the job on them without publishing."""
    folder = write_exports(tmp_path / "exports", **exports)
    settings = settings or Settings(max_bad_row_fraction=1.0)
    return Night(run(settings, folder, as_of, db_path=None).runner)
