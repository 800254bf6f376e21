"""The data dictionary: every table and view the warehouse publishes, its grain, and every
column's type and meaning (issue #6).

This module is the one place the meaning of the warehouse is written down.
`docs/data-dictionary.md` is generated from it (`refund-recon dictionary --out
docs/data-dictionary.md`), and tests/test_dictionary.py builds a warehouse from the sample
night and fails when a table, view or column is missing here, is documented here but not
published, or has another type, and when the Markdown file is not what the generator writes.
So the dictionary cannot drift from the code: change the SQL, and the test says what to
document.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from jobs.catalog import CATALOG
from jobs.outputs import files


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as DuckDB reports it (duckdb_columns().data_type)
    meaning: str


@dataclass(frozen=True)
class Table:
    name: str
    kind: str  # "table" or "view"
    section: str
    grain: str  # what one row is: "one row per <grain>"
    meaning: str
    columns: tuple[Column, ...]


def _c(name: str, type_: str, meaning: str) -> Column:
    return Column(name, type_, meaning)


def _money(name: str, meaning: str) -> Column:
    return _c(name, MONEY, meaning)


def _sum(name: str, meaning: str) -> Column:
    return _c(name, TOTAL, meaning)


TIMESTAMPTZ = "TIMESTAMP WITH TIME ZONE"
MONEY = "DECIMAL(18,2)"
TOTAL = "DECIMAL(38,2)"  # a sum of amounts: wide enough that no day of them overflows
LIST = "VARCHAR[]"

RUN_ID = _c(
    "run_id",
    "VARCHAR",
    "The run that wrote the row: its UTC start time and a random suffix, "
    "e.g. `20260401T010203Z-a1b2c3`; joins to `runs`.",
)
AS_OF = _c(
    "as_of", "DATE", "The run's business date: the run saw what was known at the end of this billing day (SPEC 3)."
)
REFUND_ID = _c("refund_id", "VARCHAR", "The refund request (refunds.refund_id).")
ORDER_ID = _c("order_id", "VARCHAR", "The package order refunded (purchases.order_id).")
ACCOUNT_ID = _c("account_id", "VARCHAR", "The order's Tencent Cloud account (UIN), as given in the export.")
ENTITY_ID = _c(
    "entity_id", "VARCHAR", "The real-name verified entity owning the order's account, as given in the export."
)
REFUND_STATUS = _c(
    "refund_status",
    "VARCHAR",
    "The refund's status as the run sees it: `pending`, `paid` or "
    "`rejected` (one processed after the end of as_of is still `pending`).",
)
PROVENANCE = (
    _c(
        "_extra_columns",
        "MAP(VARCHAR, VARCHAR)",
        "The export's extra columns on this row, by name: kept, never judged or compared (SPEC 2).",
    ),
    _c("_source_file", "VARCHAR", "The file this version was loaded from, as the run was given it."),
    _c(
        "_source_line",
        "BIGINT",
        "Its line in that file (CSV: the line on which the row starts, the header being "
        "line 1; Parquet: the 1-based row number).",
    ),
    _c("_run_id", "VARCHAR", "The run that delivered this version: the last run that changed the record."),
    _c("_valid_from", "DATE", "The as_of of the night that delivered this version."),
)
VALID_TO = _c(
    "_valid_to",
    "DATE",
    "The as_of of the night that delivered the next version of the record; "
    "NULL while this one is current. A night's records are those with _valid_from <= as_of < _valid_to.",
)
QUARANTINED = _c(
    "_quarantined",
    "BOOLEAN",
    "True when the night's delivery of the record was quarantined: the "
    "version repeats the record as it stood, and the record is withheld (not judged, nor the refunds "
    "of an order) until a later night delivers it valid. Such versions are not in the views.",
)

LATEST = "Latest run: outputs"
VIEWS = "Views for analysts"
RUNS = "Runs and history"
ABUSE = "Abuse detection and reviews"
CATALOGS = "Catalogs"
INPUTS = "Loaded inputs (latest run)"
SECTIONS = (LATEST, VIEWS, RUNS, ABUSE, CATALOGS, INPUTS)

REFUND_FLAGS = Table(
    "refund_flags",
    "table",
    LATEST,
    "refund and reason code that fired",
    "Every rule of SPEC 4 that fired on a refund the latest run could see (docs/rules.md).",
    (
        RUN_ID,
        AS_OF,
        REFUND_ID,
        ORDER_ID,
        ACCOUNT_ID,
        ENTITY_ID,
        _c("rule_code", "VARCHAR", "The reason code, e.g. `PAST_WINDOW` (rule_catalog)."),
        _c(
            "category",
            "VARCHAR",
            "`policy` (the refund policy was broken) or `reconciliation` (the money does not add up).",
        ),
        _c("severity", "VARCHAR", "`high`, `medium` or `low`, per code (README)."),
        REFUND_STATUS,
        _c(
            "amount_at_risk",
            MONEY,
            "This flag's money at risk, in the refund's currency: the excess for "
            "COUPON_REFUNDED, the shortfall owed to the customer for UNDER_REFUNDED, the sum of the excesses for "
            "PATH_MISMATCH, else the refund_amount (SPEC 4).",
        ),
        _c(
            "evidence",
            "VARCHAR",
            "JSON text: the figures that made the rule fire (fields per code in "
            "docs/rules.md); times in billing time with their offset, fingerprints masked.",
        ),
    ),
)

REFUND_VERDICTS = Table(
    "refund_verdicts",
    "table",
    LATEST,
    "refund visible to the run",
    "The verdict on every refund requested by the end of as_of, with the refund's own money at risk.",
    (
        RUN_ID,
        AS_OF,
        REFUND_ID,
        _c(
            "verdict",
            "VARCHAR",
            "`breach` (paid or rejected, with a flag), `stop` (pending, with a flag: stop it "
            "before payout), `compliant` (no flag), or `rejected` (rejected, no flag).",
        ),
        _c("rule_codes", LIST, "The codes that fired on the refund, in rule order; empty when none did."),
        _c(
            "amount_at_risk",
            MONEY,
            "The refund's money at risk: its refund_amount when PAST_WINDOW, MINUTES_USED, "
            "CONCURRENT_REFUND, ACCOUNT_SUSPENDED or DUPLICATE_REFUND fired, else the largest amount at risk of its "
            "flags, else 0.",
        ),
        ORDER_ID,
        ACCOUNT_ID,
        ENTITY_ID,
        REFUND_STATUS,
        _c("refund_amount", MONEY, "The amount refunded, as in the export."),
        _c("currency", "VARCHAR", "The refund's (and its order's) currency; money is never added across currencies."),
    ),
)

PENDING_REFUND_DECISIONS = Table(
    "pending_refund_decisions",
    "table",
    LATEST,
    "refund pending on the night",
    "What the payout team does with each refund the run sees as pending: pay, hold or decline, and why "
    "(docs/decisions.md). Declines are the `stop` verdicts and the refunds of confirmed abuse cases; holds "
    "the refunds of open cases scoring at least `[decisions] hold_min_score` and of block-listed entities, "
    "accounts or payment fingerprints, unless allow-listed. I17 proves each pending refund has one decision.",
    (
        RUN_ID,
        AS_OF,
        REFUND_ID,
        ORDER_ID,
        ACCOUNT_ID,
        ENTITY_ID,
        _c("refund_amount", MONEY, "The amount the refund would pay out."),
        _c("currency", "VARCHAR", "The refund's currency."),
        _c(
            "decision",
            "VARCHAR",
            "`decline` (a rule broken, or confirmed abuse), `hold` (wait for a reviewer: an "
            "open case at or above the threshold, or the block list) or `pay`.",
        ),
        _c(
            "reasons",
            LIST,
            "Why: the rule codes that fired first, then the entity's case (id, disposition, score, "
            "threshold, signals), the block and allow entries that matched (list, kind, value, reason, who, expiry) "
            "and the expired entries that were ignored; empty for a refund nothing is said about.",
        ),
        _c("case_id", "VARCHAR", "The abuse case of the refund's entity, whatever its disposition; NULL if none."),
        _c("score", "DOUBLE", "That case's score."),
    ),
)

VALIDATION_ERRORS = Table(
    "validation_errors",
    "table",
    LATEST,
    "failed check of a quarantined row",
    "Why each quarantined input row was turned away (docs/validation.md). Every visible input row is "
    "either loaded or quarantined.",
    (
        RUN_ID,
        AS_OF,
        _c("source", "VARCHAR", "The export the row came from: `purchases`, `usage`, `refunds` or `account_status`."),
        _c(
            "line",
            "BIGINT",
            "The row's line in its file (CSV: where the row starts, header = line 1; Parquet: 1-based row number).",
        ),
        _c("column", "VARCHAR", "The column that failed the check (several, comma-separated, for `csv_row`)."),
        _c(
            "check",
            "VARCHAR",
            "The check that failed, e.g. `type`, `not_nullable`, `duplicate_key`, "
            "`unknown_order`, `order_quarantined`, `csv_row`.",
        ),
        _c("value", "VARCHAR", "The offending value as text (for `csv_row`, the raw line)."),
        _c("message", "VARCHAR", "The failure in words, naming the related row where there is one."),
    ),
)

ABUSE_SIGNALS = Table(
    "abuse_signals",
    "table",
    LATEST,
    "entity and signal that fired",
    "The abuse signals of SPEC 5 and three more, per entity (docs/signals.md).",
    (
        RUN_ID,
        AS_OF,
        _c("entity_id", "VARCHAR", "The entity the signal describes."),
        _c("signal_code", "VARCHAR", "The signal, e.g. `SERIAL_REFUNDER` (signal_catalog)."),
        _c("evidence", "VARCHAR", "JSON text: the figures and refunds that made the signal fire; fingerprints masked."),
        _c("refund_ids", LIST, "The refunds behind the signal."),
        _c("group_id", "VARCHAR", "The entity's linked group (`G-` and the group's smallest entity id)."),
        _c("origin", "VARCHAR", "`spec` for the signals of SPEC 5, `extra` for ours."),
    ),
)

ABUSE_CASES = Table(
    "abuse_cases",
    "table",
    LATEST,
    "linked group with at least one signal",
    "The cases reviewers work (`refund-recon review`), scored, with their money and standing decision.",
    (
        RUN_ID,
        AS_OF,
        _c(
            "case_id",
            "VARCHAR",
            "The case; kept from night to night while its group shares entities with "
            "last night's case, else `C-` and a hash of the group id.",
        ),
        _c("group_id", "VARCHAR", "The linked group the case is about."),
        _c("entity_ids", LIST, "The group's entities."),
        _c("signal_codes", LIST, "The distinct signals that fired for the group's entities."),
        _c(
            "score", "DOUBLE", '0-100: `100 * (1 - product(1 - weight))` over the distinct signal codes (a "noisy or").'
        ),
        _c("severity", "VARCHAR", "`critical` (score >= 80), `high` (>= 60), `medium` (>= 40), else `low`."),
        _c("refund_count", "HUGEINT", "How many refunds are behind the case's signals."),
        _c(
            "amount_refunded",
            TOTAL,
            "Their refund_amount summed, when they share one currency; NULL when the case "
            "spans currencies (see amounts_by_currency).",
        ),
        _c(
            "amount_at_risk",
            TOTAL,
            "Their money at risk (refund_verdicts) summed, when they share one currency; else NULL.",
        ),
        _c("currency", "VARCHAR", "The currency of the two amounts above; NULL when the case spans currencies."),
        _c(
            "amounts_by_currency",
            "STRUCT(currency VARCHAR, amount_refunded DECIMAL(38,2), amount_at_risk DECIMAL(38,2))[]",
            "The amounts per currency, always filled.",
        ),
        _c("first_refund_day", "DATE", "The billing day of the case's earliest refund request."),
        _c("last_refund_day", "DATE", "The billing day of its latest refund request."),
        _c("refund_ids", LIST, "The refunds behind the case's signals."),
        _c(
            "disposition",
            "VARCHAR",
            "`open` (never decided), `confirmed`, `false_positive`, `needs_info` (the "
            "latest decision), or `reopened` (dismissed, but new refunds or signals arrived).",
        ),
        _c("disposition_reason", "VARCHAR", "The latest decision's note, or why the case was reopened."),
        _c("reviewer", "VARCHAR", "Who took the standing decision; empty for an open or reopened case."),
        _c("decided_at", TIMESTAMPTZ, "When the standing decision was taken; empty for an open or reopened case."),
    ),
)

DAILY_RECONCILIATION = Table(
    "daily_reconciliation",
    "table",
    LATEST,
    "billing day, product and currency",
    "The finance tie-out (sql/reconciliation/daily_reconciliation.sql): purchases count on their purchase "
    "day, refunds (with their verdicts, flags and money) on their request day, under the order's product and "
    "currency; a side with nothing that day has zeros. Statuses are those the run sees. The invariants "
    "(invariant_results) prove these sums equal the tables they come from.",
    (
        RUN_ID,
        AS_OF,
        _c("billing_day", "DATE", "The billing day: of purchased_at for purchases, of requested_at for refunds."),
        _c("product", "VARCHAR", "The order's product."),
        _c("currency", "VARCHAR", "The order's currency."),
        _c("purchases_count", "BIGINT", "Orders bought that day."),
        _sum("purchases_list_price", "Their list prices."),
        _sum("purchases_discount_amount", "Their discounts."),
        _sum("purchases_coupon_amount", "Their coupons."),
        _sum("purchases_paid_cash_credit", "Paid with cash credits."),
        _sum("purchases_paid_commission_credit", "Paid with commission credits."),
        _sum("purchases_paid_free_credit", "Paid with free credits."),
        _sum("purchases_paid_amount", "Paid in all (the refundable amounts)."),
        _c("refunds_requested_count", "BIGINT", "Refunds requested that day."),
        _sum("refunds_requested_amount", "Their refund_amount."),
        _c("refunds_paid_count", "BIGINT", "Of them, paid."),
        _sum("refunds_paid_amount", "Amount of those paid."),
        _c("refunds_rejected_count", "BIGINT", "Of them, rejected."),
        _sum("refunds_rejected_amount", "Amount of those rejected (money that went out on a rejected refund)."),
        _c("refunds_pending_count", "BIGINT", "Of them, pending (as the run sees them)."),
        _sum("refunds_pending_amount", "Amount of those pending."),
        _c("refunds_paid_compliant_count", "BIGINT", "Paid with verdict compliant."),
        _sum("refunds_paid_compliant_amount", "Their amount."),
        _c("refunds_paid_in_breach_count", "BIGINT", "Paid with verdict breach."),
        _sum("refunds_paid_in_breach_amount", "Their amount."),
        _c("verdict_compliant_count", "BIGINT", "Refunds with verdict compliant."),
        _c("verdict_breach_count", "BIGINT", "Refunds with verdict breach."),
        _c("verdict_stop_count", "BIGINT", "Refunds with verdict stop."),
        _c("verdict_rejected_count", "BIGINT", "Refunds with verdict rejected."),
        _sum("at_risk_breach", "Money at risk of the breach refunds (refund_verdicts.amount_at_risk)."),
        _sum("at_risk_stop", "Money at risk of the stop refunds."),
        _sum("at_risk_total", "Money at risk of all the day's refunds."),
        _c("flags_count", "BIGINT", "Flags raised on the day's refunds."),
        *(
            _sum(f"at_risk_{rule.code.lower()}", f"The {rule.code} flags' money at risk (refund_flags.amount_at_risk).")
            for rule in CATALOG.rules
        ),
        _sum(
            "amount_recoverable",
            "What went out in breach and should come back: for each paid or rejected "
            "refund with verdict breach, its refund_amount when a whole-refund code fired, else the largest "
            "amount at risk of its flags other than UNDER_REFUNDED.",
        ),
        _sum(
            "amount_owed_to_customers",
            "The UNDER_REFUNDED shortfalls: paid refunds that paid back less than the refundable amount.",
        ),
    ),
)

DAILY_RECONCILIATION_BY_RULE = Table(
    "daily_reconciliation_by_rule",
    "table",
    LATEST,
    "billing day, product, currency and rule code that flagged a refund requested that day",
    "Money at risk per rule as rows (sql/reconciliation/daily_reconciliation_by_rule.sql): the long twin of "
    "daily_reconciliation's at_risk_<rule code> columns; a new rule appears here with no other change.",
    (
        RUN_ID,
        AS_OF,
        _c("billing_day", "DATE", "The refunds' request day (billing time)."),
        _c("product", "VARCHAR", "The order's product."),
        _c("currency", "VARCHAR", "The order's currency."),
        _c("rule_code", "VARCHAR", "The reason code (rule_catalog)."),
        _c("flags_count", "BIGINT", "Flags of that code on the day's refunds."),
        _sum("amount_at_risk", "Their money at risk (refund_flags.amount_at_risk)."),
    ),
)

INVARIANT_RESULTS = Table(
    "invariant_results",
    "table",
    LATEST,
    "invariant check of the run",
    "The numbered checks proving the numbers tie out (sql/invariants/Inn_<name>.sql). A run with a failed "
    "invariant stops before publishing, so the published rows all passed; the checks and what they compared "
    "are kept for the record.",
    (
        RUN_ID,
        AS_OF,
        _c("position", "INTEGER", "Order in which the checks ran."),
        _c("invariant", "VARCHAR", "The check's number, e.g. `I05`."),
        _c("name", "VARCHAR", "The check's name, e.g. `every_visible_refund_has_exactly_one_verdict`."),
        _c("description", "VARCHAR", "What the check proves (the SQL file's heading comment)."),
        _c("passed", "BOOLEAN", "Whether it held."),
        _c("expected", "VARCHAR", "The figures expected, in words."),
        _c("actual", "VARCHAR", "The figures found, in words."),
        _c("detail", "VARCHAR", "The outcome in a sentence, or what disagreed."),
    ),
)

GATE_RESULTS = Table(
    "gate_results",
    "table",
    LATEST,
    "gate and export",
    "Whether the night's data looked as current and as large as usual (docs/gates.md): the freshness gate "
    "compares each export's newest record with the end of as_of, the volume gate its visible rows with the "
    "median of earlier nights. A failed gate warns (a `gate_warning` log event), or with `[gates] on_failure = "
    '"fail"` stops the run before anything is written.',
    (
        RUN_ID,
        AS_OF,
        _c("gate", "VARCHAR", "`freshness` or `volume`."),
        _c("source", "VARCHAR", "The export judged, by stem: `purchases`, `usage`, `refunds` or `account_status`."),
        _c(
            "passed",
            "BOOLEAN",
            "Whether the gate passed; NULL when it made no judgement (freshness turned off for "
            "the export, fewer earlier nights than `gates.volume_min_nights`, or no file read, as in a replay).",
        ),
        _c(
            "observed",
            "VARCHAR",
            "What the run found, in words: the newest record's time column, timestamp (billing "
            "time) and age before the end of as_of, or `no record`; tonight's visible rows (runs.input_files.rows_in), "
            "or `no file read`.",
        ),
        _c(
            "expected",
            "VARCHAR",
            "What the gate allows, in words: the maximum age and the earliest timestamp it "
            "allows; the range of rows (the median of the earlier nights divided and multiplied by the factor).",
        ),
        _c(
            "message",
            "VARCHAR",
            "The outcome in a sentence for an operator, naming the setting that decides it; "
            "a failed gate's message is the `gate_warning` logged.",
        ),
    ),
)

RUNS_TABLE = Table(
    "runs",
    "table",
    RUNS,
    "successful run",
    "What each run read and found. Failed runs write nothing, so every row has status `succeeded`.",
    (
        RUN_ID,
        AS_OF,
        _c("started_at", TIMESTAMPTZ, "When the run started."),
        _c("finished_at", TIMESTAMPTZ, "When the run finished its work, just before publishing."),
        _c("status", "VARCHAR", "`succeeded`."),
        _c(
            "mode",
            "VARCHAR",
            "`delivery`: the run read an export folder; `replay`: it re-ran its night from the "
            "records the warehouse stored, reading no file.",
        ),
        _c("input_dir", "VARCHAR", "The export folder read (NULL for a replay)."),
        _c(
            "input_files",
            'STRUCT("source" VARCHAR, file_name VARCHAR, format VARCHAR, sha256 VARCHAR, size_bytes BIGINT, '
            "extra_columns VARCHAR[], rows_read BIGINT, rows_after_as_of BIGINT, rows_in BIGINT, rows_loaded BIGINT, "
            "rows_quarantined BIGINT)[]",
            "One entry per export: file name, format (`csv`, `csv.gz`, `parquet`), sha256, size, extra columns, "
            "and rows read = after as_of (set aside) + in; rows in = loaded + quarantined.",
        ),
        _c("rows_in", "BIGINT", "Visible input rows over all exports."),
        _c("rows_loaded", "BIGINT", "Of those, the rows loaded."),
        _c("rows_quarantined", "BIGINT", "Of those, the rows quarantined."),
        _c("refunds_checked", "BIGINT", "Refunds judged (rows of refund_verdicts)."),
        _c("flag_count", "BIGINT", "Flags raised (rows of refund_flags)."),
        _c(
            "flag_counts", "MAP(VARCHAR, BIGINT)", "Flags per reason code, every code present (0 when it did not fire)."
        ),
        _c("billing_time_zone", "VARCHAR", "The billing time zone the run used (IANA name)."),
        _c("refund_window_days", "INTEGER", 'N in "within N days from the day of purchase".'),
        _c("config_hash", "VARCHAR", "A short hash of the effective settings."),
        _c("code_version", "VARCHAR", "The refund-recon version that ran."),
        _c(
            "stage_seconds",
            "MAP(VARCHAR, DOUBLE)",
            "Seconds per stage before publishing (load, validate, rules, "
            "signals, reconcile, ...); publish, report and exports are in run_results.json.",
        ),
        _c(
            "step_seconds",
            "MAP(VARCHAR, DOUBLE)",
            "Seconds per SQL step (`rules/PAST_WINDOW`, `model/10_refund_facts`, "
            "...), timed by the runner: where a stage's time goes.",
        ),
    ),
)


def _history(table: Table) -> Table:
    """`<table>_history`: the same columns, every run's rows."""
    return replace(
        table,
        name=f"{table.name}_history",
        section=RUNS,
        grain=f"{table.grain}, for each run (keyed by run_id)",
        meaning=f"Every run's `{table.name}`, appended by each run and never rewritten. Columns as in `{table.name}`.",
    )


