"""Abuse signals through the whole run, linked groups, cases and dispositions (SPEC sections 3,
5 and 6; docs/signals.md).

One night per signal shows that it reaches abuse_signals from the CSV exports, plus what only
the whole run can show: refunds requested after as_of unseen, an empty fingerprint cell not
linking, fingerprints masked in what is published, a signal switched off in the config, and
cases and reviewers' dispositions across nights. The signals' edges (thresholds, the first and
last day of each window, rejected refunds...) are tested file by file in
tests/test_signal_steps.py.

Each test builds the smallest night that shows one behaviour: a few orders of 100.00 USD,
their refunds, status changes and usage, run for as_of 2026-03-31 unless said otherwise.
Every fixture must load without a single quarantined row (see `night`), so a signal that does
not fire has truly been judged and not silently skipped. Timestamps without an offset are
billing time (Asia/Shanghai, UTC+8).
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from exports import AS_OF, run_night, write_exports
from steps import order, paid, pending, suspended, used

from jobs.config import DEFAULT_SIGNAL_WEIGHTS, Settings, SignalSettings
from jobs.pipeline import run

SOURCES = ("purchases", "usage", "refunds", "account_status")
BILLING = timezone(timedelta(hours=8))


# --- running and reading ---------------------------------------------------------------


def night(tmp_path, *, as_of=AS_OF, signals: SignalSettings | None = None, **exports):
    """Run the job (not published) and check that every fixture row was loaded."""
    settings = Settings(max_bad_row_fraction=1.0, signals=signals or SignalSettings())
    outcome = run_night(tmp_path, as_of=as_of, settings=settings, **exports)
    for source in SOURCES:
        assert outcome.errors(source) == [], f"fixture row quarantined in {source}"
    return outcome


def fired(outcome, code: str | None = None):
    """All (entity_id, signal_code) pairs, or the entity ids one code fired for."""
    rows = outcome.con.execute("SELECT entity_id, signal_code FROM abuse_signals").fetchall()
    if code is None:
        return set(rows)
    return {entity for entity, signal_code in rows if signal_code == code}


def hit(outcome, entity_id: str, code: str) -> dict:
    """One signal row: parsed evidence, refund_ids, group_id."""
    rows = outcome.con.execute(
        "SELECT evidence, refund_ids, group_id FROM abuse_signals WHERE entity_id = ? AND signal_code = ?",
        [entity_id, code],
    ).fetchall()
    assert len(rows) == 1, f"expected one {code} row for {entity_id}, got {len(rows)}"
    evidence, refund_ids, group_id = rows[0]
    return {"evidence": json.loads(evidence), "refund_ids": list(refund_ids), "group_id": group_id}


def groups(outcome) -> dict[str, tuple[str, int]]:
    rows = outcome.con.execute("SELECT entity_id, group_id, group_size FROM entity_groups").fetchall()
    return {entity: (group, size) for entity, group, size in rows}


def cases(outcome) -> list[dict]:
    rows = outcome.con.execute(
        "SELECT case_id, group_id, entity_ids, signal_codes, score, severity, refund_count, "
        "CAST(amount_refunded AS VARCHAR), refund_ids, disposition FROM abuse_cases ORDER BY case_id"
    ).fetchall()
    keys = (
        "case_id",
        "group_id",
        "entity_ids",
        "signal_codes",
        "score",
        "severity",
        "refund_count",
        "amount_refunded",
        "refund_ids",
        "disposition",
    )
    return [dict(zip(keys, row, strict=True)) for row in rows]


def only_case(outcome) -> dict:
    found = cases(outcome)
    assert len(found) == 1, f"expected one case, got {found}"
    return found[0]


def moment(value) -> datetime:
    """A timestamp from evidence ('...+08', '...Z' or a datetime) as an aware datetime."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


# --- SERIAL_REFUNDER -------------------------------------------------------------------


def three_orders(entity_id="E1"):
    return [order(f"O{n}", entity_id, bought="2026-03-01 10:00:00") for n in (1, 2, 3)]


