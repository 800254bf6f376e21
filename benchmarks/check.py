"""The checker: do a peer (pandas or Polars) and the job flag the same refunds for the same money?

Both sides are reduced to {(refund_id, rule_code): amount_at_risk}, amounts as Decimal to the
cent; every refund/code pair on one side only, and every amount that differs, is a difference.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd

Flags = dict[tuple[str, str], Decimal]
CENT = Decimal("0.01")


def job_flags(con: duckdb.DuckDBPyConnection) -> Flags:
    """The job's refund_flags, from its warehouse or its run's connection."""
    rows = con.execute("SELECT refund_id, rule_code, amount_at_risk FROM refund_flags").fetchall()
    return {(refund_id, code): Decimal(amount).quantize(CENT) for refund_id, code, amount in rows}


def job_quarantine(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """(source, line) of every row the job quarantined: the rows the peer must drop too."""
    return con.execute("SELECT DISTINCT source, line FROM validation_errors ORDER BY ALL").df()


def peer_flags(frame: pd.DataFrame) -> Flags:
    """The peer's flags (a DataFrame of refund_id, rule_code, amount_at_risk) as a mapping."""
    return {
        (refund_id, code): Decimal(str(amount)).quantize(CENT)
        for refund_id, code, amount in frame[["refund_id", "rule_code", "amount_at_risk"]].itertuples(index=False)
    }


def differences(left: Flags, right: Flags, names: tuple[str, str] = ("peer", "job")) -> list[str]:
    """One line per disagreement, in refund and code order; empty when they agree."""
    lines = []
    for key in sorted(left.keys() | right.keys()):
        refund_id, code = key
        if key not in right:
            lines.append(f"{refund_id} {code}: only the {names[0]} flags it (at risk {left[key]})")
        elif key not in left:
            lines.append(f"{refund_id} {code}: only the {names[1]} flags it (at risk {right[key]})")
        elif left[key] != right[key]:
            lines.append(f"{refund_id} {code}: at risk {left[key]} ({names[0]}) vs {right[key]} ({names[1]})")
    return lines


def compare(peer: pd.DataFrame, con: duckdb.DuckDBPyConnection) -> list[str]:
    """The differences between the peer's flags and the job's (its warehouse or run connection)."""
    return differences(peer_flags(peer), job_flags(con))


def compare_file(flags: Path, con: duckdb.DuckDBPyConnection) -> list[str]:
    """The differences between a peer's flags CSV (refund_id, rule_code, amount_at_risk) and the job's."""
    return compare(pd.read_csv(flags, dtype=str, keep_default_na=False), con)
