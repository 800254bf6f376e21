"""Finance tie-out: `daily_reconciliation` and the numbered invariants (issue #6).

`daily_reconciliation` (`sql/reconciliation/daily_reconciliation.sql`) gives finance one row
per billing day, product and currency: purchases, refunds by status, verdicts, money at risk
by verdict and by rule, the amount recoverable and the amount owed to customers.

The invariants (`sql/invariants/Inn_<name>.sql`, run in number order) prove that the numbers
tie out: rows in = loaded + quarantined, one verdict per refund, refunds paid in the export =
the sum over verdicts, and so on. Each file is headed by a comment saying what it proves and
returns one row `(passed, expected, actual, detail)`. The results of every run go to
`invariant_results`; a failed invariant raises `InvariantFailed`, which stops the run before
anything is published. See docs/reconciliation.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

from .sqlfiles import read_sql, sql_files

_FILE_NAME = re.compile(r"^(I\d{2})_([a-z0-9_]+)$")
_RESULT_COLUMNS = ("passed", "expected", "actual", "detail")


class InvariantFailed(Exception):
    """One or more invariants failed; the run is stopped and nothing is written."""


@dataclass(frozen=True)
class Invariant:
    """One numbered check, from `sql/invariants/<code>_<name>.sql`."""

    code: str  # I01, I02, ...
    name: str  # rows_in_equal_loaded_plus_quarantined, ...
    description: str  # the file's heading comment: what it proves
    sql: str


@dataclass(frozen=True)
class InvariantResult:
    invariant: Invariant
    passed: bool
    expected: str | None
    actual: str | None
    detail: str | None

    def summary(self) -> str:
        """`I05 every_visible_refund_has_exactly_one_verdict (expected ...; actual ...; detail)`."""
        return (f"{self.invariant.code} {self.invariant.name} (expected {self.expected}; "
                f"actual {self.actual}; {self.detail})")


def load_invariants() -> tuple[Invariant, ...]:
    """Every invariant of `sql/invariants/`, in number order."""
    invariants = []
    for path in sql_files("invariants"):
        match = _FILE_NAME.match(path.stem)
        if match is None:
            raise ValueError(f"{path.name}: an invariant file is named Inn_<snake_case_name>.sql")
        text = path.read_text(encoding="utf-8")
        invariants.append(Invariant(match[1], match[2], _heading(text), text))
    codes = [invariant.code for invariant in invariants]
    if len(set(codes)) != len(codes):
        raise ValueError(f"two invariant files share a number: {sorted(codes)}")
    return tuple(invariants)


def reconcile(con: duckdb.DuckDBPyConnection) -> list[InvariantResult]:
    """Build `daily_reconciliation` and `invariant_results`; raise InvariantFailed on a failure."""
    build_daily_reconciliation(con)
    results = check_invariants(con)
    failed = [result for result in results if not result.passed]
    if failed:
        raise InvariantFailed(
            f"{len(failed)} of {len(results)} invariants failed, nothing was written: "
            + "; ".join(_one_line(result.summary()) for result in failed)
        )
    return results


def build_daily_reconciliation(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)build `daily_reconciliation` from the run's working tables."""
    con.execute(read_sql("reconciliation/daily_reconciliation.sql"))


def check_invariants(con: duckdb.DuckDBPyConnection,
                     invariants: tuple[Invariant, ...] | None = None) -> list[InvariantResult]:
    """Run every invariant and store the outcome in `invariant_results` (replaced); return it.

    An invariant whose SQL fails (a table missing, say) counts as failed, with the error as
    its detail, so that a broken check can never pass silently.
    """
    results = [_check(con, invariant) for invariant in (INVARIANTS if invariants is None else invariants)]
    con.execute(
        "CREATE OR REPLACE TABLE invariant_results (run_id VARCHAR, as_of DATE, position INTEGER, "
        "invariant VARCHAR, name VARCHAR, description VARCHAR, passed BOOLEAN, expected VARCHAR, "
        "actual VARCHAR, detail VARCHAR)"
    )
    con.executemany(
        "INSERT INTO invariant_results VALUES (getvariable('run_id'), getvariable('as_of'), ?, ?, ?, ?, ?, ?, ?, ?)",
        [(position, result.invariant.code, result.invariant.name, result.invariant.description, result.passed,
          result.expected, result.actual, result.detail)
         for position, result in enumerate(results, start=1)],
    )
    return results


def _check(con, invariant: Invariant) -> InvariantResult:
    try:
        cursor = con.execute(invariant.sql)
        columns = tuple(column[0] for column in cursor.description)
        rows = cursor.fetchall()
    except duckdb.Error as error:
        return InvariantResult(invariant, False, "the check to run", "an error",
                               f"the check could not run: {_one_line(str(error))}")
    if columns[:4] != _RESULT_COLUMNS or len(rows) != 1:
        return InvariantResult(invariant, False, "one row (passed, expected, actual, detail)",
                               f"{len(rows)} rows {columns}", "the check is malformed")
    passed, expected, actual, detail = rows[0][:4]
    return InvariantResult(invariant, passed is True, _text(expected), _text(actual), _text(detail))


def _heading(text: str) -> str:
    """The comment lines a file starts with, joined into one paragraph."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return " ".join(line for line in lines if line)


def _text(value) -> str | None:
    return None if value is None else str(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


INVARIANTS = load_invariants()