def test_serial_refunder_fires_on_three_live_refunds_in_90_days(tmp_path):
    outcome = night(
        tmp_path,
        purchases=three_orders(),
        refunds=[
            paid("R1", "O1", "2026-03-02 12:00:00"),
            pending("R2", "O2", "2026-03-10 12:00:00"),
            # paid after the end of as_of: seen as pending, still live
            paid("R3", "O3", "2026-03-31 20:00:00", processed_at="2026-04-02 10:00:00"),
        ],
    )
    assert fired(outcome) == {("E1", "SERIAL_REFUNDER")}
    signal = hit(outcome, "E1", "SERIAL_REFUNDER")
    assert signal["refund_ids"] == ["R1", "R2", "R3"]
    assert signal["evidence"]["live_refunds"] == 3
    assert signal["evidence"]["threshold"] == 3
    assert signal["evidence"]["window_days"] == 90


def test_serial_refunder_does_not_see_refunds_requested_after_as_of(tmp_path):
    outcome = night(
        tmp_path,
        purchases=three_orders(),
        refunds=[
            paid("R1", "O1", "2026-03-02 12:00:00"),
            paid("R2", "O2", "2026-03-10 12:00:00"),
            pending("R3", "O3", "2026-04-01 00:30:00"),  # the day after as_of
        ],
    )
    assert fired(outcome) == set()


# --- REFUND_CYCLE ----------------------------------------------------------------------
# Cycle 1: O1 (call) refunded 2026-03-02 12:00, O2 (call) bought 2026-03-09 10:00 (7th day).
# Cycle 2: O2 refunded 2026-03-10 07:30 (23:30 UTC the day before), O3 bought as given.


def cycles(third_bought, third_product="call"):
    return dict(
        purchases=[
            order("O1", bought="2026-03-01 10:00:00"),
            order("O2", bought="2026-03-09 10:00:00"),
            order("O3", bought=third_bought, product=third_product),
        ],
        refunds=[paid("R1", "O1", "2026-03-02 12:00:00"), paid("R2", "O2", "2026-03-10 07:30:00")],
    )


def test_refund_cycle_fires_on_two_refunds_each_followed_by_a_repurchase(tmp_path):
    outcome = night(tmp_path, **cycles("2026-03-11 10:00:00"))
    assert fired(outcome) == {("E1", "REFUND_CYCLE")}
    signal = hit(outcome, "E1", "REFUND_CYCLE")
    assert signal["refund_ids"] == ["R1", "R2"]
    assert signal["evidence"]["cycles"] == 2
    assert signal["evidence"]["threshold"] == 2
    assert [
        (item["refund_id"], item["repurchase_order_id"], item["days_to_repurchase"])
        for item in signal["evidence"]["refunds"]
    ] == [("R1", "O2", 7), ("R2", "O3", 1)]


# --- PROMO_REFUNDS ---------------------------------------------------------------------


def test_promo_refunds_fires_on_two_discounted_or_couponed_orders_refunded(tmp_path):
    outcome = night(
        tmp_path,
        purchases=[
            order("O1", discount="10.00"),
            order("O2", coupon="5.00"),
        ],
        refunds=[
            paid("R1", "O1", "2026-03-02 12:00:00", amount="90.00"),
            pending("R2", "O2", "2026-03-20 12:00:00", amount="95.00"),
        ],
    )
    assert fired(outcome) == {("E1", "PROMO_REFUNDS")}
    signal = hit(outcome, "E1", "PROMO_REFUNDS")
    assert signal["refund_ids"] == ["R1", "R2"]
    assert signal["evidence"]["promo_orders"] == 2
    assert signal["evidence"]["threshold"] == 2


# --- REFUND_BEFORE_SUSPENSION ----------------------------------------------------------
# E1 owns A1 (O1, refunded 2026-03-02 07:30 = 03-01 23:30 UTC) and A2 (O2).


def two_accounts():
    return [order("O1", account_id="A1"), order("O2", account_id="A2")]