CASE_DISPOSITIONS = Table(
    "case_dispositions",
    "table",
    ABUSE,
    "reviewer decision",
    "Reviewers' decisions on abuse cases, appended by `refund-recon review` and never rewritten by a run. A "
    "case's latest decision (by decided_at) is its disposition.",
    (
        _c("case_id", "VARCHAR", "The case decided (abuse_cases.case_id)."),
        _c("disposition", "VARCHAR", "`confirmed`, `false_positive` or `needs_info`."),
        _c("reviewer", "VARCHAR", "Who decided."),
        _c("note", "VARCHAR", "Why, in the reviewer's words."),
        _c("decided_at", TIMESTAMPTZ, "When the decision was taken."),
        _c("refund_ids", LIST, "The refunds the case held when it was decided (new ones reopen a dismissed case)."),
        _c("signal_codes", LIST, "The signal codes the case held when it was decided."),
    ),
)

LIST_EVENTS = Table(
    "list_events",
    "table",
    ABUSE,
    "change to the block or allow list",
    "Every entry added to or removed from the block and allow lists by `refund-recon lists`, appended and "
    "never rewritten by a run (docs/decisions.md). An entry's latest event says whether it stands.",
    (
        _c("event_id", "BIGINT", "The change's number, increasing: the latest event of an entry has the largest."),
        _c("action", "VARCHAR", "`add` (the entry stands, with this reason and expiry) or `remove`."),
        _c("list_name", "VARCHAR", "`block` (hold the pending refunds it matches) or `allow` (lift holds)."),
        _c(
            "kind",
            "VARCHAR",
            "What the entry names: `entity`, `account` or `fingerprint` (the payment "
            "fingerprint of the refunded order).",
        ),
        _c("value", "VARCHAR", "The entity id, account id or payment fingerprint."),
        _c("reason", "VARCHAR", "Why, in the words of who changed it (never empty)."),
        _c("who", "VARCHAR", "Who changed it."),
        _c("recorded_at", TIMESTAMPTZ, "When."),
        _c("expires_at", TIMESTAMPTZ, "For an `add`, when the entry stops counting; NULL for never."),
    ),
)

