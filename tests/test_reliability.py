"""Reliability under faults (issue #4): kills, concurrent runs, readers, full disks, read-only folders.

The job builds a night in a private in-memory DuckDB and publishes it to the warehouse in one
transaction; the report and the exports are then written next to the warehouse, each file
renamed into place whole. These tests check the promise that follows from it, from outside
the job, on real processes:

* a run SIGKILLed at any moment leaves the warehouse readable and exactly as the previous night
  left it, or exactly as the complete new night -- never a mix -- and the next run succeeds;
  the report and export files are never half-written and the previous ones survive;
* two runs never publish at once, a second run is refused with one clear line;
* a reader holding the warehouse open never blocks a run, which builds the new warehouse beside
  it (`<db>.next`) and renames it into place; the reader keeps the night it opened;
* a full disk, a tiny temp directory and a read-only output folder make a run fail with exit
  code 1 and one line (no traceback), and leave the previous output as it was.

Speed: every job runs in a child forked from a small server process that has imported
`jobs.cli` once (`_ForkServer`), so no run pays the ~0.7 s of importing pandas and pandera.
The children are ordinary processes, killed with SIGKILL by pid. A child can also trace the
lines of a few functions of the job (`_TRACED`) to be killed -- or paused -- right before a
chosen line, e.g. before `COMMIT`; the points are found by their source text in a recorded
run, so they follow the code when its line numbers move.

Night 1 is data/sample as of 2026-03-31; night 2 is the same folder without one refund, same
as_of, so that night 2 replaces night 1's report and export files in place (the hard case).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from exports import error_lines

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
CONFIG = SAMPLE / "refund-recon.toml"
AS_OF = "2026-03-31"
DROPPED_REFUND = "RF2603310026"  # night 2 is night 1 without this (pending, unflagged) refund
NOBODY = 65534

# --------------------------------------------------------------------------------------------
# The fork server: imports the job once, forks one child per job.
# --------------------------------------------------------------------------------------------

# Functions of the job whose lines a child can be killed or paused before, "file:function".
_TRACED = (
    "pipeline.py:_run",
    "pipeline.py:_check_night",
    "pipeline.py:judge_night",
    "pipeline.py:close_night",
    "pipeline.py:_load_night",
    "history.py:store_delivery",
    "publish.py:publish",
    "publish.py:warehouse_attached",
    "publish.py:_swap",
    "files.py:write_atomically",
    "exports.py:write_exports",
    "exports.py:_write_parquet",
    "exports.py:_write_csv_night",
    "files.py:replace_folder",
)

_SERVER = r'''
import json, linecache, os, resource, signal, sys, threading, time, traceback
import jobs.cli

JOBS_DIR = os.path.dirname(os.path.abspath(jobs.cli.__file__)) + os.sep


def trace(spec):
    """Count the lines run in spec['funcs']; record them, or kill / pause before the n-th."""
    funcs = set(spec["funcs"])
    kill_at, pause_at = spec.get("kill_at"), spec.get("pause_at")
    record = spec.get("record")
    labels, count = [], 0

    def mark(label):
        with open(spec["mark"], "w") as stream:
            stream.write(label)

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
            if record or count in (kill_at, pause_at):
                code = frame.f_code
                label = (f"{os.path.basename(code.co_filename)}:{code.co_name}:{frame.f_lineno}:"
                         f"{linecache.getline(code.co_filename, frame.f_lineno).strip()}")
                if record:
                    labels.append(label)
                if count == kill_at:
                    mark(label)
                    os.kill(os.getpid(), signal.SIGKILL)
                if count == pause_at:
                    mark(label)
                    deadline = time.monotonic() + 60
                    while not os.path.exists(spec["release"]) and time.monotonic() < deadline:
                        time.sleep(0.005)
        return local

    def on_call(frame, event, arg):
        code = frame.f_code
        if code.co_filename.startswith(JOBS_DIR) and \
                f"{os.path.basename(code.co_filename)}:{code.co_name}" in funcs:
            return local
        return None

    threading.settrace(on_call)
    sys.settrace(on_call)
    return labels


def child(spec):
    out = os.open(spec["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(spec["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    rc = os.open(spec["rc"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.environ.update(spec.get("env") or {})
    if spec.get("fsize") is not None:  # a "full disk": no file may grow beyond this many bytes
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (spec["fsize"], spec["fsize"]))
    if spec.get("user") is not None:
        # The interpreter's own library may be unreadable to that user (e.g. under /root):
        # import now, as root, whatever a run imports on its way.
        for name in spec.get("preimport") or ():
            try:
                __import__(name)
            except Exception:
                pass
        os.setgroups([])
        os.setgid(spec["user"])
        os.setuid(spec["user"])
    labels = trace(spec) if spec.get("trace") else None
    code = 1
    try:
        jobs.cli.main(args=spec["argv"], prog_name="refund-recon")
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.settrace(None)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            if spec.get("record"):
                with open(spec["record"], "w") as stream:
                    json.dump({"labels": labels, "modules": sorted(sys.modules)}, stream)
            os.write(rc, str(code).encode())
        finally:
            os._exit(code)


signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
for line in sys.stdin:
    spec = json.loads(line)
    pid = os.fork()
    if pid == 0:
        child(spec)
    sys.stdout.write(f"{pid}\n")
    sys.stdout.flush()
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Job:
    """A job forked by the server: wait for it, kill it, read what it said."""

    pid: int
    folder: Path
    started: float

    def finished(self) -> bool:
        return not _alive(self.pid)

    def wait(self, timeout: float = 90) -> int | None:
        """The exit code, or None when the process died without one (killed)."""
        deadline = time.monotonic() + timeout
        while _alive(self.pid):
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"job {self.pid} did not finish within {timeout} s:\n{self.err}")
            time.sleep(0.005)
        text = (self.folder / "rc").read_text()
        return int(text) if text else None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        while _alive(self.pid):
            time.sleep(0.002)

    @property
    def out(self) -> str:
        return (self.folder / "out").read_text(errors="replace")

    @property
    def err(self) -> str:
        return (self.folder / "err").read_text(errors="replace")

    @property
    def mark(self) -> str | None:
        path = self.folder / "mark"
        return path.read_text() if path.exists() else None

    def release(self) -> None:
        (self.folder / "release").touch()

    def wait_for_mark(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while self.mark is None:
            if not _alive(self.pid) or time.monotonic() > deadline:
                pytest.fail(f"job {self.pid} never reached its pause point:\n{self.err}")
            time.sleep(0.005)
        return self.mark


class _ForkServer:
    def __init__(self, logs: Path):
        self.logs, self.count = logs, 0
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER], cwd=ROOT, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def start(
        self,
        argv: list[str],
        *,
        kill_at: int | None = None,
        pause_at: int | None = None,
        record: bool = False,
        user: int | None = None,
        fsize: int | None = None,
        env: dict | None = None,
        preimport: list[str] | None = None,
    ) -> Job:
        self.count += 1
        folder = self.logs / f"job{self.count:03d}"
        folder.mkdir(parents=True)
        spec = {
            "argv": [str(arg) for arg in argv],
            "out": str(folder / "out"),
            "err": str(folder / "err"),
            "rc": str(folder / "rc"),
            "mark": str(folder / "mark"),
            "release": str(folder / "release"),
            "user": user,
            "fsize": fsize,
            "env": env,
            "preimport": preimport,
        }
        if kill_at or pause_at or record:
            spec.update(
                trace=True,
                funcs=list(_TRACED),
                kill_at=kill_at,
                pause_at=pause_at,
                record=str(folder / "labels.json") if record else None,
            )
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            pytest.fail("the fork server died")
        return Job(int(line), folder, time.monotonic())

    def run(self, argv: list[str], **options) -> tuple[int | None, Job]:
        job = self.start(argv, **options)
        return job.wait(), job

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _run_argv(input_dir: Path, db: Path, config: Path = CONFIG) -> list:
    return ["run", "--input", input_dir, "--config", config, "--as-of", AS_OF, "--db", db]


# --------------------------------------------------------------------------------------------
# What a warehouse and its output folder hold.
# --------------------------------------------------------------------------------------------


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def snapshot(db: Path) -> dict:
    """Every table's rows as (count, checksum), overall without run_id and per run_id; views counted.

    Opening read-only also proves the warehouse is readable after whatever happened to it.
    """
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [
            name
            for (name,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() ORDER BY 1"
            ).fetchall()
        ]
        views = [
            name
            for (name,) in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal AND database_name = current_database() "
                "ORDER BY 1"
            ).fetchall()
        ]
        result = {"tables": {}, "views": {}, "runs": []}
        for table in tables:
            columns = [
                name
                for (name,) in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
                    "AND table_name = ? ORDER BY column_index",
                    [table],
                ).fetchall()
            ]
            rest = [_quoted(name) for name in columns if name != "run_id"]
            row = f"hash(row({', '.join(rest)}))" if rest else "0"
            count, checksum = con.execute(f"SELECT count(*), coalesce(sum({row}), 0) FROM {_quoted(table)}").fetchone()
            by_run = None
            if "run_id" in columns:
                by_run = {
                    run_id: (n, int(sum_))
                    for run_id, n, sum_ in con.execute(
                        f"SELECT run_id, count(*), coalesce(sum({row}), 0) FROM {_quoted(table)} GROUP BY run_id"
                    ).fetchall()
                }
            result["tables"][table] = {"content": (count, int(checksum)), "by_run": by_run}
        for view in views:
            result["views"][view] = con.execute(f"SELECT count(*) FROM {_quoted(view)}").fetchone()[0]
        if "runs" in tables:
            result["runs"] = [
                (run_id, str(as_of), status)
                for run_id, as_of, status in con.execute(
                    "SELECT run_id, as_of, status FROM runs ORDER BY finished_at, run_id"
                ).fetchall()
            ]
        return result


def _is_history(table: str) -> bool:
    return table == "runs" or table.endswith("_history")


def classify(snap: dict, night1: dict, night2: dict) -> str:
    """'night1' when `snap` is exactly night 1; 'night2' when it is night 1 plus complete night-2 runs.

    Anything else -- a mix -- fails with what differs.
    """
    if snap == night1:
        return "night1"
    old_ids = [run_id for run_id, _, _ in night1["runs"]]
    assert [run_id for run_id, _, _ in snap["runs"][: len(old_ids)]] == old_ids, (
        f"earlier runs lost or reordered: {snap['runs']}"
    )
    new_runs = snap["runs"][len(old_ids) :]
    assert new_runs, f"no new run, yet the warehouse differs from night 1: {_diff(snap, night1)}"
    assert all(as_of == AS_OF and status == "succeeded" for _, as_of, status in new_runs), new_runs
    latest = new_runs[-1][0]
    assert set(snap["tables"]) == set(night2["tables"]), _diff(snap, night2)
    assert set(snap["views"]) == set(night2["views"]), (snap["views"], night2["views"])
    for table, state in snap["tables"].items():
        if _is_history(table):
            old = {run_id: value for run_id, value in state["by_run"].items() if run_id in old_ids}
            assert old == night1["tables"][table]["by_run"], f"{table}: an earlier night's rows changed"
            if table != "runs":  # each new run's history rows are the complete night 2
                source = night2["tables"][table.removesuffix("_history")]["content"]
                for run_id, _, _ in new_runs:
                    assert state["by_run"].get(run_id, (0, 0)) == source, (
                        f"{table}: run {run_id} has {state['by_run'].get(run_id)}, night 2 has {source}"
                    )
        else:
            assert state["content"] == night2["tables"][table]["content"], (
                f"{table}: {state['content']} is not night 2's {night2['tables'][table]['content']}"
                f" (night 1: {night1['tables'].get(table, {}).get('content')})"
            )
            if state["by_run"]:
                assert set(state["by_run"]) == {latest}, (
                    f"{table}: rows of runs {sorted(state['by_run'])}, the latest run is {latest}"
                )
    return "night2"


def _diff(a: dict, b: dict) -> list[str]:
    names = sorted(set(a["tables"]) | set(b["tables"]))
    return [name for name in names if a["tables"].get(name) != b["tables"].get(name)]


def file_hashes(base: Path) -> dict[str, str]:
    """sha256 of every visible output file next to the warehouse (not the warehouse itself)."""
    hashes = {}
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(base)
        if (
            path.is_file()
            and not any(part.startswith(".") for part in relative.parts)
            and not path.name.startswith(("recon.duckdb", "filler"))
        ):
            hashes[relative.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


class _Html(HTMLParser):
    pass


def output_problems(
    base: Path, snap: dict, allowed: dict[str, set[int]], expected: dict[str, str], latest_only: bool = False
) -> list[str]:
    """What is wrong with the report and export files next to the warehouse.

    Each file must be whole (HTML ending in </html>, Parquet and CSV readable, JSON valid) and
    belong to a run the warehouse holds; every file of night 1 (`expected`) must still be there.
    With `latest_only`, each must belong to the warehouse's latest run (after a successful run).
    """
    problems = []
    run_ids = [run_id for run_id, _, _ in snap["runs"]]
    wanted = {run_ids[-1]} if latest_only else set(run_ids)
    present = file_hashes(base)
    for name in expected:
        if name not in present:
            problems.append(f"{name}: missing (the previous night's file did not survive)")
    for name in present:
        path = base / name
        if name.endswith(".html"):
            text = path.read_text(encoding="utf-8")
            _Html().feed(text)
            if not text.rstrip().endswith("</html>"):
                problems.append(f"{name}: half-written (does not end with </html>)")
            if not any(run_id in text for run_id in wanted):
                problems.append(f"{name}: not a report of run {sorted(wanted)}")
        elif name.endswith(".json"):
            try:
                run_id = json.loads(path.read_text(encoding="utf-8"))["run_id"]
            except (ValueError, KeyError) as error:
                problems.append(f"{name}: not valid run results ({error})")
            else:
                if run_id not in wanted:
                    problems.append(f"{name}: run {run_id}, not one of {sorted(wanted)}")
        elif name.endswith(".parquet"):
            table = path.parent.parent.name
            try:
                rows = pq.read_table(path).num_rows
            except Exception as error:
                problems.append(f"{name}: unreadable Parquet ({error})")
            else:
                if rows not in allowed.get(table, {rows}):
                    problems.append(f"{name}: {rows} rows, expected one of {sorted(allowed[table])}")
        elif name.endswith(".csv"):
            table = path.stem
            with path.open(newline="", encoding="utf-8") as stream:
                rows = sum(1 for _ in csv.reader(stream)) - 1
            if rows not in allowed.get(table, {rows}):
                problems.append(f"{name}: {rows} rows, expected one of {sorted(allowed[table])}")
    return problems


def _one_clean_line(job: Job) -> str:
    """The job's standard error: one line, no traceback."""
    assert "Traceback" not in job.err, f"a traceback instead of a message:\n{job.err}"
    err = "\n".join(error_lines(job.err)).strip()
    assert err and len(err.splitlines()) == 1, f"expected one line on standard error, got:\n{err}"
    assert err.startswith("refund-recon: "), err
    return err


