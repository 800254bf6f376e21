"""Abuse detection: signals about entities, linked groups, and cases for reviewers (SPEC 5).

After the rules, this stage links entities that share a payment fingerprint into groups
(`sql/abuse/`), runs each enabled signal, one file `sql/signals/<CODE>.sql` returning
`entity_id, evidence, refund_ids`, and folds the signals of each group into one case with a
score and the reviewers' standing disposition (`build_cases`, run where the warehouse's
decisions are at hand). Thresholds come from `[signals]` in the config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb

from .config import DEFAULT_SIGNAL_WEIGHTS, SignalSettings
from .sqlfiles import read_sql


@dataclass(frozen=True)
class Signal:
    """An abuse signal: SPEC section 5's, or one of ours beyond it."""

    code: str
    origin: str  # spec | extra
    summary: str


SIGNALS = (
    Signal("SERIAL_REFUNDER", "spec", "many live refunds in a short time"),
    Signal("REFUND_CYCLE", "spec", "refund, then buy the same product again within days, repeatedly"),
    Signal("PROMO_REFUNDS", "spec", "refunds of several discounted or couponed orders"),
    Signal("REFUND_BEFORE_SUSPENSION", "spec", "a refund shortly before a disqualifying suspension"),
    Signal("LINKED_ENTITIES", "spec", "the one-at-a-time rule dodged through entities sharing a payment instrument"),
    Signal("LINKED_TO_SUSPENDED", "extra", "another account of the entity or its group is suspended"),
    Signal("USAGE_SHIFT", "extra", "package untouched while free or pay-as-you-go minutes were used, then refunded"),
    Signal("REFUND_VELOCITY", "extra", "a day with far more refunds than usual across all entities"),
)
assert [signal.code for signal in SIGNALS] == list(DEFAULT_SIGNAL_WEIGHTS)

MAX_LINK_ROUNDS = 1000


def detect_abuse(con: duckdb.DuckDBPyConnection, settings: SignalSettings) -> None:
    """Leave `entity_groups`, `fingerprint_sharing` and `abuse_signals`."""
    for name, value in asdict(settings).items():
        if name not in ("disabled", "weights"):
            con.execute(f"SET VARIABLE {name} = ?", [value])
    _create_catalog(con, settings)
    _link_entities(con)
    con.execute("CREATE OR REPLACE TABLE signal_hits "
                "(signal_code VARCHAR, entity_id VARCHAR, evidence VARCHAR, refund_ids VARCHAR[])")
    for signal in SIGNALS:
        if signal.code in settings.disabled:
            continue
        con.execute(
            f"INSERT INTO signal_hits SELECT ?, entity_id, CAST(to_json(evidence) AS VARCHAR), refund_ids "
            f"FROM ({read_sql(f'signals/{signal.code}.sql')})",
            [signal.code],
        )
    con.execute(read_sql("abuse/30_abuse_signals.sql"))


def build_cases(con: duckdb.DuckDBPyConnection) -> None:
    """`abuse_cases` from tonight's signals, `case_dispositions` and `prior_case_members`."""
    con.execute(read_sql("abuse/40_abuse_cases.sql"))


def _link_entities(con) -> None:
    """Connected components of the entity - fingerprint graph, by label propagation."""
    con.execute(read_sql("abuse/10_fingerprint_sharing.sql"))
    con.execute(read_sql("abuse/20_entity_groups_start.sql"))
    for _ in range(MAX_LINK_ROUNDS):
        con.execute(read_sql("abuse/21_entity_groups_round.sql"))
        if con.execute("SELECT changed FROM label_changes").fetchone()[0] == 0:
            break
    else:
        raise RuntimeError(f"linked groups did not settle in {MAX_LINK_ROUNDS} rounds")
    con.execute(read_sql("abuse/22_entity_groups.sql"))


def _create_catalog(con, settings: SignalSettings) -> None:
    con.execute("CREATE OR REPLACE TABLE signal_catalog (position INTEGER, signal_code VARCHAR, origin VARCHAR, "
                "weight DOUBLE, enabled BOOLEAN, summary VARCHAR)")
    con.executemany(
        "INSERT INTO signal_catalog VALUES (?, ?, ?, ?, ?, ?)",
        [(position, signal.code, signal.origin, settings.weights[signal.code],
          signal.code not in settings.disabled, signal.summary)
         for position, signal in enumerate(SIGNALS, start=1)],
    )