LIST_ENTRIES = Table(
    "list_entries",
    "view",
    ABUSE,
    "block or allow entry standing now",
    "The entries of list_events whose latest event is an `add`, expired ones included (a run ignores an entry "
    "whose expires_at is at or before its start, and says so in pending_refund_decisions.reasons).",
    (
        _c("list_name", "VARCHAR", "`block` or `allow`."),
        _c("kind", "VARCHAR", "`entity`, `account` or `fingerprint`."),
        _c("value", "VARCHAR", "The entity id, account id or payment fingerprint."),
        _c("reason", "VARCHAR", "Why it was added."),
        _c("added_by", "VARCHAR", "Who added it."),
        _c("added_at", TIMESTAMPTZ, "When."),
        _c("expires_at", TIMESTAMPTZ, "When it stops counting; NULL for never."),
        _c("event_id", "BIGINT", "The list_events row that added it."),
    ),
)

ENTITY_GROUPS = Table(
    "entity_groups",
    "table",
    ABUSE,
    "entity with purchases",
    "Linked groups: entities joined, directly or through others, by a shared payment fingerprint "
    "(docs/signals.md). An entity with no links is its own group of one.",
    (
        _c("entity_id", "VARCHAR", "The entity."),
        _c("group_id", "VARCHAR", "Its group: `G-` and the smallest entity id of the group."),
        _c("group_size", "BIGINT", "How many entities the group has."),
    ),
)

