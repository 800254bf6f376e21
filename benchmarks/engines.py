"""`make bench ENGINE=spark`: the Spark engine's night beside the DuckDB engine's (issue #13).

For each scale factor: generate the night once as Parquet (the lake's format; cached under
out/bench/data/ like `make bench`'s nights), then time in child processes, on the same files,
  floor   DuckDB merely reading the four exports (benchmarks/floor.py)
  duckdb  `refund-recon run` (the DuckDB engine, default settings, report and exports included)
  spark   `refund-recon run --engine spark --spark-master local[N]` from the Spark venv
          (.venv-spark), its outputs under out/bench/runs/sf<N>/spark/out
and check that every table the Spark night writes equals the DuckDB engine's Parquet export of
the same night. No target: the point of Spark is horizontal scale
(docs/spark.md); this shows what one 2-core machine costs it. Results go to
benchmarks/results/<UTC timestamp>-spark.json and .md.

    python -m benchmarks.engines [--scales 1] [--seed 7] [--spark-master local[2]]
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from benchmarks.bench import REPO, Measurement, best_of, machine, measure, night_data, run_floor, run_job
from jobs.outputs.lake import SAME_ON_BOTH_ENGINES

SPARK_BIN = REPO / ".venv-spark" / "bin" / "refund-recon"
# Every table a Spark night writes, compared with the DuckDB engine's Parquet export of it, but the
# columns naming the run, timing it, or hashing its config (the DuckDB run's bench config differs).
COMPARED_TABLES = SAME_ON_BOTH_ENGINES
RUN_COLUMNS = ("run_id", "started_at", "finished_at", "stage_seconds", "step_seconds", "config_hash")


def run_spark(data: Path, as_of: date, run_dir: Path, master: str) -> Measurement:
    """`refund-recon run --engine spark` into `run_dir/out`, from a fresh folder."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    command = [str(SPARK_BIN), "run", "--engine", "spark", "--spark-master", master]
    command += ["--input", str(data), "--as-of", as_of.isoformat(), "--out", str(run_dir / "out")]
    return measure(command, run_dir / "job.log")


def differences(duckdb_exports: Path, spark_out: Path, as_of: date) -> dict[str, int]:
    """Per compared table, the rows on one side only (0: equal row for row, duplicates counted)."""
    night = f"as_of={as_of.isoformat()}"
    con = duckdb.connect()
    counts = {}
    for table in COMPARED_TABLES:
        sides = [str(duckdb_exports / table / night / "*.parquet"), str(spark_out / table / night / "*.parquet")]
        columns = [column[0] for column in con.execute("SELECT * FROM read_parquet(?) LIMIT 0", [sides[0]]).description]
        kept = ", ".join(f'"{name}"' for name in columns if name not in RUN_COLUMNS)
        left, right = (f"SELECT {kept} FROM read_parquet(${index})" for index in (1, 2))
        counts[table] = con.execute(
            f"SELECT (SELECT count(*) FROM ({left} EXCEPT ALL {right})) + "
            f"(SELECT count(*) FROM ({right} EXCEPT ALL {left}))",
            sides,
        ).fetchone()[0]
    return counts


def bench_scale(scale: float, args) -> dict:
    data, _ = night_data(scale, args.seed, "parquet", args.out)
    runs = args.out / "runs" / f"sf{scale:g}-engines"
    result: dict = {"floor": best_of(args.repeat, lambda: run_floor(data, runs / "floor"))}
    result["duckdb"] = best_of(args.repeat, lambda: run_job(data, args.as_of, runs / "duckdb", {}, None))
    result["spark"] = best_of(args.repeat, lambda: run_spark(data, args.as_of, runs / "spark", args.spark_master))
    if result["duckdb"].exit_code == 0 and result["spark"].exit_code == 0:
        exports = runs / "duckdb" / "exports" / "parquet"
        result["differences"] = differences(exports, runs / "spark" / "out", args.as_of)
    for name in ("floor", "duckdb", "spark"):
        measured = result[name]
        outcome = f"{measured.seconds:.1f}s" if measured.exit_code == 0 else f"FAILED: {measured.error}"
        print(f"  sf{scale:g} {name}: {outcome}", flush=True)
    return result


def markdown(document: dict) -> str:
    lines = [
        f"# Engines {document['started']}",
        "",
        f"{document['machine']['cores']} cores, commit {document['machine']['git_commit'][:10]}; "
        f"Parquet night, seed {document['settings']['seed']}, as_of {document['settings']['as_of']}, "
        f"Spark master {document['settings']['spark_master']}.",
        "",
        "| scale | floor | DuckDB engine | its peak RSS | Spark engine | its peak RSS (driver) | Spark / DuckDB "
        "| Spark outputs = DuckDB's |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scale, result in document["scales"].items():
        floor, duck, spark = (result[name] for name in ("floor", "duckdb", "spark"))
        ratio = f"{spark['seconds'] / duck['seconds']:.1f}x" if duck["exit_code"] == spark["exit_code"] == 0 else "-"
        agreed = result.get("differences")
        agreement = "not compared" if agreed is None else "yes" if not any(agreed.values()) else json.dumps(agreed)
        lines.append(
            f"| sf{scale} | {_seconds(floor)} | {_seconds(duck)} | {duck['peak_rss_bytes'] / 2**30:.2f} GiB "
            f"| {_seconds(spark)} | {spark['peak_rss_bytes'] / 2**30:.2f} GiB | {ratio} | {agreement} |"
        )
    return "\n".join(lines) + "\n"


def _seconds(measured: dict) -> str:
    return f"{measured['seconds']:.1f} s" if measured["exit_code"] == 0 else f"failed: {measured['error']}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 3, 31))
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the fastest is kept")
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    if not SPARK_BIN.exists():
        raise SystemExit(f"bench: {SPARK_BIN} is missing (make bench ENGINE=spark installs it)")
    started = datetime.now(UTC)
    scales = {f"{scale:g}": bench_scale(scale, args) for scale in sorted(set(args.scales))}
    document = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {key: str(value) for key, value in vars(args).items()},
        "scales": {
            scale: {name: asdict(value) if isinstance(value, Measurement) else value for name, value in result.items()}
            for scale, result in scales.items()
        },
    }
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{stamp}-spark.json").write_text(json.dumps(document, indent=2) + "\n")
    markdown_path = args.results / f"{stamp}-spark.md"
    markdown_path.write_text(markdown(document))
    print(markdown_path.read_text())


if __name__ == "__main__":
    main()
