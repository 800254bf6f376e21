"""History across nights (issue #4): records upserted by key, exact replays, idempotent reruns,
backfills and the flag_changes view. Each test publishes a few tiny nights into a warehouse; a
first night several tests start from is published once (`first_night`) and copied."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.config import Settings
from jobs.errors import PublishError
from jobs.outputs import report
from jobs.pipeline import run
from tests.exports import purchase, refund, status, usage, write_exports

SETTINGS = Settings(max_bad_row_fraction=1.0, write_report=False, write_exports=False)
NIGHT_1, NIGHT_2, NIGHT_3 = date(2026, 3, 10), date(2026, 3, 11), date(2026, 3, 12)
# The job's outputs that must not change when a night is run again; run ids and times aside.
OUTPUTS = (
    "refund_flags",
    "refund_verdicts",
    "abuse_signals",
    "abuse_cases",
    "daily_reconciliation",
    "validation_errors",
    "invariant_results",
    "purchases",
    "usage",
    "refunds",
    "account_status",
)
RUN_COLUMNS = ("run_id",)


def deliver(tmp_path: Path, as_of: date, **exports):
    """Publish one night's folder (only the exports given, the rest empty) into the warehouse."""
    folder = write_exports(tmp_path / f"exports-{as_of}", **exports)
    return run(SETTINGS, folder, as_of, tmp_path / "recon.duckdb")


@pytest.fixture(scope="module")
def first_night(tmp_path_factory):
    """`first_night(tmp_path, **exports)`: the warehouse of deliver(tmp_path, NIGHT_1, **exports),
    each distinct first night published once per module and copied in; returns its run id."""
    built: dict[str, tuple[Path, str]] = {}

    def copied_into(tmp_path: Path, **exports) -> str:
        key = repr(sorted(exports.items()))
        if key not in built:
            folder = tmp_path_factory.mktemp("first-night")
            built[key] = (folder, deliver(folder, NIGHT_1, **exports).run_id)
        folder, run_id = built[key]
        shutil.copy(folder / "recon.duckdb", tmp_path / "recon.duckdb")
        return run_id

    return copied_into


def replay(tmp_path: Path, as_of: date):
    return run(SETTINGS, None, as_of, tmp_path / "recon.duckdb")


def query(tmp_path: Path, sql: str, parameters=()) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "recon.duckdb"), read_only=True) as con:
        return con.execute(sql, list(parameters)).fetchall()


def snapshot(tmp_path: Path, table: str) -> list[tuple]:
    """A table's rows without the run's own id, in a stable order."""
    with duckdb.connect(str(tmp_path / "recon.duckdb"), read_only=True) as con:
        columns = [
            name
            for (name,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? "
                "AND column_name NOT IN ('run_id', '_run_id') ORDER BY column_index",
                [table],
            ).fetchall()
        ]
        listed = ", ".join(f'"{name}"' for name in columns)
        return con.execute(f"SELECT {listed} FROM {table} ORDER BY ALL").fetchall()


def history_of(tmp_path: Path, table: str, run_id: str) -> list[tuple]:
    """A run's rows of `<table>_history`, without the run id."""
    with duckdb.connect(str(tmp_path / "recon.duckdb"), read_only=True) as con:
        return con.execute(
            f"SELECT * EXCLUDE (run_id) FROM {table}_history WHERE run_id = ? ORDER BY ALL", [run_id]
        ).fetchall()


def test_a_delta_night_adds_to_the_records_of_earlier_nights(first_night, tmp_path):
    first_night(tmp_path, purchases=[purchase(order_id="O1")])
    night = deliver(tmp_path, NIGHT_2, refunds=[refund(refund_id="R2", order_id="O1")])
    assert night.files["refunds"].rows_loaded == 1  # O1 came the night before: not an unknown order
    assert query(tmp_path, "SELECT order_id FROM purchases") == [("O1",)]
    assert query(tmp_path, "SELECT refund_id, verdict FROM refund_verdicts") == [("R2", "compliant")]


# A first night of an order, its usage and a pending refund (MINUTES_USED): several tests start from it.
PENDING_REFUND = dict(purchases=[purchase()], usage=[usage()], refunds=[refund(status="pending", processed_at="")])