FINGERPRINT_SHARING = Table(
    "fingerprint_sharing",
    "table",
    ABUSE,
    "payment fingerprint shared by two or more entities",
    "Who shares which payment instrument, and whether it links them (a fingerprint shared by more than "
    "`signals.linked_fingerprint_max_entities` entities does not).",
    (
        _c("fingerprint", "VARCHAR", "The fingerprint, masked: first 4 and last 2 characters."),
        _c("entity_count", "BIGINT", "How many entities paid with it."),
        _c("links_entities", "BOOLEAN", "Whether it links those entities into one group."),
        _c("entity_ids", LIST, "The entities, in id order."),
    ),
)

RULE_CATALOG = Table(
    "rule_catalog",
    "table",
    CATALOGS,
    "reason code",
    "The ten refund rules of SPEC 4, in evaluation order (docs/rules.md).",
    (
        _c("position", "INTEGER", "Evaluation and display order."),
        _c("rule_code", "VARCHAR", "The reason code."),
        _c("category", "VARCHAR", "`policy` or `reconciliation`."),
        _c("severity", "VARCHAR", "`high`, `medium` or `low`."),
        _c(
            "whole_refund_at_risk",
            "BOOLEAN",
            "Whether the code puts the whole refund_amount at risk in refund_verdicts.",
        ),
        _c("summary", "VARCHAR", "What the code means, in a few words."),
    ),
)