def test_refund_before_suspension_fires_on_the_7th_billing_day(tmp_path):
    outcome = night(
        tmp_path,
        purchases=two_accounts(),
        refunds=[paid("R1", "O1", "2026-03-02 07:30:00")],
        account_status=[suspended("A2", "2026-03-09 23:30:00")],
    )
    assert fired(outcome, "REFUND_BEFORE_SUSPENSION") == {"E1"}
    signal = hit(outcome, "E1", "REFUND_BEFORE_SUSPENSION")
    assert signal["refund_ids"] == ["R1"]
    [suspension] = signal["evidence"]["suspensions"]
    assert suspension["refund_id"] == "R1"
    assert suspension["account_id"] == "A2"
    assert suspension["reason"] == "content_violation"
    assert suspension["days_after_request"] == 7
    assert moment(suspension["effective_at"]) == datetime(2026, 3, 9, 23, 30, tzinfo=BILLING)


# --- linked groups and LINKED_ENTITIES -------------------------------------------------
# Fingerprints are longer than 8 characters so a masked one can never equal the raw one.

FP1 = "fp-card-1111-2222-3333"
FP2 = "fp-wallet-4444-5555-6666"


def chain(second_refund_at):
    """EA and EB share FP1, EB and EC share FP2; EA refunds on 2026-03-02 07:30, EC as given."""
    return dict(
        purchases=[
            order("OA", "EA", fingerprint=FP1),
            order("OB1", "EB", fingerprint=FP1),
            order("OB2", "EB", fingerprint=FP2),
            order("OC", "EC", fingerprint=FP2),
            order("OD", "ED", fingerprint="fp-alone-7777-8888"),
        ],
        refunds=[paid("RA", "OA", "2026-03-02 07:30:00"), paid("RC", "OC", second_refund_at)],
    )


def test_fingerprint_chain_links_a_and_c_into_one_group(tmp_path):
    outcome = night(tmp_path, **chain("2026-03-20 12:00:00"))
    found = groups(outcome)
    assert found["EA"] == found["EB"] == found["EC"]
    assert found["EA"][1] == 3
    assert found["ED"][1] == 1
    assert found["ED"][0] != found["EA"][0]


def test_linked_entities_fires_for_every_entity_of_the_group_on_refunds_four_days_apart(tmp_path):
    # 03-02 07:30 billing is 03-01 UTC; 03-06 23:30 billing is 03-06 UTC: 4 billing days, 5 UTC days.
    outcome = night(tmp_path, **chain("2026-03-06 23:30:00"))
    assert fired(outcome) == {("EA", "LINKED_ENTITIES"), ("EB", "LINKED_ENTITIES"), ("EC", "LINKED_ENTITIES")}
    group_ids = set()
    for entity in ("EA", "EB", "EC"):
        signal = hit(outcome, entity, "LINKED_ENTITIES")
        assert signal["refund_ids"] == ["RA", "RC"]
        assert signal["evidence"]["group_entity_ids"] == ["EA", "EB", "EC"]
        [pair] = signal["evidence"]["refund_pairs"]
        assert (pair["first_refund_id"], pair["second_refund_id"], pair["billing_days_apart"]) == ("RA", "RC", 4)
        group_ids.add(signal["group_id"])
    assert len(group_ids) == 1


def test_entities_without_a_fingerprint_are_not_linked(tmp_path):
    outcome = night(
        tmp_path,
        purchases=[order("O1", "E1", fingerprint=""), order("O2", "E2", fingerprint="")],
        refunds=[paid("R1", "O1", "2026-03-02 12:00:00"), paid("R2", "O2", "2026-03-03 12:00:00")],
    )
    found = groups(outcome)
    assert found["E1"][1] == found["E2"][1] == 1
    assert found["E1"][0] != found["E2"][0]
    assert fired(outcome) == set()


def shared_by_three(fingerprint="fp-marketplace-9999-0000"):
    return dict(
        purchases=[order(f"O{n}", f"E{n}", fingerprint=fingerprint) for n in (1, 2, 3)],
        refunds=[paid("R1", "O1", "2026-03-02 12:00:00"), paid("R2", "O2", "2026-03-03 12:00:00")],
    )