def _clean_success(rc: int | None, job: Job) -> None:
    assert rc == 0, f"exit code {rc}\n{job.err}"
    assert "Traceback" not in job.err, job.err


# --------------------------------------------------------------------------------------------
# Night 1, the complete night 2, and a recorded night 2, shared by the tests of this module.
# --------------------------------------------------------------------------------------------


@dataclass
class World:
    server: _ForkServer
    tmp: Path
    night2_input: Path
    baseline: Path  # a folder holding night 1's warehouse, report and exports
    night1: dict
    night1_files: dict[str, str]
    night2: dict
    allowed: dict[str, set[int]]  # rows per exported table: night 1's or night 2's
    night2_counts: dict[str, set[int]]
    duration: float  # seconds a forked run takes
    labels: list[str]  # the traced lines of a night-2 run, in order
    modules: list[str]  # the modules imported by the end of a night-2 run

    def copy_baseline(self, name: str, into: Path | None = None) -> Path:
        target = into if into is not None else self.tmp / name
        shutil.copytree(self.baseline, target, dirs_exist_ok=into is not None)
        return target / "recon.duckdb"

    def night2_run(self, db: Path, **options) -> Job:
        return self.server.start(_run_argv(self.night2_input, db), **options)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reliability")
    server = _ForkServer(tmp / "jobs")
    try:
        night2_input = tmp / "night2-input"
        shutil.copytree(SAMPLE, night2_input)
        refunds = night2_input / "refunds.csv"
        lines = refunds.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith(DROPPED_REFUND + ",")]
        assert len(kept) == len(lines) - 1
        refunds.write_text("".join(kept), encoding="utf-8")

        baseline = tmp / "baseline"
        job = server.start(_run_argv(SAMPLE, baseline / "recon.duckdb"))
        rc = job.wait()
        duration = time.monotonic() - job.started  # night 1 does what night 2 does, on a fresh warehouse
        _clean_success(rc, job)
        night1 = snapshot(baseline / "recon.duckdb")

        # The complete night 2 over night 1, its lines recorded for the kill points.
        reference = tmp / "reference"
        shutil.copytree(baseline, reference)
        rc, job = server.run(_run_argv(night2_input, reference / "recon.duckdb"), record=True)
        _clean_success(rc, job)
        night2 = snapshot(reference / "recon.duckdb")
        recorded = json.loads((job.folder / "labels.json").read_text())

        world = World(
            server,
            tmp,
            night2_input,
            baseline,
            night1,
            file_hashes(baseline),
            night2,
            {},
            {},
            duration,
            recorded["labels"],
            recorded["modules"],
        )
        assert classify(night2, night1, night2) == "night2"
        assert night2["tables"]["refund_verdicts"]["content"] != night1["tables"]["refund_verdicts"]["content"]
        for table in night2["tables"]:
            if not _is_history(table):
                counts = {
                    night1["tables"].get(table, {"content": (0, 0)})["content"][0],
                    night2["tables"][table]["content"][0],
                }
                world.allowed[table] = counts
                world.night2_counts[table] = {night2["tables"][table]["content"][0]}
        assert not output_problems(reference, night2, world.night2_counts, world.night1_files, latest_only=True)
        yield world
    finally:
        server.close()