SIGNAL_CATALOG = Table(
    "signal_catalog",
    "table",
    CATALOGS,
    "abuse signal",
    "The abuse signals, with the settings the latest run used (docs/signals.md).",
    (
        _c("position", "INTEGER", "Display order."),
        _c("signal_code", "VARCHAR", "The signal."),
        _c("origin", "VARCHAR", "`spec` (SPEC 5) or `extra` (ours)."),
        _c("weight", "DOUBLE", "Its weight in a case's score, in (0, 1]."),
        _c("enabled", "BOOLEAN", "Whether the run evaluated it (`[signals] disabled`)."),
        _c("summary", "VARCHAR", "What the signal means, in a few words."),
    ),
)

SIGNAL_PRECISION = Table(
    "signal_precision",
    "view",
    VIEWS,
    "abuse signal",
    "How reviewers judged the cases each signal was part of, by each case's latest decision in case_dispositions.",
    (
        _c("signal_code", "VARCHAR", "The signal."),
        _c("confirmed", "BIGINT", "Cases holding the signal whose latest decision is `confirmed`."),
        _c("false_positive", "BIGINT", "... whose latest decision is `false_positive`."),
        _c("needs_info", "BIGINT", "... whose latest decision is `needs_info`."),
        _c(
            "precision",
            "DOUBLE",
            "confirmed / (confirmed + false_positive), 3 decimals; NULL before any such decision.",
        ),
    ),
)