def test_a_fingerprint_shared_by_more_entities_than_the_limit_does_not_link(tmp_path):
    fingerprint = "fp-marketplace-9999-0000"
    outcome = night(tmp_path, signals=SignalSettings(linked_fingerprint_max_entities=2), **shared_by_three(fingerprint))
    rows = outcome.con.execute(
        "SELECT fingerprint, entity_count, links_entities, entity_ids FROM fingerprint_sharing"
    ).fetchall()
    assert len(rows) == 1
    shown, entity_count, links_entities, entity_ids = rows[0]
    assert (entity_count, links_entities, list(entity_ids)) == (3, False, ["E1", "E2", "E3"])
    assert shown != fingerprint
    found = groups(outcome)
    assert {found[entity][1] for entity in ("E1", "E2", "E3")} == {1}
    assert len({found[entity][0] for entity in ("E1", "E2", "E3")}) == 3
    assert fired(outcome) == set()


def test_evidence_never_shows_a_full_fingerprint(tmp_path):
    outcome = night(tmp_path, **chain("2026-03-03 12:00:00"))
    evidence = [text for (text,) in outcome.con.execute("SELECT evidence FROM abuse_signals").fetchall()]
    assert len(evidence) == 3
    for text in evidence:
        assert FP1 not in text and FP2 not in text
    shared = hit(outcome, "EB", "LINKED_ENTITIES")["evidence"]["shared_fingerprints"]
    assert sorted(item["entity_ids"] for item in shared) == [["EA", "EB"], ["EB", "EC"]]
    for item in shared:
        assert item["fingerprint"] not in (FP1, FP2)
        assert len(item["fingerprint"]) < len(FP1)


# --- LINKED_TO_SUSPENDED ---------------------------------------------------------------
# E1 refunds O1 (account A1); its other account A2 is suspended for good on 2026-03-20,
# 18 days after the refund (so REFUND_BEFORE_SUSPENSION stays quiet).


def test_linked_to_suspended_fires_when_another_account_of_the_entity_is_suspended(tmp_path):
    outcome = night(
        tmp_path,
        purchases=two_accounts(),
        refunds=[paid("R1", "O1", "2026-03-02 12:00:00")],
        account_status=[suspended("A2", "2026-03-20 12:00:00", reason="illegal_activity")],
    )
    assert fired(outcome) == {("E1", "LINKED_TO_SUSPENDED")}
    signal = hit(outcome, "E1", "LINKED_TO_SUSPENDED")
    assert signal["refund_ids"] == ["R1"]
    [account] = signal["evidence"]["suspended_accounts"]
    assert (account["account_id"], account["entity_id"], account["reason"]) == ("A2", "E1", "illegal_activity")
    assert signal["evidence"]["refunded_accounts"] == ["A1"]


def test_linked_to_suspended_can_be_switched_off(tmp_path):
    outcome = night(
        tmp_path,
        signals=SignalSettings(disabled=("LINKED_TO_SUSPENDED",)),
        purchases=two_accounts(),
        refunds=[paid("R1", "O1", "2026-03-02 12:00:00")],
        account_status=[suspended("A2", "2026-03-20 12:00:00")],
    )
    assert fired(outcome) == set()
    assert cases(outcome) == []


# --- USAGE_SHIFT -----------------------------------------------------------------------
# O1 (SDKAppID 1400000001) bought 2026-03-01 10:00, refunded 2026-03-03 12:00.


def shifted() -> dict:
    """300 and 200 free or pay-as-you-go minutes of SDKAppID 1400000001 between purchase and refund."""
    return dict(
        purchases=[order("O1")],
        refunds=[paid("R1", "O1", "2026-03-03 12:00:00")],
        usage=[
            used("300", "2026-03-01 11:00:00", "", usage_id="U1"),
            used("200", "2026-03-02 20:00:00", "", usage_id="U2"),
        ],
    )


def test_usage_shift_fires_at_500_free_or_payg_minutes(tmp_path):
    outcome = night(tmp_path, **shifted())
    assert fired(outcome) == {("E1", "USAGE_SHIFT")}
    signal = hit(outcome, "E1", "USAGE_SHIFT")
    assert signal["refund_ids"] == ["R1"]
    [item] = signal["evidence"]["refunds"]
    assert float(item["free_or_payg_minutes"]) == 500
    assert item["usage_records"] == 2
    assert item["package_minutes_used"] == 0
    assert signal["evidence"]["min_minutes"] == 500


# --- REFUND_VELOCITY -------------------------------------------------------------------


