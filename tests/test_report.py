"""The nightly HTML report: what it shows, the masked shared copy, atomic writing, and a real
headless Chromium (Debian's package, installed by `make test`) opening it.

The warehouse holds three nights of data/sample (2026-03-29, -30, -31). The expected numbers
are those of the sample's story (data/sample/README.md): on 03-30 the suspension of
100104455672 (illegal_activity, 03-30 11:00) makes RF2603280016 ACCOUNT_SUSPENDED, RF2603300018
(requested 03-30) is a PATH_MISMATCH, and RF2603290017 is seen as rejected (processed 03-30),
so its MINUTES_USED of 03-29 is resolved; on 03-31 RF2603300019's 120 minutes at 20:00 make it
MINUTES_USED, and four more refunds are visible (24 in all).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.config import load_settings
from jobs.outputs import files as files_module
from jobs.outputs import report as report_module
from jobs.outputs.masking import mask_id
from jobs.outputs.report import find_run, write_report
from jobs.pipeline import run

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
NIGHTS = (date(2026, 3, 29), date(2026, 3, 30), date(2026, 3, 31))
ARTIFACTS = REPO / "out" / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def sample_settings(**overrides):
    # Exports are another stage's business; the report is written by the pipeline itself.
    settings = load_settings(SAMPLE / "refund-recon.toml")
    return replace(settings, write_exports=False, **overrides)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """Three nights of the sample in one warehouse, each night's report written by the run."""
    db_path = tmp_path_factory.mktemp("report") / "recon.duckdb"
    for night in NIGHTS:
        result = run(sample_settings(), SAMPLE, night, db_path)
        result.con.close()
    return db_path


def page(db_path: Path, night: date, shared: bool = False) -> str:
    suffix = ".shared.html" if shared else ".html"
    return (db_path.parent / f"report-{night}{suffix}").read_text(encoding="utf-8")


