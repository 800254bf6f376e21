"""The wheel carries the SQL the job runs, so an installed job works outside the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from jobs.catalog import CATALOG

ROOT = Path(__file__).resolve().parents[1]


def test_every_rule_quotes_the_policy_sentence_it_enforces_below_its_header():
    for rule in CATALOG.rules:
        first_lines = rule.sql.splitlines()[:2]
        assert first_lines[0].startswith("-- "), rule.code
        assert '"' in "".join(first_lines), f"{rule.code} quotes no policy sentence"
        assert "Fires when" in rule.description, f"{rule.code} does not say when it fires"


def test_the_wheel_ships_every_sql_file(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("refund_recon-*.whl")
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".sql")}
    expected = {f"jobs/sql/{path.relative_to(ROOT / 'sql').as_posix()}" for path in (ROOT / "sql").rglob("*.sql")}
    assert expected and shipped == expected
