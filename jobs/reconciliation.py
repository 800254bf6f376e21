"""Finance tie-out: daily_reconciliation and the numbered invariants (issue #6). IN PROGRESS."""

from __future__ import annotations

import duckdb


def reconcile(con: duckdb.DuckDBPyConnection) -> None:
    """Build `daily_reconciliation` and `invariant_results`; raise InvariantFailed on a failure."""