def copy_warehouse(db_path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / db_path.name
    shutil.copyfile(db_path, target)
    return target


def metrics(html: str) -> dict[str, tuple[str, str]]:
    return {
        key: (value, delta)
        for key, value, delta in re.findall(r'data-metric="([^"]+)" data-value="([^"]*)" data-delta="([^"]*)"', html)
    }


def flags_in(html: str, table_class: str) -> set[str]:
    match = re.search(rf'<table class="flags {table_class}">(.*?)</table>', html, re.S)
    return set(re.findall(r'data-flag="([^"]+)"', match.group(1))) if match else set()


def query(db_path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# --- where and what ---------------------------------------------------------------------------


def test_each_run_writes_its_report_and_shared_copy_next_to_the_warehouse(warehouse):
    for night in NIGHTS:
        assert (warehouse.parent / f"report-{night}.html").is_file()
        assert (warehouse.parent / f"report-{night}.shared.html").is_file()
    assert not list(warehouse.parent.glob(".report-*")), "a temporary file was left behind"
    assert 'data-copy="full"' in page(warehouse, NIGHTS[-1])
    assert 'data-copy="shared"' in page(warehouse, NIGHTS[-1], shared=True)


def test_headline_numbers_and_how_they_moved_since_the_previous_night(warehouse):
    headline = metrics(page(warehouse, date(2026, 3, 31)))
    assert headline["refunds_checked"] == ("24", "4")  # 20 visible on 03-30
    assert headline["flags"] == ("14", "1")  # + MINUTES_USED of RF2603300019
    assert headline["refunds_breach"] == ("9", "0")
    assert headline["refunds_stop"] == ("3", "1")  # RF2603280016, RF2603300018, RF2603300019
    # CNY breach 2999.00 + 809.10 + 300.00 + 699.00, stop 1999.00 + 199.00 + 899.00
    assert headline["at_risk_CNY"] == ("7904.10", "899.00")
    assert headline["at_risk_USD"] == ("957.00", "0.00")  # 200 + 129 + 399 + 219 + 10
    assert headline["cases_open"][0] == "7"
    assert headline["rows_quarantined"] == ("5", "0")
    assert "changes are against the night of 2026-03-30" in page(warehouse, date(2026, 3, 31))


def test_the_first_night_has_nothing_to_compare_with(warehouse):
    html = page(warehouse, date(2026, 3, 29))
    assert all(delta == "" for _, delta in metrics(html).values())
    assert "no earlier night in the warehouse" in html
    assert "every flag of tonight is new" in html
    assert flags_in(html, "new-flags") == {
        f"{refund}/{code}"
        for refund, code in query(
            warehouse,
            "SELECT refund_id, rule_code FROM refund_flags_history JOIN runs USING (run_id) "
            "WHERE runs.as_of = '2026-03-29'",
        )
    }


def test_new_and_resolved_flags_against_the_previous_night(warehouse):
    html = page(warehouse, date(2026, 3, 30))
    assert flags_in(html, "new-flags") == {"RF2603280016/ACCOUNT_SUSPENDED", "RF2603300018/PATH_MISMATCH"}
    assert flags_in(html, "resolved-flags") == {"RF2603290017/MINUTES_USED"}
    resolved = re.search(r'<table class="flags resolved-flags">(.*?)</table>', html, re.S).group(1)
    assert "refund now rejected" in resolved
    html = page(warehouse, date(2026, 3, 31))
    assert flags_in(html, "new-flags") == {"RF2603300019/MINUTES_USED"}
    assert '<span data-count="resolved">0</span>' in html


def test_flags_per_rule_with_money_at_risk_and_30_night_trend_charts(warehouse):
    html = page(warehouse, date(2026, 3, 31))
    rows = dict(re.findall(r'data-rule="([A-Z_]+)" data-flags="(\d+)"', html))
    (counts,) = query(warehouse, "SELECT flag_counts FROM runs WHERE as_of = '2026-03-31'")[0]
    assert {code: int(count) for code, count in rows.items() if int(count)} == dict(counts)
    assert rows["MINUTES_USED"] == "2"
    assert 'data-chart="flags-trend" data-nights="3"' in html
    assert 'data-chart="money-trend-CNY"' in html and 'data-chart="money-trend-USD"' in html
    assert 'data-chart="quarantine-trend"' in html


def test_top_abuse_cases_in_score_order_with_evidence_and_timeline(warehouse):
    html = page(warehouse, date(2026, 3, 31))
    expected = [
        case_id
        for (case_id,) in query(
            warehouse,
            "SELECT case_id FROM abuse_cases ORDER BY score DESC, amount_at_risk DESC NULLS LAST, "
            "refund_count DESC, case_id",
        )
    ]
    assert re.findall(r'<tr data-case="([^"]+)"', html) == expected
    (top,) = query(warehouse, "SELECT case_id FROM abuse_cases WHERE group_id = 'G-ENT0011342'")[0]
    assert expected[0] == top  # REFUND_BEFORE_SUSPENSION, score 80
    article = re.search(rf'<article class="case" id="case-{top}">(.*?)</article>', html, re.S).group(1)
    for text in (
        "REFUND_BEFORE_SUSPENSION",
        "illegal_activity",
        "RF2603280016",
        "days_after_request",
        "refund requested",
        "account suspended",
        "2026-03-30 11:00",
        'data-chart="timeline"',
    ):
        assert text in article, text
    ring = re.search(
        r'<article class="case" id="case-[^"]+">((?:(?!</article>).)*G-ENT0011563.*?)</article>', html, re.S
    ).group(1)
    assert ring.count('data-signal="LINKED_ENTITIES"') == 1  # fired for 3 entities, shown once
    assert "fp_…8a" in ring and "fp_…15" in ring


def test_validation_summary_with_worst_files_first_and_quarantined_rows(warehouse):
    html = page(warehouse, date(2026, 3, 31))
    files = re.search(r'<table class="files">(.*?)</table>', html, re.S).group(1)
    # refunds 2 of 26, usage 2 of 41, purchases 1 of 35, account_status 0 of 7
    assert re.findall(r'data-source="([a-z_]+)"', files) == ["refunds", "usage", "purchases", "account_status"]
    examples = re.search(r'<table class="examples">(.*?)</table>', html, re.S).group(1)
    for source, line, check in (
        ("purchases", 26, "account_entity_conflict"),
        ("usage", 22, "greater_than_or_equal_to"),
        ("usage", 29, "unknown_order"),
        ("refunds", 16, "order_quarantined"),
        ("refunds", 28, "duplicate_key"),
    ):
        assert re.search(rf"<td>{source}</td><td class=\"n\">{line}</td>.*?<code>{check}</code>", examples), (
            source,
            line,
        )
    assert 'data-rows-quarantined="5"' in html


# --- the first screen: trustworthy? what to do today? the money ------------------------------


def first_screen(html: str) -> str:
    return re.search(r'<section id="tonight"[^>]*>(.*?)</section>', html, re.S).group(0)


def test_the_first_screen_says_whether_tonight_is_trustworthy(warehouse):
    top = first_screen(page(warehouse, date(2026, 3, 31)))
    assert 'data-status="succeeded_with_warnings"' in top  # the sample quarantines 5 rows
    assert re.findall(r'<li data-warning="([a-z]+)">⚠ ([^<]*)</li>', top) == [
        ("quarantine", "purchases: 1 of 35 rows quarantined (2.86%), not in tonight&#39;s figures"),
        ("quarantine", "refunds: 2 of 26 rows quarantined (7.69%), not in tonight&#39;s figures"),
        ("quarantine", "usage: 2 of 41 rows quarantined (4.88%), not in tonight&#39;s figures"),
    ]
    (total,) = query(warehouse, "SELECT count(*) FROM invariant_results")[0]
    assert f"all {total} invariant checks passed" in top and "5 row(s) quarantined" in top


def test_a_failed_gate_shows_at_the_top_of_the_report(warehouse, tmp_path):
    db_path = copy_warehouse(warehouse, tmp_path / "w")
    run_id = find_run(db_path)
    con = duckdb.connect(str(db_path))
    con.execute(
        "UPDATE gate_results_history SET passed = false, message = 'Freshness of refunds: stale' "
        "WHERE run_id = ? AND gate = 'freshness' AND source = 'refunds'",
        [run_id],
    )
    con.close()
    (path, _) = write_report(db_path, run_id, sample_settings())
    top = first_screen(path.read_text(encoding="utf-8"))
    assert '<li data-warning="gate">⚠ Freshness of refunds: stale</li>' in top
    assert re.search(r'<span class="bad">1 of \d+ gates failed</span>', top)
    assert top.index('data-warning="gate"') < top.index('data-warning="quarantine"')  # gates first


def test_the_first_screen_says_what_to_do_today(warehouse):
    top = first_screen(page(warehouse, date(2026, 3, 31)))
    assert re.search(
        r'<b data-todo="stop">3</b> refund\(s\) to stop before payout <span class="delta worse">▲ \+1</span>', top
    )
    decisions = re.findall(r'<tr data-decision="([a-z]+)">.*?<td class="n">(\d+)</td><td class="n">([^<]*)</td>', top)
    expected = query(
        warehouse,
        "SELECT decision, count(*), sum(refund_amount), currency FROM pending_refund_decisions "
        "GROUP BY decision, currency ORDER BY list_position(['decline', 'hold', 'pay'], decision), "
        "currency",
    )
    assert decisions == [
        (decision, str(count), f"{amount:,.2f} {currency}") for decision, count, amount, currency in expected
    ]
    assert '<b data-todo="cases">7</b> abuse case(s) to review' in top


def test_the_first_screen_gives_the_money_per_currency_with_its_change(warehouse):
    top = first_screen(page(warehouse, date(2026, 3, 31)))
    rows = re.findall(r'<tr data-currency="([A-Z]+)">(.*?)</tr>', top, re.S)
    figures = {
        (currency, key): (value, delta)
        for currency, row in rows
        for key, value, delta in re.findall(r'data-money="([a-z_]+)" data-value="([^"]*)" data-delta="([^"]*)"', row)
    }
    expected = query(
        warehouse,
        """
        SELECT currency, runs.as_of, sum(at_risk_total), sum(amount_recoverable), sum(amount_owed_to_customers)
        FROM daily_reconciliation_history JOIN runs USING (run_id)
        WHERE runs.as_of IN ('2026-03-30', '2026-03-31') GROUP BY ALL ORDER BY ALL""",
    )
    by_night = {(currency, night): amounts for currency, night, *amounts in expected}
    assert [currency for currency, _ in rows] == ["CNY", "USD"]
    for currency in ("CNY", "USD"):
        now, then = by_night[(currency, date(2026, 3, 31))], by_night[(currency, date(2026, 3, 30))]
        for key, tonight, before in zip(
            ("amount_at_risk", "amount_recoverable", "amount_owed_to_customers"), now, then, strict=False
        ):
            assert figures[(currency, key)] == (str(tonight), str(tonight - before)), (currency, key)
    assert figures[("CNY", "amount_at_risk")] == ("7904.10", "899.00")  # the headline's money at risk
    assert 'data-chart="tie-out-CNY"' in top and 'data-chart="tie-out-USD"' in top


def test_on_the_first_night_nothing_suggests_a_history(warehouse):
    html = page(warehouse, date(2026, 3, 29))
    assert '<svg class="spark"' not in html
    assert html.count('<span class="spark first-night">first night</span>') == len(metrics(html))
    assert "first night" in first_screen(html) and "▲" not in first_screen(html)


def test_case_refund_tables_give_the_currency_of_every_amount(warehouse):
    html = page(warehouse, date(2026, 3, 31))
    article = re.search(r'<article class="case" id="case-[^"]+">(.*?)</article>', html, re.S).group(1)
    refunds = re.search(
        r'<h4>Refunds</h4>\s*<div class="scroll"><table class="mini">(.*?)</table>', article, re.S
    ).group(1)
    amounts = re.findall(r'<td class="n">([^<]*)</td>', refunds)
    assert amounts and all(re.fullmatch(r"[\d,]+\.\d\d (CNY|USD)", amount) for amount in amounts), amounts


def test_sections_are_folded_and_invariants_explained_only_when_one_fails(warehouse):
    html = page(warehouse, date(2026, 3, 31))
    folded = re.findall(r'<details class="part" id="([a-z_]+)"( open)?>', html)
    assert folded == [
        (name, "")
        for name in ("headline", "rules", "changes", "cases", "validation", "invariant_results", "daily_reconciliation")
    ]
    invariants = re.search(r'<details class="part" id="invariant_results">(.*?)</details>', html, re.S).group(1)
    assert '<table class="invariants">' not in invariants
    (description,) = query(warehouse, "SELECT description FROM invariant_results WHERE invariant = 'I05'")[0]
    assert description not in html.replace(f'title="{description}"', "")


# --- self-contained, private ------------------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True])
def test_the_page_is_self_contained(warehouse, shared):
    html = page(warehouse, date(2026, 3, 31), shared)
    assert "http://" not in html and "https://" not in html
    for attribute, value in re.findall(r'\b(src|href)\s*=\s*"([^"]*)"', html):
        assert value.startswith(("#", "data:")), (attribute, value)
    assert "<script" not in html and "@import" not in html and "url(" not in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_the_shared_copy_masks_account_and_entity_ids(warehouse):
    ids = {
        value
        for (value,) in query(
            warehouse,
            """
        SELECT account_id FROM purchases UNION SELECT entity_id FROM purchases
        UNION SELECT account_id FROM account_status
        UNION SELECT value FROM validation_errors WHERE "column" IN ('account_id', 'entity_id')""",
        )
    }
    assert "ENT0011480" in ids  # only in a quarantined row's value
    for night in NIGHTS:
        full, shared = page(warehouse, night), page(warehouse, night, shared=True)
        assert [value for value in ids if value in full], "the full report shows ids as given"
        leaked = sorted(value for value in ids if value in shared)
        assert not leaked, f"raw ids in the shared copy of {night}: {leaked[:5]}"
    full, shared = page(warehouse, date(2026, 3, 31)), page(warehouse, date(2026, 3, 31), shared=True)
    assert "ENT0011342" in full and "100104455672" in full
    assert mask_id("ENT0011342") == "ENT…42" and "ENT…42" in shared
    assert "G-ENT…63" in shared  # an entity id inside a group id
    assert "Shared copy" in shared


def test_no_payment_fingerprint_is_printed_in_full(warehouse):
    fingerprints = {
        value
        for (value,) in query(
            warehouse, "SELECT DISTINCT payment_fingerprint FROM purchases WHERE payment_fingerprint IS NOT NULL"
        )
    }
    assert "fp_2d7e9b41c08a" in fingerprints
    for night in NIGHTS:
        for shared in (False, True):
            html = page(warehouse, night, shared)
            assert not [value for value in fingerprints if value in html], (night, shared)


def test_without_masking_only_the_full_report_is_written(warehouse, tmp_path):
    db_path = copy_warehouse(warehouse, tmp_path / "w")
    paths = write_report(db_path, find_run(db_path), sample_settings(mask_shared_report=False))
    assert [path.name for path in paths] == ["report-2026-03-31.html"]
    assert not (db_path.parent / "report-2026-03-31.shared.html").exists()


# --- written whole or not at all --------------------------------------------------------------


def test_a_failure_leaves_the_previous_report(warehouse, tmp_path, monkeypatch):
    db_path = copy_warehouse(warehouse, tmp_path / "w")
    settings = sample_settings()
    paths = write_report(db_path, find_run(db_path), settings)
    before = {path: path.read_bytes() for path in paths}

    def broken_render(*args, **kwargs):
        raise RuntimeError("template broke")

    with monkeypatch.context() as patch:
        patch.setattr(report_module, "render", broken_render)
        with pytest.raises(RuntimeError):
            write_report(db_path, find_run(db_path), settings)
    calls = []

    def failing_replace(source, target):
        calls.append(target)
        if len(calls) == 1:
            raise OSError("disk full")
        return os.rename(source, target)

    with monkeypatch.context() as patch:
        patch.setattr(files_module.os, "replace", failing_replace)
        with pytest.raises(report_module.ReportError, match=r"cannot write .*report-2026-03-31\.html: disk full"):
            write_report(db_path, find_run(db_path), settings)
    assert {path: path.read_bytes() for path in paths} == before
    assert sorted(path.name for path in db_path.parent.iterdir()) == sorted(
        [db_path.name, *(path.name for path in paths)] + [name.name for name in db_path.parent.glob("*.wal")]
    )


# --- the command, the other tables, many nights -----------------------------------------------


def test_the_report_command_rewrites_a_night_from_the_warehouse(warehouse, tmp_path):
    db_path = copy_warehouse(warehouse, tmp_path / "w")
    result = CliRunner().invoke(main, ["report", "--db", str(db_path), "--as-of", "2026-03-30"])
    assert result.exit_code == 0, result.output
    assert f"wrote {db_path.parent / 'report-2026-03-30.html'}" in result.output
    assert f"wrote {db_path.parent / 'report-2026-03-30.shared.html'}" in result.output
    assert metrics(page(db_path, date(2026, 3, 30)))["flags"] == ("13", "1")
    unknown = CliRunner().invoke(main, ["report", "--db", str(db_path), "--as-of", "2025-01-01"])
    assert unknown.exit_code == 1 and "no run as of 2025-01-01" in unknown.output
    missing = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 1 and "no warehouse" in missing.output


def test_invariants_and_the_finance_tie_out_of_the_night(warehouse, tmp_path):
    """`invariant_results` and `daily_reconciliation` as the run published them; a failed
    invariant is counted in the headline and marked in the table."""
    db_path = copy_warehouse(warehouse, tmp_path / "w")
    run_id = find_run(db_path)
    con = duckdb.connect(str(db_path))
    con.execute(
        "UPDATE invariant_results_history SET passed = false, detail = '1 refund without a verdict' "
        "WHERE run_id = ? AND invariant = 'I05'",
        [run_id],
    )
    (total,) = con.execute("SELECT count(*) FROM invariant_results_history WHERE run_id = ?", [run_id]).fetchone()
    (paid_tonight, paid_all) = con.execute(
        "SELECT sum(refunds_paid_amount) FILTER (WHERE billing_day = as_of), sum(refunds_paid_amount) "
        "FROM daily_reconciliation_history WHERE run_id = ? AND currency = 'CNY'",
        [run_id],
    ).fetchone()
    con.close()
    (path, _) = write_report(db_path, run_id, sample_settings())
    html = path.read_text(encoding="utf-8")
    invariants = re.search(r'<details class="part" id="invariant_results" open>(.*?)</details>', html, re.S).group(1)
    assert f"1 of {total} failed" in invariants and f"1 of {total} invariant checks failed" in html
    failed = re.findall(r'<tr class="failed">(.*?)</tr>', invariants, re.S)
    assert len(failed) == 1 and "I05" in failed[0] and "1 refund without a verdict" in failed[0]
    daily = re.search(r'<details class="part" id="daily_reconciliation">(.*?)</details>', html, re.S).group(1)
    assert "billing day 2026-03-31" in daily and "all billing days" in daily
    header = re.findall(r'<th class="n">([^<]*)<br>([^<]*)</th>', daily)
    paid = re.findall(
        r'<td class="n">([^<]*)</td>', re.search(r'<tr data-measure="refunds_paid_amount">(.*?)</tr>', daily).group(1)
    )
    cny = dict(zip(header, paid, strict=True))
    assert cny[("billing day 2026-03-31", "CNY")] == f"{paid_tonight or 0:,.2f}"
    assert cny[("all billing days", "CNY")] == f"{paid_all:,.2f}"
    counted = re.search(r'<tr data-measure="refunds_paid_count">(.*?)</tr>', daily).group(1)
    assert "." not in counted  # a count is not money


@pytest.mark.parametrize(
    "table", ["invariant_results_history", "daily_reconciliation_history", "abuse_cases_history", "case_dispositions"]
)
def test_a_warehouse_lacking_a_table_the_report_reads_is_refused_naming_it(warehouse, tmp_path, table):
    db_path = copy_warehouse(warehouse, tmp_path / "w")
    run_id = find_run(db_path)
    con = duckdb.connect(str(db_path))
    con.execute(f"DROP TABLE {table}")
    con.close()
    with pytest.raises(report_module.ReportError, match=f"lacks .*reads {table}"):
        write_report(db_path, run_id, sample_settings())
    assert not list(db_path.parent.glob("report-*")), "no report from part of the warehouse"


def test_the_trend_covers_the_last_30_nights_and_stays_quick_and_small(warehouse, tmp_path):
    db_path = copy_warehouse(warehouse, tmp_path / "w")
    con = duckdb.connect(str(db_path))
    (first,) = con.execute("SELECT run_id FROM runs WHERE as_of = '2026-03-29'").fetchall()[0]
    for table in (
        "runs",
        "refund_verdicts_history",
        "refund_flags_history",
        "abuse_cases_history",
        "validation_errors_history",
    ):
        con.execute(
            f"""INSERT INTO {table} SELECT night.* REPLACE (
                            night.run_id || '-' || i AS run_id, night.as_of - i::INTEGER AS as_of)
                        FROM {table} AS night, range(1, 36) AS days(i) WHERE night.run_id = ?""",
            [first],
        )
    con.close()
    import time

    started = time.perf_counter()
    (path, shared) = write_report(db_path, find_run(db_path), sample_settings())
    assert time.perf_counter() - started < 5
    html = path.read_text(encoding="utf-8")
    assert 'data-chart="flags-trend" data-nights="30"' in html
    assert "changes are against the night of 2026-03-30" in html
    assert path.stat().st_size < 400_000 and shared.stat().st_size < 400_000


# --- a real browser ---------------------------------------------------------------------------


def chromium_executable() -> str | None:
    """Debian's Chromium: the binary itself (the /usr/bin/chromium launcher is a shell script)."""
    for candidate in (
        os.environ.get("REFUND_RECON_CHROMIUM"),
        "/usr/lib/chromium/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    """A function opening a file:// page in headless Chromium, recording errors and requests."""
    executable = chromium_executable()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        message = "Chromium and the playwright package are needed (make test installs both)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1366, "height": 768},
        )
        try:

            def open_page(path: Path):
                tab = context.new_page()
                seen = {"errors": [], "requests": []}
                tab.on(
                    "console",
                    lambda message: (
                        seen["errors"].append(f"console {message.type}: {message.text}")
                        if message.type in ("error", "assert")
                        else None
                    ),
                )
                tab.on("pageerror", lambda error: seen["errors"].append(f"page error: {error}"))
                tab.on("request", lambda request: seen["requests"].append(request.url))
                tab.goto(path.resolve().as_uri(), wait_until="load")
                return tab, seen

            yield open_page
        finally:
            context.close()


@pytest.mark.browser
@pytest.mark.parametrize("shared", [False, True])
def test_the_report_opens_in_chromium_with_charts_and_no_errors(warehouse, browser_page, tmp_path, shared):
    path = warehouse.parent / f"report-2026-03-31{'.shared' if shared else ''}.html"
    tab, seen = browser_page(path)
    assert seen["errors"] == []
    assert [url for url in seen["requests"] if not url.startswith(("file:", "data:"))] == []
    # The first screen (1366 x 768) answers finance's three questions; the rest is folded.
    for panel in ("#trust", "#today", "#money"):
        box = tab.locator(panel).bounding_box()
        assert box and box["y"] + box["height"] <= 768, (panel, box)
    assert tab.locator('svg[data-chart="tie-out-CNY"] rect.bar').count() >= 3
    folded_height = tab.evaluate("document.documentElement.scrollHeight")
    assert folded_height < 2500, folded_height
    first_screen = tmp_path / f"report-2026-03-31{'.shared' if shared else ''}.top.png"
    tab.screenshot(path=str(first_screen))  # what a laptop shows on opening it
    tab.evaluate("document.querySelectorAll('details').forEach(part => part.open = true)")
    charts = tab.locator("svg.chart")
    assert charts.count() >= 5  # flags, money CNY and USD, quarantine, a timeline per case
    for index in range(charts.count()):
        box = charts.nth(index).bounding_box()
        assert box and box["width"] > 100 and box["height"] > 40, (index, box)
    bars = tab.locator('svg[data-chart="flags-trend"] rect.bar')
    assert bars.count() >= 10
    assert all(bars.nth(index).bounding_box()["height"] > 0 for index in range(bars.count()))
    assert tab.locator('svg[data-chart="quarantine-trend"] polyline').bounding_box()["width"] > 100
    assert tab.locator("[data-metric]").count() >= 8
    name = f"report-2026-03-31{'.shared' if shared else ''}"
    screenshot = tmp_path / f"{name}.png"
    tab.screenshot(path=str(screenshot), full_page=True)
    for image in (screenshot, first_screen):
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size > 50_000
    tab.emulate_media(media="print")
    pdf = tmp_path / f"{name}.pdf"
    tab.pdf(path=str(pdf), format="A4", print_background=True)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    # Folded again, the print is the first screen on one A4 page and a line per section.
    tab.evaluate("document.querySelectorAll('details').forEach(part => part.open = false)")
    tab.emulate_media(media="print")
    assert tab.locator("header.top nav").is_hidden()
    folded_pdf = tmp_path / f"{name}.folded.pdf"
    tab.pdf(path=str(folded_pdf), format="A4", print_background=True)
    pages = len(re.findall(rb"/Type\s*/Page\b", folded_pdf.read_bytes()))
    assert 1 <= pages <= 2, pages
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for artifact in (screenshot, first_screen, pdf, folded_pdf):
        shutil.copyfile(artifact, ARTIFACTS / artifact.name)
    print(f"screenshot: {ARTIFACTS / screenshot.name}")
    tab.close()