# --------------------------------------------------------------------------------------------
# SIGKILL at many points.
# --------------------------------------------------------------------------------------------


def _occurrences(labels: list[str], where: str, text: str) -> list[int]:
    return [index for index, label in enumerate(labels) if label.startswith(where + ":") and text in label]


def _kill_index(labels: list[str], point: str) -> int:
    """0-based position in `labels` of the line a named kill point stops before."""

    def first(where, text):
        found = _occurrences(labels, where, text)
        assert found, f"kill point {point!r}: no line with {text!r} in {where} -- has the code moved?"
        return found

    if point == "publish: before BEGIN":
        return first("publish.py:publish", "BEGIN TRANSACTION")[0]
    if point == "validate: tonight's rows checked, not yet merged with the stored ones":
        return first("pipeline.py:_load_night", "merge_records(")[0]
    if point == "publish: half the latest tables replaced":
        found = first("publish.py:publish", "CREATE OR REPLACE TABLE warehouse")
        return found[len(found) // 2]
    if point == "publish: history appended, before COMMIT":
        return first("publish.py:publish", '"COMMIT"')[0]
    if point == "publish: right after COMMIT":
        return first("publish.py:publish", '"COMMIT"')[0] + 1
    if point == "publish: the copy written and synced, not yet renamed into place":
        return first("publish.py:_swap", "os.replace(")[0]
    if point == "publish: right after the copy is renamed into place":
        return first("publish.py:_swap", "os.replace(")[0] + 1
    if point == "report: between the two report renames":
        found = first("files.py:write_atomically", "os.replace(")
        assert len(found) >= 2, "the run wrote a single report file"
        return found[1]
    if point == "exports: the CSV folders swapped, the old one not yet deleted":
        return first("files.py:replace_folder", "_exchange(temp, target)")[0] + 1
    raise AssertionError(point)


# (name, the state the warehouse must be in right after the kill). Each leaves a different state
# on disk for the next run to face: nothing written; the copy `<db>.next` with an open transaction
# (the delivery's records upserted and half the latest tables replaced: a kill anywhere else inside
# that transaction -- during the records' upsert, say -- leaves the same, and the next run removes
# the copy the same way); the whole night written but not committed; committed into the copy's
# WAL; checkpointed and synced but not renamed; renamed, with the report and exports still last
# night's; the report half renamed; the CSV folders swapped, the old one not yet deleted.
LINE_POINTS = [
    ("validate: tonight's rows checked, not yet merged with the stored ones", "night1"),
    ("publish: half the latest tables replaced", "night1"),
    ("publish: history appended, before COMMIT", "night1"),
    ("publish: right after COMMIT", "night1"),  # committed into <db>.next, not yet swapped in
    ("publish: the copy written and synced, not yet renamed into place", "night1"),
    ("publish: right after the copy is renamed into place", "night2"),
    ("report: between the two report renames", "night2"),
    ("exports: the CSV folders swapped, the old one not yet deleted", "night2"),
]
# Kills at a share of a run's measured duration (a forked run: no import time): one moment before
# anything is written (loading, validating), then through publish, the report and the exports.
TIME_POINTS = [0.3, 0.5, 0.65, 0.85]


def _after_kill(world: World, db: Path, expected: str | None, where: str) -> list[str]:
    """Check the warehouse and files right after a kill, then that the next run succeeds."""
    base = db.parent
    snap = snapshot(db)
    state = classify(snap, world.night1, world.night2)
    if expected is not None:
        assert state == expected, f"killed at {where}: the warehouse holds {state}, expected {expected}"
    problems = [
        f"after the kill ({where}, warehouse {state}): {problem}"
        for problem in output_problems(base, snap, world.allowed, world.night1_files)
    ]

    rc, job = world.server.run(_run_argv(world.night2_input, db))
    _clean_success(rc, job)
    after = snapshot(db)
    assert classify(after, world.night1, world.night2) == "night2"
    assert len(after["runs"]) == len(world.night1["runs"]) + (2 if state == "night2" else 1)
    problems += [
        f"after the next run: {problem}"
        for problem in output_problems(base, after, world.night2_counts, world.night1_files, latest_only=True)
    ]
    return problems


@pytest.mark.sigkill
@pytest.mark.parametrize("point, expected", LINE_POINTS)
def test_a_run_killed_before_a_line_leaves_one_whole_night_and_the_next_run_succeeds(world, point, expected):
    index = _kill_index(world.labels, point)
    db = world.copy_baseline(f"line-{index}")
    job = world.night2_run(db, kill_at=index + 1)
    rc = job.wait()
    assert rc is None, f"the run was to be killed before {world.labels[index]!r}, it exited {rc}:\n{job.err}"
    assert job.mark == world.labels[index], "the run took another path than the recorded one"
    problems = _after_kill(world, db, expected, f"{point}: {job.mark}")
    assert not problems, "\n".join(problems)


@pytest.mark.sigkill
@pytest.mark.parametrize("share", TIME_POINTS, ids=[f"{share:.0%}" for share in TIME_POINTS])
def test_a_run_killed_at_any_moment_leaves_one_whole_night_and_the_next_run_succeeds(world, share):
    db = world.copy_baseline(f"time-{share}")
    job = world.night2_run(db)
    delay = share * world.duration
    while not job.finished() and time.monotonic() - job.started < delay:
        time.sleep(0.001)
    job.kill()
    rc = job.wait()
    assert rc in (None, 0), f"exit code {rc}:\n{job.err}"
    problems = _after_kill(world, db, None, f"{delay:.2f} s of {world.duration:.2f} s")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------
# Concurrency: two runs, a reader.
# --------------------------------------------------------------------------------------------


def _lock_refusal(job: Job) -> str:
    message = _one_clean_line(job)
    assert "cannot open the warehouse" in message or "another run is writing this warehouse" in message, message
    return message


@pytest.mark.slow
def test_a_run_reaching_publish_while_another_publishes_is_refused_and_the_first_completes(world):
    """Run A is paused inside its publish transaction (holding the write lock); run B is refused
    cleanly, and a query reads the previous night meanwhile."""
    db = world.copy_baseline("two-writers")
    first = world.night2_run(db, pause_at=_kill_index(world.labels, "publish: half the latest tables replaced") + 1)
    first.wait_for_mark()
    try:
        rc, second = world.server.run(_run_argv(world.night2_input, db))
        assert rc == 1, f"the second run exited {rc}:\n{second.out}\n{second.err}"
        _lock_refusal(second)
        rc, reader = world.server.run(["query", "SELECT count(*) AS runs FROM runs", "--db", db, "--format", "csv"])
        _clean_success(rc, reader)
        assert reader.out.split() == ["runs", str(len(world.night1["runs"]))], reader.out
    finally:
        first.release()
    _clean_success(first.wait(), first)
    snap = snapshot(db)
    assert classify(snap, world.night1, world.night2) == "night2"
    assert len(snap["runs"]) == len(world.night1["runs"]) + 1
    assert not output_problems(db.parent, snap, world.night2_counts, world.night1_files, latest_only=True)


@pytest.mark.slow
def test_two_runs_started_together_leave_a_consistent_warehouse(world):
    """What the code does today: both run; whichever reaches publish while the other holds the lock exits 1."""
    db = world.copy_baseline("two-together")
    jobs = [world.night2_run(db), world.night2_run(db)]
    codes = [job.wait() for job in jobs]
    snap = snapshot(db)
    assert classify(snap, world.night1, world.night2) == "night2"
    run_ids = {run_id for run_id, _, _ in snap["runs"]}
    for job, rc in zip(jobs, codes, strict=False):
        assert rc in (0, 1), f"exit code {rc}:\n{job.err}"
        if rc == 0:
            assert "Traceback" not in job.err, job.err
            published = job.out.split()[2]  # "refund-recon run <run_id>  as_of ..."
            assert published in run_ids
        else:
            _one_clean_line(job)
    assert 1 <= len(snap["runs"]) - len(world.night1["runs"]) <= 2


@pytest.mark.slow
def test_a_second_run_started_while_one_is_running_is_refused_at_once(world):
    db = world.copy_baseline("second-run")
    rules_line = _occurrences(world.labels, "pipeline.py:judge_night", "evaluate(runner)")
    assert rules_line, "no rules stage line in pipeline.run"
    first = world.night2_run(db, pause_at=rules_line[0] + 1)  # paused in its rules stage
    first.wait_for_mark()
    try:
        rc, second = world.server.run(_run_argv(world.night2_input, db))
    finally:
        first.release()
    _clean_success(first.wait(), first)
    assert rc == 1, f"the second run, started while the first was running, exited {rc}"
    _one_clean_line(second)


@pytest.mark.slow
def test_a_run_whose_report_is_blocked_by_a_writer_says_its_night_is_published(world):
    db = world.copy_baseline("blocked-report")
    report_line = _occurrences(world.labels, "pipeline.py:_run", "write_report(")
    assert report_line, "no write_report line in pipeline._run"
    first = world.night2_run(db, pause_at=report_line[0] + 1)  # committed, about to write the report
    first.wait_for_mark()
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db)], text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert writer.stdout.readline().strip() == "ready"  # holds the warehouse for writing
        first.release()
        rc = first.wait()
    finally:
        first.release()
        writer.stdin.close()
        writer.wait(timeout=30)
    snap = snapshot(db)
    assert classify(snap, world.night1, world.night2) == "night2"
    assert rc == 1
    message = _one_clean_line(first)
    assert "is published" in message, message