def test_a_later_export_of_the_same_key_wins_and_names_the_run_that_changed_it(first_night, tmp_path):
    first_run_id = first_night(tmp_path, **PENDING_REFUND)
    second = deliver(tmp_path, NIGHT_2, refunds=[refund(status="paid", processed_at="2026-03-11 09:00:00")])
    assert query(tmp_path, "SELECT status, _run_id, _valid_from FROM refunds") == [("paid", second.run_id, NIGHT_2)]
    assert query(
        tmp_path, "SELECT status, _run_id, _valid_from, _valid_to FROM refunds_versions ORDER BY _valid_from"
    ) == [("pending", first_run_id, NIGHT_1, NIGHT_2), ("paid", second.run_id, NIGHT_2, None)]


def test_an_unchanged_row_of_a_full_snapshot_keeps_the_run_that_last_changed_it(first_night, tmp_path):
    first_run_id = first_night(tmp_path, purchases=[purchase()], usage=[usage()])
    deliver(tmp_path, NIGHT_2, purchases=[purchase()], usage=[usage()])
    assert query(tmp_path, "SELECT _run_id, _valid_from FROM usage_versions") == [(first_run_id, NIGHT_1)]


def test_a_record_missing_from_a_later_snapshot_is_kept(tmp_path):
    deliver(tmp_path, NIGHT_1, purchases=[purchase(order_id="O1"), purchase(order_id="O2")])
    deliver(tmp_path, NIGHT_2, purchases=[purchase(order_id="O2")])
    assert query(tmp_path, "SELECT order_id FROM purchases ORDER BY 1") == [("O1",), ("O2",)]


def test_a_row_tonight_that_differs_only_in_an_extra_column_is_no_new_version(tmp_path):
    deliver(tmp_path, NIGHT_1, purchases=[purchase() | {"note": "first"}])
    deliver(tmp_path, NIGHT_2, purchases=[purchase() | {"note": "second"}])
    assert query(tmp_path, "SELECT count(*), any_value(_extra_columns['note']) FROM purchases_versions") == [
        (1, "first")
    ]


def test_a_quarantined_row_tonight_keeps_the_stored_version_but_withholds_the_record(first_night, tmp_path):
    first_run_id = first_night(tmp_path, purchases=[purchase(product="call")])
    night = deliver(tmp_path, NIGHT_2, purchases=[purchase(product="bundle")])
    assert night.files["purchases"].rows_quarantined == 1
    assert query(
        tmp_path,
        "SELECT product, _quarantined, _run_id, _source_line, _valid_from, _valid_to "
        "FROM purchases_versions ORDER BY _valid_from",
    ) == [("call", False, first_run_id, 2, NIGHT_1, NIGHT_2), ("call", True, night.run_id, 2, NIGHT_2, None)]
    assert query(tmp_path, "SELECT order_id FROM purchases") == []
    assert query(tmp_path, "SELECT product FROM records_valid_on('purchases_versions', ?)", [NIGHT_1]) == [("call",)]


# --- a record whose latest delivery is quarantined is not judged on its stored version ----------

BEFORE_ITS_ORDER = dict(requested_at="2026-02-28 10:00:00")  # O1 was bought 2026-03-01: refund_before_purchase
# Each export: the night before (one valid record), tonight (that record redelivered bad), and the
# records the rules then judge. The stored version is never judged while the latest delivery is bad.
WITHHELD = {
    "purchases": (
        dict(purchases=[purchase()]),
        dict(purchases=[purchase(product="bundle")]),
        "SELECT order_id FROM purchases",
    ),
    "usage": (
        dict(purchases=[purchase()], usage=[usage()]),
        dict(usage=[usage(media_type="smell")]),
        "SELECT usage_id FROM usage",
    ),
    "refunds": (
        dict(purchases=[purchase()], refunds=[refund()]),
        dict(refunds=[refund(**BEFORE_ITS_ORDER)]),
        "SELECT refund_id FROM refunds",
    ),
    "account_status": (
        dict(purchases=[purchase()], account_status=[status()]),
        dict(account_status=[status(reason="bad_luck")]),
        "SELECT account_id FROM account_status",
    ),
}


@pytest.mark.parametrize("stem", sorted(WITHHELD))
def test_a_record_whose_latest_delivery_is_quarantined_is_not_judged_tonight_nor_on_later_nights(
    first_night, tmp_path, stem
):
    before, tonight, judged = WITHHELD[stem]
    first_night(tmp_path, **before)
    assert query(tmp_path, judged)
    night = deliver(tmp_path, NIGHT_2, **tonight)
    assert night.files[stem].rows_quarantined == 1
    assert query(tmp_path, judged) == []
    deliver(tmp_path, NIGHT_3)  # a delta without the record: its latest delivery is still the bad one
    assert query(tmp_path, judged) == []
    replay(tmp_path, NIGHT_2)
    assert query(tmp_path, judged) == []