def refunds_on(day: str, count: int, prefix="V"):
    """`count` entities, each with one order bought and refunded on `day`."""
    purchases = [order(f"O{prefix}{n:02d}", f"E{prefix}{n:02d}", bought=f"{day} 08:00:00") for n in range(1, count + 1)]
    refunds = [paid(f"R{prefix}{n:02d}", f"O{prefix}{n:02d}", f"{day} 12:00:00") for n in range(1, count + 1)]
    return purchases, refunds


def test_refund_velocity_fires_for_every_entity_on_a_day_with_20_refunds(tmp_path):
    purchases, refunds = refunds_on("2026-03-30", 20)
    outcome = night(tmp_path, purchases=purchases, refunds=refunds)
    assert fired(outcome) == {(f"EV{n:02d}", "REFUND_VELOCITY") for n in range(1, 21)}
    signal = hit(outcome, "EV07", "REFUND_VELOCITY")
    assert signal["refund_ids"] == ["RV07"]
    [spike] = signal["evidence"]["spike_days"]
    assert spike["day"] == "2026-03-30"
    assert spike["live_refunds"] == 20
    assert float(spike["baseline_median"]) == 0


# --- cases -----------------------------------------------------------------------------


def test_one_case_per_linked_group_with_signals(tmp_path):
    exports = chain("2026-03-03 12:00:00")
    exports["purchases"] += three_orders("E9")
    exports["refunds"] += [paid(f"R9{n}", f"O{n}", f"2026-03-1{n} 12:00:00") for n in (1, 2, 3)]
    outcome = night(tmp_path, **exports)
    found = {(tuple(case["entity_ids"]), tuple(case["signal_codes"])) for case in cases(outcome)}
    assert found == {(("EA", "EB", "EC"), ("LINKED_ENTITIES",)), (("E9",), ("SERIAL_REFUNDER",))}
    assert len({case["case_id"] for case in cases(outcome)}) == 2


def test_a_case_counts_the_refunds_behind_its_signals_and_their_amount(tmp_path):
    exports = chain("2026-03-03 12:00:00")
    exports["purchases"][3] = order("OC", "EC", fingerprint=FP2, price="60.00")
    exports["refunds"][1] = paid("RC", "OC", "2026-03-03 12:00:00", amount="60.00")
    # EB's refund 200 days ago lies outside every window: not behind any signal.
    exports["purchases"].append(order("OB0", "EB", fingerprint=FP1, bought="2025-09-10 10:00:00"))
    exports["refunds"].append(paid("RB0", "OB0", "2025-09-11 12:00:00"))
    outcome = night(tmp_path, **exports)
    case = only_case(outcome)
    assert case["refund_ids"] == ["RA", "RC"]
    assert case["refund_count"] == 2
    assert case["amount_refunded"] == "160.00"


def test_case_score_is_not_diluted_by_a_weak_signal(tmp_path):
    weights = dict(DEFAULT_SIGNAL_WEIGHTS) | {"PROMO_REFUNDS": 0.05}
    exports = dict(
        purchases=[order(f"O{n}", discount="10.00") for n in (1, 2, 3)],
        refunds=[paid(f"R{n}", f"O{n}", f"2026-03-1{n} 12:00:00", amount="90.00") for n in (1, 2, 3)],
    )
    strong_alone = only_case(
        night(tmp_path / "alone", signals=SignalSettings(weights=weights, disabled=("PROMO_REFUNDS",)), **exports)
    )
    with_weak = only_case(night(tmp_path / "both", signals=SignalSettings(weights=weights), **exports))
    assert strong_alone["signal_codes"] == ["SERIAL_REFUNDER"]
    assert with_weak["signal_codes"] == ["PROMO_REFUNDS", "SERIAL_REFUNDER"]
    assert with_weak["score"] >= strong_alone["score"] == 50.0