MONEY_AT_RISK_BY_RULE_MONTH = Table(
    "money_at_risk_by_rule_month",
    "view",
    VIEWS,
    "billing month of the request, reason code and currency",
    "The latest run's flags summed by the month the refund was requested (billing time). A refund flagged by "
    "several codes counts under each, so a month's rows do not add up to its refunds' money at risk (sum "
    "refund_verdicts for that). `sql/views/money_at_risk_by_rule_month.sql`.",
    (
        _c("request_month", "DATE", "First day of the billing month in which the refunds were requested."),
        _c("rule_code", "VARCHAR", "The reason code."),
        _c("category", "VARCHAR", "`policy` or `reconciliation`."),
        _c("severity", "VARCHAR", "`high`, `medium` or `low`."),
        _c("currency", "VARCHAR", "The refunds' currency."),
        _c("flag_count", "BIGINT", "Flags of the code."),
        _c("refund_count", "BIGINT", "Distinct refunds flagged by the code."),
        _c("amount_at_risk", TOTAL, "Their flags' money at risk."),
        _c("amount_at_risk_paid", TOTAL, "Of it, on refunds already paid (to recover)."),
        _c("amount_at_risk_pending", TOTAL, "Of it, on pending refunds (to stop before payout)."),
        _c("amount_at_risk_rejected", TOTAL, "Of it, on rejected refunds (REJECTED_WITH_PAYOUT)."),
    ),
)

ENTITY_REFUND_HISTORY = Table(
    "entity_refund_history",
    "view",
    VIEWS,
    "refund visible to the latest run",
    "An entity's refunds with their orders, verdicts, when each was first seen and first flagged, and the "
    "entity's abuse case: `WHERE entity_id = '...' ORDER BY requested_at`. "
    "`sql/views/entity_refund_history.sql`.",
    (
        ENTITY_ID,
        ACCOUNT_ID,
        REFUND_ID,
        ORDER_ID,
        _c("product", "VARCHAR", "The order's product: `call`, `conference`, `live` or `rtc_engine`."),
        _c("package_kind", "VARCHAR", "`package` or `feature_package`."),
        _c("edition", "VARCHAR", "The order's edition (free text)."),
        _c("purchased_at", TIMESTAMPTZ, "When the order was bought."),
        _c("requested_at", TIMESTAMPTZ, "When the refund was requested."),
        _c("request_day", "DATE", "The billing day of requested_at."),
        REFUND_STATUS,
        _c("processed_at", TIMESTAMPTZ, "When the refund was paid or rejected; NULL while the run sees it pending."),
        _c("currency", "VARCHAR", "The order's currency."),
        _c("refundable_amount", MONEY, "What the order paid: cash + commission + free credits."),
        _c("refund_amount", MONEY, "The amount refunded."),
        _c("verdict", "VARCHAR", "The latest run's verdict (refund_verdicts)."),
        _c("rule_codes", LIST, "The codes that fired."),
        _c("amount_at_risk", MONEY, "The refund's money at risk."),
        _c("first_seen_as_of", "DATE", "The earliest as_of of a run that judged the refund (refund_verdicts_history)."),
        _c(
            "first_flagged_as_of", "DATE", "The earliest as_of of a run that gave it `breach` or `stop`; NULL if never."
        ),
        _c("nights_seen", "BIGINT", "How many distinct as_of nights judged it."),
        _c("case_id", "VARCHAR", "The entity's abuse case in the latest run, if any."),
        _c("case_disposition", "VARCHAR", "That case's disposition."),
        _c("in_case_evidence", "BOOLEAN", "Whether this refund is among the case's refund_ids."),
        AS_OF,
        RUN_ID,
    ),
)

