"""DuckDB's settings (issue #5): a bounded memory limit by default, spilling next to the
warehouse, and `[duckdb]` keys that override both; loading numbers rows by their file line
whatever `preserve_insertion_order` says."""

from __future__ import annotations

import duckdb
from exports import AS_OF, purchase, refund, usage, write_exports

from jobs import pipeline
from jobs.config import Settings, load_settings
from jobs.pipeline import run


def setting(result, name: str):
    return result.con.execute("SELECT current_setting(?)", [name]).fetchone()[0]


def test_by_default_duckdb_may_use_1_gib_and_spills_next_to_the_warehouse(tmp_path):
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    result = run(Settings(write_report=False, write_exports=False), folder, AS_OF, tmp_path / "recon.duckdb")
    assert setting(result, "memory_limit") == "1.0 GiB"
    assert setting(result, "temp_directory") == str(tmp_path / "recon.duckdb.tmp")


def test_the_duckdb_section_sets_threads_memory_limit_spill_folder_and_insertion_order(tmp_path):
    config = tmp_path / "refund-recon.toml"
    config.write_text(
        '[duckdb]\nthreads = 1\nmemory_limit = "512MiB"\n'
        f'temp_directory = "{tmp_path / "spill"}"\npreserve_insertion_order = false\n',
        encoding="utf-8",
    )
    folder = write_exports(tmp_path / "in", purchases=[purchase()])
    result = run(load_settings(config), folder, AS_OF, db_path=None)
    assert (setting(result, "threads"), setting(result, "memory_limit")) == (1, "512.0 MiB")
    assert setting(result, "temp_directory") == str(tmp_path / "spill")
    assert setting(result, "preserve_insertion_order") is False


def test_the_report_and_exports_read_the_warehouse_within_the_limit_while_the_run_lends_its_memory(
    tmp_path, monkeypatch
):
    """Issue #12: the outputs' own DuckDBs get `[duckdb]`'s limit and spill folder (not DuckDB's
    80% of RAM), the run's DuckDB holds 64 MiB meanwhile, and its own limit again after."""
    opened, run_limit_during_exports = [], []
    connect, write_night_exports = duckdb.connect, pipeline.write_exports

    def connect_noting_config(database=":memory:", *args, config=None, **kwargs):
        opened.append((str(database), config))
        return connect(database, *args, config=config or {}, **kwargs)

    def exports_noting_the_run_limit(db_path, run_id, settings, result):
        run_limit_during_exports.append(setting(result, "memory_limit"))
        return write_night_exports(db_path, run_id, settings, result)

    monkeypatch.setattr(duckdb, "connect", connect_noting_config)
    monkeypatch.setattr(pipeline, "write_exports", exports_noting_the_run_limit)
    folder = write_exports(tmp_path / "in", purchases=[purchase()], refunds=[refund()])
    db_path = tmp_path / "recon.duckdb"
    result = run(Settings(duckdb_memory_limit="512MiB"), folder, AS_OF, db_path)

    assert run_limit_during_exports == ["64.0 MiB"]
    assert setting(result, "memory_limit") == "512.0 MiB"
    warehouse_reads = [config for database, config in opened if database == str(db_path)]
    assert len(warehouse_reads) >= 2  # the report's and the exports' connections
    assert all(
        (config["memory_limit"], config["temp_directory"]) == ("512MiB", f"{db_path}.tmp") for config in warehouse_reads
    )


def test_without_insertion_order_a_bad_row_deep_in_a_big_file_keeps_its_line(tmp_path):
    """Many rows read by two threads: the quarantined row still names the line it is on."""
    rows = [usage(usage_id=f"U{number}", minutes="1") for number in range(1, 300_001)]
    rows[249_999]["minutes"] = "lots"  # data line 250,000 is file line 250,001
    folder = write_exports(tmp_path / "in", purchases=[purchase()], usage=rows)
    settings = Settings(max_bad_row_fraction=1.0, duckdb_threads=2, duckdb_preserve_insertion_order=False)
    result = run(settings, folder, AS_OF, db_path=None)
    quarantined = result.con.execute("SELECT line, \"column\" FROM quarantine WHERE source = 'usage'").fetchall()
    assert quarantined == [(250_001, "minutes")]
    assert result.con.execute("SELECT count(*) FROM delivered_usage").fetchone()[0] == 299_999