def test_case_severity_follows_the_score_bands(tmp_path):
    serial = dict(
        purchases=three_orders(), refunds=[paid(f"R{n}", f"O{n}", f"2026-03-1{n} 12:00:00") for n in (1, 2, 3)]
    )
    medium = only_case(night(tmp_path / "serial", **serial))
    assert (medium["score"], medium["severity"]) == (50.0, "medium")
    promo = dict(
        purchases=[order(f"O{n}", discount="10.00") for n in (1, 2, 3)],
        refunds=[paid(f"R{n}", f"O{n}", f"2026-03-1{n} 12:00:00", amount="90.00") for n in (1, 2, 3)],
    )
    high = only_case(night(tmp_path / "promo", **promo))  # 1 - 0.5 * 0.6 = 0.7
    assert (high["score"], high["severity"]) == (70.0, "high")
    critical = only_case(
        night(
            tmp_path / "suspension",
            purchases=two_accounts(),
            refunds=[paid("R1", "O1", "2026-03-02 07:30:00")],
            account_status=[suspended("A2", "2026-03-03 12:00:00")],
        )
    )
    assert critical["signal_codes"] == ["LINKED_TO_SUSPENDED", "REFUND_BEFORE_SUSPENSION"]
    assert (critical["score"], critical["severity"]) == (92.0, "critical")  # 1 - 0.2 * 0.4
    purchases, refunds = refunds_on("2026-03-30", 20)
    low = night(tmp_path / "velocity", purchases=purchases, refunds=refunds)
    assert {(case["score"], case["severity"]) for case in cases(low)} == {(30.0, "low")}


# --- warehouse nights: case ids and dispositions ---------------------------------------


# What these tests read is the warehouse: no report or exports (tests/test_report.py and
# tests/test_exports.py read the cases there).
PUBLISHING = Settings(write_report=False, write_exports=False)


def publish_night(tmp_path, name: str, db_path: Path, as_of: date = AS_OF, **exports) -> None:
    """Run one night into the warehouse at db_path; every fixture row must load."""
    folder = write_exports(tmp_path / name, **exports)
    result = run(PUBLISHING, folder, as_of, db_path=db_path)
    (quarantined,) = result.con.execute("SELECT count(*) FROM quarantine").fetchone()
    assert quarantined == 0
    result.con.close()


def query(db_path: Path, sql: str, params=()):
    with duckdb.connect(str(db_path)) as con:
        return con.execute(sql, list(params)).fetchall()


def warehouse_cases(db_path: Path) -> dict[str, dict]:
    rows = query(
        db_path,
        "SELECT case_id, entity_ids, signal_codes, refund_ids, disposition, disposition_reason FROM abuse_cases",
    )
    keys = ("case_id", "entity_ids", "signal_codes", "refund_ids", "disposition", "disposition_reason")
    return {row[1][0]: dict(zip(keys, row, strict=True)) for row in rows}  # keyed by the group's first entity


def decide(
    db_path: Path,
    case: dict,
    disposition: str,
    *,
    reviewer="rita",
    note="checked",
    decided_at=datetime(2026, 4, 1, 9, 0, tzinfo=BILLING),
) -> None:
    """Record a reviewer decision the way the review command stores it."""
    query(
        db_path,
        "INSERT INTO case_dispositions (case_id, disposition, reviewer, note, decided_at, refund_ids, "
        "signal_codes) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [case["case_id"], disposition, reviewer, note, decided_at, case["refund_ids"], case["signal_codes"]],
    )


def serial_night(entity_id="E1", prefix=""):
    """An entity with three refunds in March: SERIAL_REFUNDER on 2026-03-31."""
    return dict(
        purchases=[order(f"{prefix}O{n}", entity_id, bought="2026-03-01 10:00:00") for n in (1, 2, 3)],
        refunds=[
            paid(f"{prefix}R{n}", f"{prefix}O{n}", day)
            for n, day in ((1, "2026-03-10 12:00:00"), (2, "2026-03-20 12:00:00"), (3, "2026-03-28 12:00:00"))
        ],
    )


def two_serial_refunders() -> dict:
    """E1 and E2, each with three refunds in March: two groups, two cases."""
    first, second = serial_night("E1", "a"), serial_night("E2", "b")
    return dict(purchases=first["purchases"] + second["purchases"], refunds=first["refunds"] + second["refunds"])


@pytest.fixture(scope="module")
def serial_warehouse(tmp_path_factory) -> Path:
    """serial_night() published as of 2026-03-31 (E1's open case), shared: tests change a copy."""
    folder = tmp_path_factory.mktemp("serial")
    publish_night(folder, "in", folder / "recon.duckdb", **serial_night())
    return folder / "recon.duckdb"