_WRITER = r"""
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("ready", flush=True)
sys.stdin.read()
con.close()
"""


_READER = r"""
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
VIEW = "SELECT (SELECT count(*) FROM runs), (SELECT sum(hash(refund_id)) FROM refund_verdicts)"
view = lambda: con.execute(VIEW).fetchall()
first = view()
print("ready", flush=True)
sys.stdin.readline()
print("unchanged" if view() == first else f"changed: {first} -> {view()}", flush=True)
sys.stdin.read()
con.close()
"""


@pytest.mark.slow
def test_a_reader_holding_the_warehouse_does_not_block_the_run_and_keeps_its_night(world):
    db = world.copy_baseline("reader")
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(db)], text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert reader.stdout.readline().strip() == "ready"
        rc, job = world.server.run(_run_argv(world.night2_input, db))
        _clean_success(rc, job)
        assert reader.poll() is None, "the reader was disturbed"
        reader.stdin.write("again\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "unchanged", "the reader's view changed under it"
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
    assert reader.returncode == 0
    snap = snapshot(db)
    assert classify(snap, world.night1, world.night2) == "night2"
    assert not output_problems(db.parent, snap, world.night2_counts, world.night1_files, latest_only=True)


# --------------------------------------------------------------------------------------------
# A read-only output folder, a full disk, a tiny temp directory.
# --------------------------------------------------------------------------------------------


def _assert_failed_cleanly_and_nothing_changed(world: World, rc, job: Job, db: Path) -> None:
    assert rc == 1, f"exit code {rc}\n{job.out}\n{job.err}"
    assert snapshot(db) == world.night1, "the previous night did not survive"
    assert file_hashes(db.parent) == world.night1_files, "the previous report or exports did not survive"
    _one_clean_line(job)


def _readable_by_others(path: Path) -> bool:
    """Whether a user with no rights but the world's can reach and read `path`."""
    path = path.resolve()
    folders_open = all(parent.stat().st_mode & 0o001 for parent in path.parents)
    return folders_open and path.stat().st_mode & (0o005 if path.is_dir() else 0o004) != 0


@pytest.mark.slow
def test_a_read_only_output_folder_fails_cleanly_and_keeps_the_previous_output(world):
    # Root ignores permission bits, so as root the run is made as `nobody` in a folder it owns.
    as_root = os.geteuid() == 0
    if as_root and not all(
        _readable_by_others(path)
        for path in (ROOT / "jobs", ROOT / "sql", ROOT / "jobs" / "outputs" / "templates", CONFIG)
    ):
        pytest.skip("running as root, and the checkout is not readable by `nobody`, who would run the job")
    outer = Path(tempfile.mkdtemp(prefix="refund-recon-ro-")) if as_root else world.tmp / "read-only"
    folder = outer / "out"
    try:
        outer.mkdir(exist_ok=True)
        db = world.copy_baseline("", into=folder)
        night2_input = shutil.copytree(world.night2_input, outer / "input")
        user = None
        if as_root:
            user = NOBODY
            for path in [outer, *outer.rglob("*")]:
                os.chown(path, NOBODY, NOBODY)
            outer.chmod(0o755)
        folder.chmod(0o555)
        argv = _run_argv(night2_input, db)
        rc, job = world.server.run(argv, user=user, env={"HOME": str(outer)}, preimport=world.modules)
        try:
            _assert_failed_cleanly_and_nothing_changed(world, rc, job, db)
        finally:
            folder.chmod(0o755)
        rc, job = world.server.run(argv, user=user, env={"HOME": str(outer)}, preimport=world.modules)
        _clean_success(rc, job)
        assert classify(snapshot(db), world.night1, world.night2) == "night2"
    finally:
        if folder.exists():
            folder.chmod(0o755)
        if as_root:
            shutil.rmtree(outer, ignore_errors=True)


def _tmpfs(folder: Path, size: str) -> bool:
    """Mount a tmpfs of `size` on `folder` if this process may (root, and mounting allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
    )
    return mounted.returncode == 0


def _fill(folder: Path) -> None:
    """Write zeros into `folder` until its file system is full."""
    for name, size in (("filler", 65536), ("filler-tail", 512)):  # then the last partial block
        with (folder / name).open("wb", buffering=0) as stream:
            try:
                while True:
                    stream.write(b"\0" * size)
            except OSError:
                pass


def _umount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], capture_output=True)


@pytest.mark.slow
def test_a_full_disk_under_the_warehouse_fails_cleanly_and_keeps_the_previous_output(world):
    folder = world.tmp / "full-disk"
    if not _tmpfs(folder, "32m"):  # room for two warehouses (~7 MB): a run builds the next beside it
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
    try:
        db = world.copy_baseline("", into=folder)
        _fill(folder)
        rc, job = world.server.run(_run_argv(world.night2_input, db))
        _assert_failed_cleanly_and_nothing_changed(world, rc, job, db)
        for filler in folder.glob("filler*"):
            filler.unlink()
        rc, job = world.server.run(_run_argv(world.night2_input, db))
        _clean_success(rc, job)
        assert classify(snapshot(db), world.night1, world.night2) == "night2"
    finally:
        _umount(folder)


@pytest.mark.slow
def test_a_disk_filling_up_during_publish_fails_cleanly_with_one_whole_night(world):
    """No mount needed: RLIMIT_FSIZE (binding root too) lets no file grow past 1 MB, so the copy
    of the warehouse (6 MB) the night is written into cannot be made."""
    db = world.copy_baseline("disk-filling-up")
    rc, job = world.server.run(_run_argv(world.night2_input, db), fsize=1 << 20)
    assert rc == 1, f"exit code {rc}\n{job.out}\n{job.err}"
    state = classify(snapshot(db), world.night1, world.night2)  # one whole night, never a mix
    message = _one_clean_line(job)
    if state == "night1":
        assert file_hashes(db.parent) == world.night1_files, "the previous report or exports did not survive"
    else:
        assert "is published" in message, f"the night is published, the message does not say so: {message}"
    rc, job = world.server.run(_run_argv(world.night2_input, db))
    _clean_success(rc, job)
    assert classify(snapshot(db), world.night1, world.night2) == "night2"


@pytest.mark.slow
def test_a_full_tiny_temp_directory_fails_cleanly_and_keeps_the_previous_output(world):
    """A memory limit this sample cannot run in, so DuckDB must spill, and no room to spill."""
    spill = world.tmp / "tiny-temp"
    mounted = _tmpfs(spill, "1m")
    try:
        if mounted:
            _fill(spill)
        config = world.tmp / "tiny-temp.toml"
        text = CONFIG.read_text(encoding="utf-8")
        assert "\n[duckdb]\n" in text
        config.write_text(
            text.replace(
                "\n[duckdb]\n", f'\n[duckdb]\nthreads = 1\nmemory_limit = "8MB"\ntemp_directory = "{spill / "spill"}"\n'
            ),
            encoding="utf-8",
        )
        db = world.copy_baseline("tiny-temp-out")
        # Without a tmpfs, RLIMIT_FSIZE keeps every spill file under 64 KB instead.
        rc, job = world.server.run(_run_argv(world.night2_input, db, config), fsize=None if mounted else 64 * 1024)
        _assert_failed_cleanly_and_nothing_changed(world, rc, job, db)
        rc, job = world.server.run(_run_argv(world.night2_input, db))
        _clean_success(rc, job)
        assert classify(snapshot(db), world.night1, world.night2) == "night2"
    finally:
        if mounted:
            _umount(spill)