FLAG_CHANGES = Table(
    "flag_changes",
    "view",
    VIEWS,
    "flag new, resolved or changed since the previous night",
    "The latest run's flags against those of the latest run of the night before it (the greatest earlier "
    "as_of). `sql/views/flag_changes.sql`.",
    (
        _c("as_of", "DATE", "The latest run's business date."),
        _c("previous_as_of", "DATE", "The night compared with."),
        _c(
            "change",
            "VARCHAR",
            "`new` (not raised the night before), `resolved` (raised then, not tonight) or "
            "`changed` (another refund status, money at risk or evidence).",
        ),
        REFUND_ID,
        _c("rule_code", "VARCHAR", "The reason code (rule_catalog)."),
        ORDER_ID,
        ENTITY_ID,
        _c("category", "VARCHAR", "`policy` or `reconciliation`."),
        _c("severity", "VARCHAR", "`high`, `medium` or `low`."),
        _c("previous_refund_status", "VARCHAR", "The refund's status as the night before saw it (NULL if new)."),
        _c("refund_status", "VARCHAR", "Its status tonight (NULL if resolved)."),
        _money("previous_amount_at_risk", "Money at risk the night before."),
        _money("amount_at_risk", "Money at risk tonight."),
        _c("previous_evidence", "VARCHAR", "The evidence (JSON text) the night before."),
        _c("evidence", "VARCHAR", "The evidence tonight."),
    ),
)

OPEN_CASES = Table(
    "open_cases",
    "view",
    VIEWS,
    "abuse case waiting for a reviewer",
    "The latest run's cases whose disposition is `open`, `reopened` or `needs_info`, highest score first, with "
    "the night each was first raised. `sql/views/open_cases.sql`.",
    (
        _c("case_id", "VARCHAR", "The case."),
        _c("disposition", "VARCHAR", "`open`, `reopened` or `needs_info`."),
        _c("severity", "VARCHAR", "`critical`, `high`, `medium` or `low`."),
        _c("score", "DOUBLE", "0-100, higher is more suspicious."),
        _c("entity_ids", LIST, "The group's entities."),
        _c("signal_codes", LIST, "The signals that fired."),
        _c("refund_count", "HUGEINT", "Refunds behind the signals."),
        _c("refund_ids", LIST, "Those refunds."),
        _c("amount_refunded", TOTAL, "Their refund_amount, when in one currency."),
        _c("amount_at_risk", TOTAL, "Their money at risk, when in one currency."),
        _c("currency", "VARCHAR", "The currency of the two amounts; NULL when the case spans currencies."),
        _c(
            "amounts_by_currency",
            "STRUCT(currency VARCHAR, amount_refunded DECIMAL(38,2), amount_at_risk DECIMAL(38,2))[]",
            "The amounts per currency.",
        ),
        _c("first_refund_day", "DATE", "Billing day of the earliest refund request."),
        _c("last_refund_day", "DATE", "Billing day of the latest refund request."),
        _c("disposition_reason", "VARCHAR", "Why it was reopened, or the needs_info note."),
        _c(
            "first_seen_as_of",
            "DATE",
            "The earliest as_of at which a case of this id was raised (abuse_cases_history).",
        ),
        _c("nights_seen", "BIGINT", "How many distinct as_of nights raised it."),
        _c("group_id", "VARCHAR", "The linked group."),
        AS_OF,
        RUN_ID,
    ),
)


PURCHASES = Table(
    "purchases",
    "view",
    INPUTS,
    "package order loaded",
    "The orders the latest run judged: of each order, the version valid on its as_of (`purchases_versions`). "
    "The only place, with its versions, where payment fingerprints are kept in full.",
    (
        _c("order_id", "VARCHAR", "The package order; unique."),
        _c("account_id", "VARCHAR", "The Tencent Cloud account (UIN)."),
        _c("entity_id", "VARCHAR", "The real-name verified entity owning the account."),
        _c("sdkappid", "BIGINT", "The application (SDKAppID) the package is for."),
        _c("product", "VARCHAR", "`call`, `conference`, `live` or `rtc_engine`."),
        _c("package_kind", "VARCHAR", "`package` or `feature_package`."),
        _c("edition", "VARCHAR", "Free text: `starter`, `standard`, `pro`, ..."),
        _c("gifted_minutes", "BIGINT", "Audio/video call minutes the package gifts."),
        _c("purchased_at", TIMESTAMPTZ, "When it was bought (a naive timestamp in the file is billing time)."),
        _c("currency", "VARCHAR", "3 upper-case letters."),
        _money("list_price", "The list price."),
        _money("discount_amount", "Promotions (never refunded)."),
        _money("coupon_amount", "Cash coupons and vouchers (never refunded)."),
        _money("paid_cash_credit", "Paid with cash credits."),
        _money("paid_commission_credit", "Paid with commission credits."),
        _money("paid_free_credit", "Paid with free credits."),
        _c("payment_fingerprint", "VARCHAR", "Hash of the payment instrument, in full; shown masked everywhere else."),
        *PROVENANCE,
    ),
)

USAGE = Table(
    "usage",
    "view",
    INPUTS,
    "usage record loaded",
    "The usage records the latest run judged: of each, the version valid on its as_of (`usage_versions`).",
    (
        _c("usage_id", "VARCHAR", "The usage record; unique."),
        _c(
            "order_id", "VARCHAR", "The package the minutes were deducted from; NULL for free minutes or pay-as-you-go."
        ),
        _c("sdkappid", "BIGINT", "The application that used the minutes."),
        _c("started_at", TIMESTAMPTZ, "When the usage started."),
        _c("minutes", "DECIMAL(18,6)", "Minutes used."),
        _c("media_type", "VARCHAR", "`audio`, `video_sd`, `video_hd`, `video_fhd`, `video_2k` or `video_4k`."),
        *PROVENANCE,
    ),
)