@pytest.fixture(scope="module")
def two_groups_warehouse(tmp_path_factory) -> Path:
    """two_serial_refunders() published as of 2026-03-31, shared: tests change a copy."""
    folder = tmp_path_factory.mktemp("two-groups")
    publish_night(folder, "in", folder / "recon.duckdb", **two_serial_refunders())
    return folder / "recon.duckdb"


def copy_of(db_path: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(db_path, tmp_path / "recon.duckdb"))


def test_case_id_is_stable_across_nights_while_the_group_is(tmp_path):
    exports = chain("2026-03-03 12:00:00")
    db_path = tmp_path / "recon.duckdb"
    publish_night(tmp_path, "in", db_path, as_of=date(2026, 3, 31), **exports)
    first = warehouse_cases(db_path)["EA"]
    publish_night(tmp_path, "in", db_path, as_of=date(2026, 4, 2), **exports)
    second = warehouse_cases(db_path)["EA"]
    assert first["entity_ids"] == second["entity_ids"] == ["EA", "EB", "EC"]
    assert second["case_id"] == first["case_id"]
    history = query(db_path, "SELECT DISTINCT case_id FROM abuse_cases_history")
    assert history == [(first["case_id"],)]
    assert query(db_path, "SELECT count(*) FROM runs") == [(2,)]


def test_case_id_is_the_same_on_two_separate_runs_of_the_same_group(tmp_path):
    exports = chain("2026-03-03 12:00:00")
    first = only_case(night(tmp_path / "first", as_of=date(2026, 3, 31), **exports))
    second = only_case(night(tmp_path / "second", as_of=date(2026, 4, 2), **exports))
    assert first["entity_ids"] == second["entity_ids"] == ["EA", "EB", "EC"]
    assert second["case_id"] == first["case_id"]


def test_a_case_keeps_its_id_when_a_new_entity_joins_its_group(tmp_path):
    # Documented in sql/abuse/40_abuse_cases.sql: a case keeps the id of last night's case
    # sharing the most entities, so reviewers' decisions follow it. E0 joins through FP1 and
    # becomes the group's smallest entity id.
    exports = chain("2026-03-03 12:00:00")
    db_path = tmp_path / "recon.duckdb"
    publish_night(tmp_path, "in", db_path, as_of=date(2026, 3, 31), **exports)
    held = warehouse_cases(db_path)["EA"]
    exports["purchases"].append(order("O0", "E0", fingerprint=FP1, bought="2026-04-01 10:00:00"))
    publish_night(tmp_path, "in2", db_path, as_of=date(2026, 4, 1), **exports)
    grown = warehouse_cases(db_path)["E0"]
    assert grown["entity_ids"] == ["E0", "EA", "EB", "EC"]
    assert grown["case_id"] == held["case_id"]


def test_case_ids_differ_between_groups(two_groups_warehouse):
    found = warehouse_cases(two_groups_warehouse)
    assert set(found) == {"E1", "E2"}
    assert found["E1"]["case_id"] != found["E2"]["case_id"]


def test_a_new_case_is_open(serial_warehouse):
    case = warehouse_cases(serial_warehouse)["E1"]
    assert case["disposition"] == "open"
    assert case["refund_ids"] == ["R1", "R2", "R3"]


def test_a_false_positive_stays_false_positive_on_a_rerun_of_the_same_night(serial_warehouse, tmp_path):
    db_path = copy_of(serial_warehouse, tmp_path)
    decide(db_path, warehouse_cases(db_path)["E1"], "false_positive", note="a reseller, known")
    publish_night(tmp_path, "in", db_path, **serial_night())
    case = warehouse_cases(db_path)["E1"]
    assert case["disposition"] == "false_positive"
    assert case["disposition_reason"] == "a reseller, known"


