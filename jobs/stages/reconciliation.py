"""Finance tie-out: `daily_reconciliation` and the numbered invariants (issue #6).

`daily_reconciliation` (`sql/reconciliation/daily_reconciliation.sql`) gives finance one row
per billing day, product and currency: purchases, refunds by status, verdicts, money at risk
by verdict and by rule, the amount recoverable and the amount owed to customers.

The invariants (`sql/invariants/Inn_<name>.sql`, `@invariant` steps run in number order) prove
that the numbers tie out: rows in = loaded + quarantined, one verdict per refund, refunds paid
in the export = the sum over verdicts, and so on. Each file says below its header what it
proves and returns one row `(passed, expected, actual, detail)`. The results of every run go to
`invariant_results`; a failed invariant raises `InvariantFailed`, which stops the run before
anything is published. See docs/reconciliation.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow

from jobs.catalog import CATALOG
from jobs.engine.runner import Runner
from jobs.engine.steps import Step, StepError, discover, step

_RESULT_COLUMNS = ("passed", "expected", "actual", "detail")
_RESULTS_SCHEMA = pyarrow.schema(
    [
        ("run_id", pyarrow.string()),
        ("as_of", pyarrow.date32()),
        ("position", pyarrow.int32()),
        ("invariant", pyarrow.string()),
        ("name", pyarrow.string()),
        ("description", pyarrow.string()),
        ("passed", pyarrow.bool_()),
    ]
    + [(name, pyarrow.string()) for name in ("expected", "actual", "detail")]
)


class InvariantFailed(Exception):
    """One or more invariants failed; the run is stopped and nothing is written."""


@dataclass(frozen=True)
class InvariantResult:
    invariant: Step
    passed: bool
    expected: str | None
    actual: str | None
    detail: str | None

    def summary(self) -> str:
        """`I05 every_visible_refund_has_exactly_one_verdict (expected ...; actual ...; detail)`."""
        return (
            f"{self.invariant.code} {self.invariant.meta['name']} (expected {self.expected}; "
            f"actual {self.actual}; {self.detail})"
        )


def load_invariants() -> tuple[Step, ...]:
    """Every invariant of `sql/invariants/`, in number order, each file named `<code>_<name>.sql`."""
    invariants = tuple(sorted(discover("invariants"), key=lambda invariant: invariant.code))
    for invariant in invariants:
        if invariant.path.stem != f"{invariant.code}_{invariant.meta['name']}":
            raise StepError(f"{invariant.path}: an invariant file is named <code>_<name>.sql, as its header says")
    return invariants


def reconcile(runner: Runner) -> list[InvariantResult]:
    """Build `daily_reconciliation` and `invariant_results` from the invariants whose inputs are made
    (those of the decisions wait for `check_remaining_invariants`); raise InvariantFailed on a failure."""
    build_daily_reconciliation(runner)
    ready = tuple(invariant for invariant in INVARIANTS if set(invariant.reads) <= runner.made)
    return _enforced(check_invariants(runner, ready))


def check_remaining_invariants(runner: Runner) -> list[InvariantResult]:
    """The invariants `reconcile` left for later (tables built at publishing: the decisions), added to
    `invariant_results`; raise InvariantFailed on a failure."""
    checked = {code for (code,) in runner.engine.fetch("SELECT invariant FROM invariant_results", {})[1]}
    remaining = tuple(invariant for invariant in INVARIANTS if invariant.code not in checked)
    return _enforced(check_invariants(runner, remaining, append=True))


def _enforced(results: list[InvariantResult]) -> list[InvariantResult]:
    failed = [result for result in results if not result.passed]
    if failed:
        raise InvariantFailed(
            f"{len(failed)} of {len(results)} invariants failed, nothing was written: "
            + "; ".join(_one_line(result.summary()) for result in failed)
        )
    return results


def build_daily_reconciliation(runner: Runner) -> None:
    """(Re)build `daily_reconciliation_by_rule` and `daily_reconciliation`, whose at_risk_<rule>
    columns are the catalogue's rules."""
    at_risk_per_rule = ",\n".join(
        f"sum(amount_at_risk) FILTER (WHERE rule_code = '{rule.code}') AS rule_at_risk_{rule.code.lower()}"
        for rule in CATALOG.rules
    )
    runner.run(
        (
            step("reconciliation/daily_reconciliation_by_rule"),
            step("reconciliation/daily_reconciliation").render(at_risk_per_rule=at_risk_per_rule),
        )
    )


def check_invariants(
    runner: Runner, invariants: tuple[Step, ...] | None = None, append: bool = False
) -> list[InvariantResult]:
    """Run every invariant and store the outcome in `invariant_results` (replaced, or added to with
    `append`); return it.

    An invariant whose SQL fails (a table missing, say) counts as failed, with the error as
    its detail, so that a broken check can never pass silently.
    """
    results = [_check(runner, invariant) for invariant in (INVARIANTS if invariants is None else invariants)]
    earlier = runner.engine.read_table("invariant_results") if append else _RESULTS_SCHEMA.empty_table()
    rows = pyarrow.Table.from_pylist(
        [
            {
                "run_id": runner.params["run_id"],
                "as_of": runner.params["as_of"],
                "position": position,
                "invariant": result.invariant.code,
                "name": result.invariant.meta["name"],
                "description": result.invariant.description,
                "passed": result.passed,
                "expected": result.expected,
                "actual": result.actual,
                "detail": result.detail,
            }
            for position, result in enumerate(results, start=earlier.num_rows + 1)
        ],
        schema=_RESULTS_SCHEMA,
    )
    runner.engine.write_table("invariant_results", pyarrow.concat_tables([earlier.cast(_RESULTS_SCHEMA), rows]))
    return results


def _check(runner: Runner, invariant: Step) -> InvariantResult:
    cannot_run: tuple[type[Exception], ...] = (*runner.engine.query_errors, StepError)
    try:
        columns, rows = runner.fetch(invariant)
    except cannot_run as error:
        return InvariantResult(
            invariant, False, "the check to run", "an error", f"the check could not run: {_one_line(str(error))}"
        )
    if tuple(columns[:4]) != _RESULT_COLUMNS or len(rows) != 1:
        return InvariantResult(
            invariant,
            False,
            "one row (passed, expected, actual, detail)",
            f"{len(rows)} rows {tuple(columns)}",
            "the check is malformed",
        )
    passed, expected, actual, detail = rows[0][:4]
    return InvariantResult(invariant, passed is True, _text(expected), _text(actual), _text(detail))


def _text(value) -> str | None:
    return None if value is None else str(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


INVARIANTS = load_invariants()