def test_a_refund_redelivered_bad_is_quarantined_and_not_judged_from_its_previous_version(first_night, tmp_path):
    pending = dict(status="pending", processed_at="")
    first_night(tmp_path, **PENDING_REFUND)
    assert query(tmp_path, "SELECT refund_id, verdict FROM refund_verdicts") == [("R1", "stop")]  # MINUTES_USED
    night = deliver(tmp_path, NIGHT_2, refunds=[refund(**pending, **BEFORE_ITS_ORDER)])
    assert query(tmp_path, 'SELECT source, line, "check" FROM validation_errors') == [
        ("refunds", 2, "refund_before_purchase")
    ]
    assert query(tmp_path, "SELECT count(*) FROM refund_verdicts") == [(0,)]
    assert query(tmp_path, "SELECT count(*) FROM refund_flags") == [(0,)]
    assert query(tmp_path, "SELECT change, refund_id FROM flag_changes") == [("resolved", "R1")]
    assert night.con.execute("SELECT passed FROM invariant_results WHERE invariant = 'I16'").fetchall() == [(True,)]
    deliver(tmp_path, NIGHT_3, refunds=[refund(**pending)])  # corrected: judged again
    assert query(tmp_path, "SELECT refund_id, verdict FROM refund_verdicts") == [("R1", "stop")]


def test_the_dependants_of_an_order_redelivered_bad_are_not_judged_on_its_stored_version(first_night, tmp_path):
    first_night(tmp_path, purchases=[purchase()], refunds=[refund()])
    deliver(
        tmp_path,
        NIGHT_2,
        purchases=[purchase(paid_cash_credit="90.00")],  # breaks the refundable identity
        refunds=[refund(refund_id="R2", requested_at="2026-03-02 13:00:00")],
        usage=[usage(usage_id="U2")],
    )
    ((reason,),) = query(tmp_path, "SELECT message FROM validation_errors WHERE source = 'purchases'")
    assert query(tmp_path, 'SELECT source, line, "check", message FROM validation_errors ORDER BY source') == [
        ("purchases", 2, "refundable_amount_identity", reason),
        ("refunds", 2, "order_quarantined", f"order O1 is quarantined (purchases line 2: {reason})"),
        ("usage", 2, "order_quarantined", f"order O1 is quarantined (purchases line 2: {reason})"),
    ]
    assert query(tmp_path, "SELECT refund_id FROM refunds") == []  # R1, stored, waits for its order
    assert query(tmp_path, "SELECT count(*) FROM refund_verdicts") == [(0,)]
    deliver(tmp_path, NIGHT_3, refunds=[refund(refund_id="R3", requested_at="2026-03-02 14:00:00")])
    assert query(tmp_path, 'SELECT source, "check", message FROM validation_errors') == [
        (
            "refunds",
            "order_quarantined",
            "order O1 is quarantined (its latest delivery, purchases line 2 on 2026-03-11, was quarantined)",
        )
    ]
    deliver(tmp_path, date(2026, 3, 13), purchases=[purchase()])  # the order corrected: R1 judged again
    assert query(tmp_path, "SELECT refund_id, verdict FROM refund_verdicts") == [("R1", "compliant")]


def test_a_purchase_redelivered_bad_still_holds_its_account_for_its_entity(first_night, tmp_path):
    first_night(tmp_path, purchases=[purchase(order_id="O1", account_id="A1", entity_id="E1")])
    deliver(
        tmp_path,
        NIGHT_2,
        purchases=[
            purchase(order_id="O1", product="bundle"),
            purchase(order_id="O2", account_id="A1", entity_id="E2", purchased_at="2026-03-11 10:00:00"),
        ],
    )
    assert query(tmp_path, 'SELECT line, "check" FROM validation_errors ORDER BY line') == [
        (2, "isin"),
        (3, "account_entity_conflict"),
    ]