def test_a_false_positive_reopens_when_a_new_refund_arrives_for_the_group(tmp_path):
    exports = serial_night()
    exports["purchases"].append(order("O4", bought="2026-04-01 08:00:00"))
    exports["refunds"].append(pending("R4", "O4", "2026-04-01 10:00:00"))
    db_path = tmp_path / "recon.duckdb"
    publish_night(tmp_path, "in", db_path, as_of=date(2026, 3, 31), **exports)  # R4 not yet seen
    held = warehouse_cases(db_path)["E1"]
    assert held["refund_ids"] == ["R1", "R2", "R3"]
    decide(db_path, held, "false_positive")
    publish_night(tmp_path, "in", db_path, as_of=date(2026, 4, 1), **exports)
    case = warehouse_cases(db_path)["E1"]
    assert case["case_id"] == held["case_id"]
    assert case["disposition"] == "reopened"
    assert "R4" in case["disposition_reason"]
    assert "R1" not in case["disposition_reason"]


def test_a_false_positive_reopens_when_a_new_signal_arrives_for_the_group(tmp_path):
    exports = serial_night()
    exports["purchases"].append(order("O5", account_id="A2", bought="2026-03-01 10:00:00"))
    exports["account_status"] = [suspended("A2", "2026-04-01 12:00:00")]  # 4 days after R3
    db_path = tmp_path / "recon.duckdb"
    publish_night(tmp_path, "in", db_path, as_of=date(2026, 3, 31), **exports)
    held = warehouse_cases(db_path)["E1"]
    assert held["signal_codes"] == ["SERIAL_REFUNDER"]
    decide(db_path, held, "false_positive")
    publish_night(tmp_path, "in", db_path, as_of=date(2026, 4, 1), **exports)
    case = warehouse_cases(db_path)["E1"]
    assert case["refund_ids"] == ["R1", "R2", "R3"]
    assert case["disposition"] == "reopened"
    assert "REFUND_BEFORE_SUSPENSION" in case["disposition_reason"]


def test_dispositions_survive_reruns(serial_warehouse, tmp_path):
    exports = serial_night()
    db_path = copy_of(serial_warehouse, tmp_path)
    decide(db_path, warehouse_cases(db_path)["E1"], "needs_info", note="ask sales")
    decide(
        db_path,
        warehouse_cases(db_path)["E1"],
        "confirmed",
        note="abuse",
        decided_at=datetime(2026, 4, 1, 10, 0, tzinfo=BILLING),
    )
    before = query(db_path, "SELECT * FROM case_dispositions ORDER BY decided_at")
    publish_night(tmp_path, "in", db_path, **exports)
    publish_night(tmp_path, "in", db_path, as_of=date(2026, 4, 1), **exports)
    assert query(db_path, "SELECT * FROM case_dispositions ORDER BY decided_at") == before
    assert len(before) == 2
    assert warehouse_cases(db_path)["E1"]["disposition"] == "confirmed"


def test_signal_precision_counts_confirmed_and_false_positive_cases(two_groups_warehouse, tmp_path):
    db_path = copy_of(two_groups_warehouse, tmp_path)
    found = warehouse_cases(db_path)
    decide(db_path, found["E1"], "confirmed")
    decide(db_path, found["E2"], "false_positive")
    rows = query(
        db_path,
        "SELECT signal_code, confirmed, false_positive, CAST(precision AS DOUBLE) "
        "FROM signal_precision WHERE signal_code IN ('SERIAL_REFUNDER', 'PROMO_REFUNDS') "
        "ORDER BY signal_code",
    )
    assert rows == [("PROMO_REFUNDS", 0, 0, None), ("SERIAL_REFUNDER", 1, 1, 0.5)]


def test_signal_precision_counts_each_case_by_its_latest_decision(serial_warehouse, tmp_path):
    db_path = copy_of(serial_warehouse, tmp_path)
    case = warehouse_cases(db_path)["E1"]
    decide(db_path, case, "false_positive", decided_at=datetime(2026, 4, 1, 9, 0, tzinfo=BILLING))
    decide(db_path, case, "confirmed", decided_at=datetime(2026, 4, 2, 9, 0, tzinfo=BILLING))
    rows = query(
        db_path,
        "SELECT confirmed, false_positive, needs_info, CAST(precision AS DOUBLE) "
        "FROM signal_precision WHERE signal_code = 'SERIAL_REFUNDER'",
    )
    assert rows == [(1, 0, 0, 1.0)]
