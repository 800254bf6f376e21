"""The wheel carries the SQL the job runs, so an installed job works outside the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from jobs.rules import RULES
from jobs.sqlfiles import SQL_DIR

ROOT = Path(__file__).resolve().parents[1]


def test_every_rule_has_its_sql_file_headed_by_a_policy_quote():
    for rule in RULES:
        text = (SQL_DIR / "rules" / f"{rule.code}.sql").read_text(encoding="utf-8")
        assert text.startswith("-- "), rule.code
        assert '"' in text.splitlines()[0] + text.splitlines()[1], f"{rule.code} quotes no policy sentence"


def test_the_wheel_ships_every_sql_file(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("refund_recon-*.whl")
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".sql")}
    expected = {f"jobs/sql/{path.relative_to(ROOT / 'sql').as_posix()}" for path in (ROOT / "sql").rglob("*.sql")}
    assert expected and shipped == expected