def test_rerunning_a_night_on_the_same_files_changes_no_output_and_adds_one_runs_row(tmp_path):
    exports = dict(
        purchases=[purchase(), purchase(order_id="O2", product="spam")],
        usage=[usage(minutes="0.01")],
        refunds=[refund(requested_at="2026-03-08 09:00:00", processed_at="2026-03-09 09:00:00")],
    )
    deliver(tmp_path, NIGHT_1, **exports)
    before = {table: snapshot(tmp_path, table) for table in (*OUTPUTS, "usage_versions", "refunds_versions")}
    versions_before = query(tmp_path, "SELECT _run_id FROM refunds_versions")
    deliver(tmp_path, NIGHT_1, **exports)
    after = {table: snapshot(tmp_path, table) for table in before}
    assert after == before
    assert query(tmp_path, "SELECT _run_id FROM refunds_versions") == versions_before  # no version rewritten
    assert query(tmp_path, "SELECT count(*), count(DISTINCT as_of) FROM runs") == [(2, 1)]
    assert before["refund_flags"], "the night raises a flag, so equality means something"


def test_a_replay_without_input_reproduces_an_earlier_night_exactly(first_night, tmp_path):
    first_run_id = first_night(tmp_path, **PENDING_REFUND)
    deliver(
        tmp_path,
        NIGHT_2,
        refunds=[refund(status="paid", processed_at="2026-03-11 09:00:00")],
        usage=[usage(usage_id="U2", started_at="2026-03-11 10:00:00")],
    )
    again = replay(tmp_path, NIGHT_1)
    for table in ("refund_flags", "refund_verdicts", "abuse_signals", "daily_reconciliation"):
        assert history_of(tmp_path, table, again.run_id) == history_of(tmp_path, table, first_run_id), table
    assert history_of(tmp_path, "refund_flags", first_run_id)  # MINUTES_USED on the pending refund
    assert query(tmp_path, "SELECT mode, input_dir, rows_in FROM runs WHERE run_id = ?", [again.run_id]) == [
        ("replay", None, 0)
    ]


def test_replaying_a_night_before_anything_was_stored_is_refused(tmp_path):
    deliver(tmp_path, NIGHT_2, purchases=[purchase()])
    with pytest.raises(PublishError, match="nothing is stored on or before 2026-03-10 to replay"):
        replay(tmp_path, NIGHT_1)


def test_rerunning_an_earlier_night_with_corrected_files_replaces_only_that_nights_delivery(tmp_path):
    deliver(tmp_path, NIGHT_1, purchases=[purchase(edition="starter")])
    deliver(tmp_path, NIGHT_2, purchases=[purchase(edition="pro")])
    deliver(tmp_path, NIGHT_1, purchases=[purchase(edition="standard")])
    assert query(tmp_path, "SELECT edition, _valid_from, _valid_to FROM purchases_versions ORDER BY _valid_from") == [
        ("standard", NIGHT_1, NIGHT_2),
        ("pro", NIGHT_2, None),
    ]
    assert query(tmp_path, "SELECT edition FROM records_valid_on('purchases_versions', ?)", [NIGHT_3]) == [("pro",)]


def test_an_account_owned_on_an_earlier_night_quarantines_a_purchase_naming_another_entity(first_night, tmp_path):
    first_night(tmp_path, purchases=[purchase(order_id="O1", account_id="A1", entity_id="E1")])
    deliver(
        tmp_path,
        NIGHT_2,
        purchases=[purchase(order_id="O2", account_id="A1", entity_id="E2", purchased_at="2026-03-11 10:00:00")],
    )
    assert query(tmp_path, 'SELECT line, "check", message FROM validation_errors') == [
        (
            2,
            "account_entity_conflict",
            "account A1 belongs to entity E1 (its earliest purchase, order O1 loaded by run "
            + query(tmp_path, "SELECT _run_id FROM purchases_versions WHERE order_id = 'O1'")[0][0]
            + ")",
        )
    ]


def test_usage_of_an_order_stored_earlier_must_not_start_before_its_purchase_day(tmp_path):
    deliver(tmp_path, NIGHT_1, purchases=[purchase(purchased_at="2026-03-01 00:30:00")])
    deliver(
        tmp_path,
        NIGHT_2,
        usage=[
            usage(usage_id="U1", started_at="2026-02-28 23:59:59"),
            usage(usage_id="U2", started_at="2026-03-01 00:00:00"),
        ],
    )
    assert query(tmp_path, 'SELECT line, "check" FROM validation_errors') == [(2, "usage_before_purchase_day")]
    assert query(tmp_path, "SELECT usage_id FROM usage") == [("U2",)]


