"""`make bench`: how close the nightly job comes to merely reading its inputs (issues #5, #12).

For each scale factor, in one invocation: generate the night once (cached under
out/bench/data/), then time in child processes, each on the same files,
  floor     DuckDB reading and parsing every column of the four exports once (benchmarks/floor.py)
  job       `refund-recon run` on a fresh warehouse with the default settings (DuckDB's
            memory_limit 1 GiB), report and exports included
  job-unbounded  the same with DuckDB's own memory limit, 80% of RAM (memory_limit = "80%")
  delta     a night of one day's records onto the year before it (benchmarks/delta.py): the
            history delivered at as_of - 1 on a fresh warehouse, then the delta at as_of timed
            on a copy of that warehouse; its flags are checked against the job's
  peer      the pandas peer (benchmarks/peer_pandas.py), at scales up to --peer-max-scale,
            whose flags are then checked against the job's refund_flags
  polars peer  the Polars peer (benchmarks/peer_polars.py: lazy scans, streaming collect), on the
            same rows at the same scales, its flags checked the same way
and report wall time, peak resident memory, the job's per-stage profile, the ratios and the
targets of issue #12 in benchmarks/results/<UTC timestamp>.json and .md. A scale above 10
(`make bench SCALES=50`: 240M usage rows, ~21 GB of CSV) times the first night alone, then
deletes its generated data and warehouse.

Peak memory is the highest of the child's own VmHWM / VmRSS, sampled every 20 ms, and (for the
job) its per-stage peaks from run_results.json (the job resets VmHWM at each stage). Not
ru_maxrss: Linux seeds a forked child's with the bench process's own (docs/performance.md).
Children import this tree's jobs/ (PYTHONPATH), so a clean checkout elsewhere can be measured
with the same venv.

    python -m benchmarks.bench [--scales 1 10] [--seed 7] [--format csv] [--repeat 1]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd

from benchmarks import report
from benchmarks.check import compare_file, differences, job_flags, job_quarantine
from benchmarks.delta import history_as_of, split_night
from benchmarks.floor import column_types

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GIB = 1 << 30
# Each peer's measurement in a scale's results (report.PEERS) -> the module it runs.
PEER_MODULES = {"peer": "benchmarks.peer_pandas", "polars_peer": "benchmarks.peer_polars"}
STEPS_SHOWN = 12  # the job's slowest SQL steps kept in the results
# Children run this tree's code (jobs/, sql/), even from a checkout other than the venv's own.
CHILD_ENV = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


@dataclass
class Measurement:
    """One child process: wall seconds, peak resident bytes, and how it ended."""

    seconds: float
    peak_rss_bytes: int
    exit_code: int
    error: str | None = None
    load_average: float = 0.0  # 1-minute load average when it started: a noise indicator
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_peak_rss_bytes: dict[str, int] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)  # the job's slowest SQL steps (runs.step_seconds)


def measure(command: list[str], log: Path) -> Measurement:
    """Run `command`, timing it and following its resident memory until it exits."""
    log.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    with log.open("w") as output:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO, env=CHILD_ENV)
        sampler = _RssSampler(child.pid)
        sampler.start()
        _, status = os.waitpid(child.pid, 0)
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    sampler.join()
    # The child's own high-water marks only: its ru_maxrss also holds this process's high-water mark
    # when it was forked (Linux copies it into the child and keeps it across exec), which after the
    # delta split (DuckDB in this process) was 2.83 GiB whatever the child used.
    peak = sampler.peak
    error = None if child.returncode == 0 else _last_line(log)
    return Measurement(round(seconds, 3), peak, child.returncode, error, load)


class _RssSampler(threading.Thread):
    """The highest VmHWM / VmRSS of a process, read from /proc every 20 ms while it lives."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.status, self.peak = Path(f"/proc/{pid}/status"), 0

    def run(self) -> None:
        while True:
            try:
                text = self.status.read_text()
            except OSError:
                return
            if "State:\tZ" in text:  # exited, not yet reaped
                return
            for line in text.splitlines():
                if line.startswith(("VmHWM:", "VmRSS:")):
                    self.peak = max(self.peak, int(line.split()[1]) * 1024)
            time.sleep(0.02)


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def best_of(repeat: int, once) -> Measurement:
    """Run `once` `repeat` times; keep the fastest successful run (the least disturbed)."""
    runs = [once() for _ in range(repeat)]
    good = [run for run in runs if run.exit_code == 0]
    return min(good, key=lambda run: run.seconds) if good else runs[-1]


def night_data(scale: float, seed: int, file_format: str, out: Path) -> tuple[Path, float | None]:
    """The generated night for this scale and seed, generated once; (folder, seconds or None if cached)."""
    folder = out / "data" / f"sf{scale:g}-seed{seed}-{file_format}"
    if (folder / ".complete").exists():
        return folder, None
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    generated = measure(
        [
            str(BIN / "refund-recon"),
            "generate",
            "--scale",
            f"{scale:g}",
            "--seed",
            str(seed),
            "--out",
            str(staging),
            "--format",
            file_format,
        ],
        out / "logs" / f"generate-{folder.name}.log",
    )
    if generated.exit_code != 0:
        raise BenchError(f"generating scale {scale:g} failed: {generated.error}")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    (folder / ".complete").write_text(json.dumps(asdict(generated)))
    return folder, generated.seconds


