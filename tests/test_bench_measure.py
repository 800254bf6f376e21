"""The benchmark's measurements of a child process (benchmarks/bench.py `measure`, `slowest_steps`)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from benchmarks.bench import measure, slowest_steps  # noqa: E402

MIB = 2**20


def test_a_childs_peak_is_its_own_not_the_benchmarks_high_water_mark(tmp_path):
    """Linux copies the parent's high-water mark into a forked child's ru_maxrss: a bench that had
    used 2.83 GiB itself (the delta split) reported every later child at 2.83 GiB or more."""
    grown = bytearray(400 * MIB)
    grown[::4096] = b"x" * len(grown[::4096])  # touch every page: this process's high-water mark >= 400 MiB
    del grown
    holds = "x = bytearray(100 * 2**20); x[::4096] = b'x' * len(x[::4096]); import time; time.sleep(0.3)"
    measured = measure([sys.executable, "-c", holds], tmp_path / "child.log")
    assert measured.exit_code == 0
    assert 100 * MIB <= measured.peak_rss_bytes < 300 * MIB


def test_the_slowest_steps_are_the_runs_own_slowest_first_ties_by_name(tmp_path):
    db = tmp_path / "recon.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE runs (run_id VARCHAR, step_seconds MAP(VARCHAR, DOUBLE))")
        con.execute(
            "INSERT INTO runs VALUES ('earlier', MAP {'rules/X': 99.0}), "
            "('tonight', MAP {'a': 1.5, 'b': 3.0, 'c': 1.5, 'd': 0.1})"
        )
    assert slowest_steps(db, "tonight", count=3) == {"b": 3.0, "a": 1.5, "c": 1.5}
    assert list(slowest_steps(db, "tonight", count=3)) == ["b", "a", "c"]