def test_flag_changes_lists_what_is_new_resolved_and_changed_since_the_night_before(tmp_path):
    late = dict(requested_at="2026-03-09 09:00:00")  # day 9 of an order bought 2026-03-01: PAST_WINDOW
    deliver(
        tmp_path,
        NIGHT_1,
        purchases=[purchase(order_id=f"O{n}", account_id=f"A{n}", entity_id=f"E{n}") for n in (1, 2, 3)],
        refunds=[
            refund(refund_id="R1", order_id="O1", status="pending", processed_at="", **late),
            refund(refund_id="R2", order_id="O2", status="pending", processed_at="", **late),
        ],
    )
    deliver(
        tmp_path,
        NIGHT_2,
        refunds=[
            refund(
                refund_id="R1",
                order_id="O1",
                status="rejected",
                processed_at="2026-03-11 09:00:00",
                refund_amount="0.00",
                refund_cash_credit="0.00",
                **late,
            ),  # rejected: PAST_WINDOW resolved
            refund(refund_id="R2", order_id="O2", status="paid", processed_at="2026-03-11 09:00:00", **late),
            refund(
                refund_id="R3", order_id="O3", requested_at="2026-03-11 09:00:00", processed_at="2026-03-11 10:00:00"
            ),
        ],
    )
    assert query(
        tmp_path,
        "SELECT change, refund_id, rule_code, previous_refund_status, refund_status, "
        "previous_as_of, as_of FROM flag_changes ORDER BY refund_id",
    ) == [
        ("resolved", "R1", "PAST_WINDOW", "pending", None, NIGHT_1, NIGHT_2),
        ("changed", "R2", "PAST_WINDOW", "pending", "paid", NIGHT_1, NIGHT_2),
        ("new", "R3", "PAST_WINDOW", None, "paid", NIGHT_1, NIGHT_2),
    ]