class BenchError(Exception):
    """The benchmark cannot go on; the message is one line for the user."""


def run_job(
    data: Path,
    as_of: date,
    run_dir: Path,
    base_config: dict,
    memory_limit: str | None = None,
    warehouse: Path | None = None,
) -> Measurement:
    """`refund-recon run` in `run_dir`, with its stage profile: on a fresh warehouse, or on a
    copy of `warehouse` (copied before the clock starts)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    if warehouse is not None:
        shutil.copyfile(warehouse, run_dir / "recon.duckdb")
    config = run_dir / "refund-recon.toml"
    settings = dict(base_config)
    if memory_limit:
        settings["duckdb"] = settings.get("duckdb", {}) | {"memory_limit": memory_limit}
    config.write_text(toml_text(settings))
    measured = measure(
        [
            str(BIN / "refund-recon"),
            "run",
            "--input",
            str(data),
            "--db",
            str(run_dir / "recon.duckdb"),
            "--as-of",
            as_of.isoformat(),
            "--config",
            str(config),
        ],
        run_dir / "job.log",
    )
    results = sorted(run_dir.glob("**/run_results.json"))
    if measured.exit_code == 0 and results:
        profile = json.loads(results[0].read_text())
        measured.stage_seconds = profile.get("stage_seconds", {})
        measured.stage_peak_rss_bytes = {
            name: peak for name, peak in profile.get("stage_peak_rss_bytes", {}).items() if peak
        }
        measured.peak_rss_bytes = max([measured.peak_rss_bytes, *measured.stage_peak_rss_bytes.values()])
        measured.step_seconds = slowest_steps(run_dir / "recon.duckdb", profile["run_id"])
    return measured


def slowest_steps(db: Path, run_id: str, count: int = STEPS_SHOWN) -> dict[str, float]:
    """The run's `count` slowest SQL steps and their seconds (`runs.step_seconds`), slowest first."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT entry.key, entry.value FROM (SELECT unnest(map_entries(step_seconds)) AS entry "
            "FROM runs WHERE run_id = ?) ORDER BY entry.value DESC, entry.key LIMIT ?",
            [run_id, count],
        ).fetchall()
    return dict(rows)


def toml_text(tables: dict, prefix: str = "") -> str:
    """Settings as TOML: [section] tables of strings, numbers, booleans and lists of strings."""
    lines = []
    for name, table in tables.items():
        values = {key: value for key, value in table.items() if not isinstance(value, dict)}
        lines += [f"[{prefix}{name}]"] + [f"{key} = {json.dumps(value)}" for key, value in values.items()] + [""]
        nested = {key: value for key, value in table.items() if isinstance(value, dict)}
        lines += [toml_text(nested, f"{prefix}{name}.")] if nested else []
    return "\n".join(lines)


def run_floor(data: Path, run_dir: Path) -> Measurement:
    types = run_dir / "types.json"
    types.parent.mkdir(parents=True, exist_ok=True)
    types.write_text(json.dumps(column_types()))
    return measure(
        [sys.executable, "-m", "benchmarks.floor", "--input", str(data), "--types", str(types)], run_dir / "floor.log"
    )


def split_data(data: Path, as_of: date) -> Path:
    """The night cut into history/ and delta/ (benchmarks/delta.py), once per night and as_of."""
    folder = data.with_name(f"{data.name}-split-{as_of.isoformat()}")
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / ".complete").write_text(json.dumps(split_night(data, as_of, folder)))
    return folder


def run_delta(data: Path, as_of: date, runs: Path, base_config: dict, repeat: int) -> dict:
    """The history night, then the delta night timed on copies of its warehouse, flags checked."""
    split = split_data(data, as_of)
    history = run_job(split / "history", history_as_of(as_of), runs / "history", base_config)
    if history.exit_code != 0:
        return {"history": history}
    delta = best_of(
        repeat,
        lambda: run_job(
            split / "delta", as_of, runs / "delta", base_config, warehouse=runs / "history" / "recon.duckdb"
        ),
    )
    result = {"history": history, "delta": delta, "rows": json.loads((split / ".complete").read_text())}
    if delta.exit_code == 0:
        with (
            duckdb.connect(str(runs / "delta" / "recon.duckdb"), read_only=True) as nightly,
            duckdb.connect(str(runs / "job" / "recon.duckdb"), read_only=True) as rebuilt,
        ):
            result["delta_differences"] = differences(job_flags(nightly), job_flags(rebuilt), ("delta", "full rebuild"))
    return result