REFUNDS = Table(
    "refunds",
    "view",
    INPUTS,
    "refund request loaded",
    "The refund requests the latest run judged, as exported (`refunds_versions`): `status` and `processed_at` are "
    "the export's; refund_verdicts.refund_status is what the run saw.",
    (
        _c("refund_id", "VARCHAR", "The refund request; unique."),
        _c("order_id", "VARCHAR", "The order refunded."),
        _c("requested_at", TIMESTAMPTZ, "When the refund was requested."),
        _c("status", "VARCHAR", "`pending`, `paid` or `rejected`, as in the export."),
        _c("processed_at", TIMESTAMPTZ, "When it was paid or rejected; NULL when pending."),
        _c("currency", "VARCHAR", "Equals the order's currency."),
        _money("refund_cash_credit", "Refunded as cash credits."),
        _money("refund_commission_credit", "Refunded as commission credits."),
        _money("refund_free_credit", "Refunded as free credits."),
        _money("refund_amount", "The sum of the three parts."),
        *PROVENANCE,
    ),
)

ACCOUNT_STATUS = Table(
    "account_status",
    "view",
    INPUTS,
    "account status change loaded",
    "The account status changes the latest run judged (`account_status_versions`). An account's status at "
    "time t is its row with the latest effective_at <= t; an account with none is active.",
    (
        _c("account_id", "VARCHAR", "The account (UIN)."),
        _c("status", "VARCHAR", "`active`, `suspended` or `closed`."),
        _c(
            "reason",
            "VARCHAR",
            "`content_violation`, `illegal_activity`, `overdue_payment`, `security_risk`, "
            "`user_request`, `other`, or NULL.",
        ),
        _c("effective_at", TIMESTAMPTZ, "When the status took effect."),
        *PROVENANCE,
    ),
)


def _versions(records: Table) -> Table:
    """`<stem>_versions`: every version of every record delivered, with its validity."""
    return replace(
        records,
        name=f"{records.name}_versions",
        kind="table",
        grain=f"version of a {records.grain.removesuffix(' loaded')}",
        meaning=f"Every version of every `{records.name}` record a night delivered, upserted by key "
        f"(jobs/stages/history.py): a delivered row becomes a version when it differs from the record "
        f"as it stood. Query any night with `records_valid_on('{records.name}_versions', day)`.",
        columns=(*records.columns, VALID_TO, QUARANTINED),
    )


TABLES: tuple[Table, ...] = (
    REFUND_FLAGS,
    REFUND_VERDICTS,
    PENDING_REFUND_DECISIONS,
    VALIDATION_ERRORS,
    ABUSE_SIGNALS,
    ABUSE_CASES,
    DAILY_RECONCILIATION,
    DAILY_RECONCILIATION_BY_RULE,
    INVARIANT_RESULTS,
    GATE_RESULTS,
    SIGNAL_PRECISION,
    MONEY_AT_RISK_BY_RULE_MONTH,
    ENTITY_REFUND_HISTORY,
    OPEN_CASES,
    FLAG_CHANGES,
    RUNS_TABLE,
    *(
        _history(table)
        for table in (
            VALIDATION_ERRORS,
            REFUND_FLAGS,
            REFUND_VERDICTS,
            ABUSE_SIGNALS,
            ABUSE_CASES,
            DAILY_RECONCILIATION,
            DAILY_RECONCILIATION_BY_RULE,
            INVARIANT_RESULTS,
            GATE_RESULTS,
            PENDING_REFUND_DECISIONS,
        )
    ),
    CASE_DISPOSITIONS,
    LIST_EVENTS,
    LIST_ENTRIES,
    ENTITY_GROUPS,
    FINGERPRINT_SHARING,
    RULE_CATALOG,
    SIGNAL_CATALOG,
    PURCHASES,
    USAGE,
    REFUNDS,
    ACCOUNT_STATUS,
    *(_versions(records) for records in (PURCHASES, USAGE, REFUNDS, ACCOUNT_STATUS)),
)
BY_NAME = {table.name: table for table in TABLES}


# --- the Markdown ----------------------------------------------------------------------------


def markdown() -> str:
    """docs/data-dictionary.md, as generated from TABLES."""
    lines = [
        "# Data dictionary",
        "",
        "<!-- Generated by `refund-recon dictionary --out docs/data-dictionary.md` from jobs/outputs/dictionary.py;",
        "     do not edit by hand. tests/test_dictionary.py fails when this file or jobs/outputs/dictionary.py",
        "     no longer matches the warehouse a run publishes. -->",
        "",
        "Every table and view of the warehouse (`out/recon.duckdb` by default), what one row is, and every",
        "column's DuckDB type and meaning. The latest-run tables hold the last run's view and are replaced",
        "by each run; the `*_history` tables and `runs` keep every run; `case_dispositions` belongs to",
        "the reviewers. Times are `TIMESTAMP WITH TIME ZONE` (instants); a *billing day* is a date in the",
        "billing time zone (`runs.billing_time_zone`, default Asia/Shanghai). Money is `DECIMAL(18,2)` in",
        "the row's currency and is never added across currencies. How to read it: [analysts.md](analysts.md).",
        "",
        "| table | kind | one row per |",
        "|---|---|---|",
    ]
    for section in SECTIONS:
        for table in TABLES:
            if table.section == section:
                lines.append(f"| [`{table.name}`](#{table.name}) | {table.kind} | {table.grain} |")
    for section in SECTIONS:
        lines += ["", f"## {section}"]
        for table in TABLES:
            if table.section != section:
                continue
            lines += ["", f"### {table.name}", "", f"*{table.kind}, one row per {table.grain}.* {table.meaning}", ""]
            lines += ["| column | type | meaning |", "|---|---|---|"]
            lines += [
                f"| `{column.name}` | `{_cell(column.type)}` | {_cell(column.meaning)} |" for column in table.columns
            ]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def write_markdown(path: Path) -> Path:
    """Write the dictionary to `path` (docs/data-dictionary.md in the repository), whole or not at all."""
    files.write_atomically([(path, markdown())])
    return path