def test_backfill_runs_each_night_in_order_from_its_dated_folder(tmp_path):
    for night, exports in ((NIGHT_1, dict(purchases=[purchase()])), (NIGHT_2, dict(refunds=[refund()]))):
        write_exports(tmp_path / "exports" / night.isoformat(), **exports)
    db_path = tmp_path / "recon.duckdb"
    outcome = CliRunner().invoke(
        main,
        [
            "backfill",
            "--from",
            "2026-03-10",
            "--to",
            "2026-03-11",
            "--input",
            str(tmp_path / "exports" / "{as_of}"),
            "--db",
            str(db_path),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert query(tmp_path, "SELECT as_of, mode FROM runs ORDER BY finished_at") == [
        (NIGHT_1, "delivery"),
        (NIGHT_2, "delivery"),
    ]
    assert query(tmp_path, "SELECT refund_id FROM refund_verdicts") == [("R1",)]


def test_a_backfill_stops_at_a_missing_night_and_keeps_the_nights_before_it(tmp_path):
    write_exports(tmp_path / "exports" / NIGHT_1.isoformat(), purchases=[purchase()])
    outcome = CliRunner().invoke(
        main,
        [
            "backfill",
            "--from",
            "2026-03-10",
            "--to",
            "2026-03-12",
            "--input",
            str(tmp_path / "exports" / "{as_of}"),
            "--db",
            str(tmp_path / "recon.duckdb"),
        ],
    )
    assert outcome.exit_code == 1
    assert "2026-03-11" in outcome.output and "Traceback" not in outcome.output
    assert query(tmp_path, "SELECT as_of FROM runs") == [(NIGHT_1,)]


def test_a_backfill_without_input_replays_every_night_from_the_warehouse(first_night, tmp_path):
    first_night(tmp_path, purchases=[purchase()], refunds=[refund()])
    config = tmp_path / "quiet.toml"  # no report or exports: the replays' files are test_a_replay_leaves_...'s
    config.write_text("[outputs]\nreport = false\nexports = false\n", encoding="utf-8")
    outcome = CliRunner().invoke(
        main,
        [
            "backfill",
            "--from",
            "2026-03-10",
            "--to",
            "2026-03-12",
            "--db",
            str(tmp_path / "recon.duckdb"),
            "--config",
            str(config),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert query(tmp_path, "SELECT as_of, mode FROM runs ORDER BY finished_at") == [
        (NIGHT_1, "delivery"),
        (NIGHT_1, "replay"),
        (NIGHT_2, "replay"),
        (NIGHT_3, "replay"),
    ]


def test_runs_records_the_seconds_of_each_stage_before_publishing(first_night, tmp_path):
    first_night(tmp_path, purchases=[purchase()])
    (stages,) = query(tmp_path, "SELECT stage_seconds FROM runs")[0]
    assert list(stages) == ["load", "validate", "gates", "rules", "signals", "reconcile"]
    assert all(seconds >= 0 for seconds in stages.values())


# --- a replay never overwrites what a night published ------------------------------------------

PUBLISHING = replace(SETTINGS, write_report=True, write_exports=True)


def published_files(folder: Path, as_of: date) -> dict[str, str]:
    """sha256 of a night's report, export partitions and run_results.json, by path under `folder`."""
    paths = [
        *folder.glob(f"report-{as_of}*.html"),
        *folder.glob(f"exports/*/**/as_of={as_of}/*"),
        *folder.glob("run_results.json"),
    ]
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}


@pytest.fixture(scope="module")
def published_nights(tmp_path_factory) -> Path:
    """A folder holding two published nights: the warehouse, each night's report, exports and
    run_results.json (copied by each test that replays into it)."""
    folder = tmp_path_factory.mktemp("published")
    for night, exports in (
        (
            NIGHT_1,
            dict(
                purchases=[purchase(), purchase(order_id="O2", product="spam")],
                refunds=[refund(status="pending", processed_at="")],
                usage=[usage()],
            ),
        ),
        (
            NIGHT_2,
            dict(
                refunds=[refund(refund_id="R2", requested_at="2026-03-11 09:00:00", processed_at="2026-03-11 10:00:00")]
            ),
        ),
    ):
        run(PUBLISHING, write_exports(folder / f"exports-{night}", **exports), night, folder / "recon.duckdb")
    return folder


@pytest.mark.parametrize("replay_with", ["run", "backfill", "report"])
def test_a_replay_leaves_the_nights_published_files_as_they_were_and_writes_its_own_copies(
    published_nights, tmp_path, replay_with
):
    shutil.copytree(published_nights, tmp_path, dirs_exist_ok=True)
    db_path = tmp_path / "recon.duckdb"
    published = {night: published_files(tmp_path, night) for night in (NIGHT_1, NIGHT_2)}
    assert "exports/csv/as_of=2026-03-10/validation_errors.csv" in published[NIGHT_1]
    assert "report-2026-03-10.html" in published[NIGHT_1] and "run_results.json" in published[NIGHT_2]
    if replay_with == "run":
        again = run(PUBLISHING, None, NIGHT_1, db_path)
    else:
        command = (
            ["backfill", "--from", "2026-03-10", "--to", "2026-03-10"]
            if replay_with == "backfill"
            else ["report", "--as-of", "2026-03-10"]
        )
        if replay_with == "report":
            run(replace(PUBLISHING, write_report=False), None, NIGHT_1, db_path)
        outcome = CliRunner().invoke(main, [*command, "--db", str(db_path)])
        assert outcome.exit_code == 0, outcome.output
        again = SimpleNamespace(run_id=query(tmp_path, "SELECT arg_max(run_id, finished_at) FROM runs")[0][0])
    assert {night: published_files(tmp_path, night) for night in (NIGHT_1, NIGHT_2)} == published
    own = tmp_path / "replays" / again.run_id
    expected = {"report-2026-03-10.html"} | (
        {
            "exports/csv/as_of=2026-03-10/validation_errors.csv",
            "exports/parquet/validation_errors/as_of=2026-03-10/data.parquet",
            "run_results.json",
        }
        if replay_with != "report"
        else set()
    )
    assert expected <= set(published_files(own, NIGHT_1))
    assert {path.name for path in tmp_path.glob("report-*")} == {  # no other report beside the nights' own
        name for files in published.values() for name in files if name.startswith("report-")
    }


def test_a_later_nights_report_shows_an_earlier_night_as_delivered_not_as_replayed(tmp_path):
    db_path = tmp_path / "recon.duckdb"
    run(
        SETTINGS,
        write_exports(tmp_path / "n1", purchases=[purchase(), purchase(order_id="O2", product="spam")]),
        NIGHT_1,
        db_path,
    )
    run(SETTINGS, None, NIGHT_1, db_path)
    night_2 = run(SETTINGS, write_exports(tmp_path / "n2", purchases=[purchase(order_id="O3")]), NIGHT_2, db_path)
    with duckdb.connect(str(db_path), read_only=True) as con:
        nights = report.read_night(con, db_path, night_2.run_id)["nights"]
    assert [(night["as_of"], night["mode"], night["rows_quarantined"]) for night in nights] == [
        (NIGHT_1, "delivery", 1),
        (NIGHT_2, "delivery", 0),
    ]