def run_peers(data: Path, as_of: date, run_dir: Path, job_db: Path) -> dict:
    """Time each peer on the rows the job loaded, then check its flags against the job's."""
    run_dir.mkdir(parents=True, exist_ok=True)
    quarantine = run_dir / "quarantine.csv"
    with duckdb.connect(str(job_db), read_only=True) as con:
        job_quarantine(con).to_csv(quarantine, index=False)
    result = {}
    for measurement, module in PEER_MODULES.items():
        differences_key = report.PEERS[measurement][1]
        result[measurement], result[differences_key] = run_peer(
            module, data, as_of, run_dir / measurement, quarantine, job_db
        )
    return result


def run_peer(
    module: str, data: Path, as_of: date, run_dir: Path, quarantine: Path, job_db: Path
) -> tuple[Measurement, list[str]]:
    """One peer's command on the night without the rows in `quarantine`; its time and flag differences."""
    flags = run_dir / "peer_flags.csv"
    command = ["--input", str(data), "--as-of", as_of.isoformat(), "--quarantine", str(quarantine), "--out", str(flags)]
    measured = measure([sys.executable, "-m", module, *command], run_dir / "peer.log")
    if measured.exit_code != 0:
        return measured, [f"the peer failed: {measured.error}"]
    with duckdb.connect(str(job_db), read_only=True) as con:
        return measured, compare_file(flags, con)


def bench_scale(scale: float, args) -> dict:
    """Every measurement of one scale factor."""
    data, generate_seconds = night_data(scale, args.seed, args.format, args.out)
    runs = args.out / "runs" / f"sf{scale:g}"
    print(
        f"scale {scale:g}: {data} "
        f"({'cached' if generate_seconds is None else f'generated in {generate_seconds:.0f}s'})",
        flush=True,
    )
    result = {"data": _data_facts(data), "generate_seconds": generate_seconds}
    base_config = tomllib.loads(args.config.read_text()) if args.config else {}
    if scale > float(report.LARGE):  # scale 50: the first night alone, then its ~21 GB are deleted
        result["job"] = run_job(data, args.as_of, runs / "job", base_config, None)
        _progress(scale, "job", result["job"])
        shutil.rmtree(data)
        shutil.rmtree(runs)
        return result
    result["floor"] = best_of(args.repeat, lambda: run_floor(data, runs / "floor"))
    _progress(scale, "floor", result["floor"])
    result["job"] = best_of(args.repeat, lambda: run_job(data, args.as_of, runs / "job", base_config, None))
    _progress(scale, "job", result["job"])
    result["job_unbounded"] = best_of(
        args.repeat, lambda: run_job(data, args.as_of, runs / "job-unbounded", base_config, "80%")
    )
    _progress(scale, "job-unbounded", result["job_unbounded"])
    if result["job"].exit_code == 0:
        result |= run_delta(data, args.as_of, runs, base_config, args.repeat)
        _progress(scale, "delta", result["delta"] if "delta" in result else result["history"])
    if scale <= args.peer_max_scale and result["job"].exit_code == 0:
        result |= run_peers(data, args.as_of, runs / "peer", runs / "job" / "recon.duckdb")
        for measurement in PEER_MODULES:
            _progress(scale, report.PEERS[measurement][0], result[measurement])
    return result


def _progress(scale: float, name: str, measured: Measurement) -> None:
    outcome = f"{measured.seconds:.1f}s, peak {measured.peak_rss_bytes / GIB:.2f} GiB"
    print(f"  sf{scale:g} {name}: {outcome if measured.exit_code == 0 else 'FAILED: ' + measured.error}", flush=True)


def _data_facts(data: Path) -> dict:
    files = sorted(path for path in data.iterdir() if not path.name.startswith("."))
    return {
        "files": {path.name: path.stat().st_size for path in files},
        "bytes": sum(path.stat().st_size for path in files),
    }


def machine() -> dict:
    """What the numbers were measured on."""
    memory = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_bytes": memory,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pandas": pd.__version__,
        "polars": _version("polars"),
        "platform": platform.platform(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_tracked_changes": bool(_git("status", "--porcelain", "-uno")),
    }


def _version(package: str) -> str | None:
    """An installed package's version (without importing it), None if it is not installed."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*arguments: str) -> str:
    return subprocess.run(["git", *arguments], cwd=REPO, capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 3, 31))
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the fastest is kept")
    parser.add_argument(
        "--peer-max-scale",
        type=float,
        default=1.0,
        help="run the peers (pandas, Polars) only up to this scale (the pandas one holds everything in memory)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="base settings of the job's runs (defaults if not given: "
        'report and exports on, as at night); the unbounded run sets memory_limit = "80%%"',
    )
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    try:
        scales = {f"{scale:g}": bench_scale(scale, args) for scale in sorted(set(args.scales))}
    except BenchError as error:
        sys.exit(f"bench: {error}")
    document = report.build(started, machine(), vars(args), scales)
    json_path, markdown_path = report.write(document, args.results, started)
    print(markdown_path.read_text())
    print(f"results: {json_path} and {markdown_path}")


if __name__ == "__main__":
    main()
