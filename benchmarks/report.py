"""The bench's results: ratios, issue #12's targets met or not, and the JSON and Markdown files."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

GIB = 1 << 30
SMALL, LARGE, HUGE = "1", "10", "50"  # the scale factors (50: `make bench SCALES=50`)
MEASUREMENTS = ("floor", "job", "job_unbounded", "delta", "peer", "polars_peer")
# Each peer's measurement in a scale's results -> its name in the ratios, the key of its flag differences.
PEERS = {"peer": ("peer", "differences"), "polars_peer": ("polars peer", "polars_differences")}


@dataclass
class Target:
    """One of issue #12's targets; `met` is None when it was not measured."""

    name: str
    goal: str
    measured: str
    met: bool | None


def build(started: datetime, machine: dict, settings: dict, scales: dict[str, dict]) -> dict:
    """The whole result document (plain JSON types)."""
    ratios = _ratios(scales)
    return {
        "started_at": started.isoformat(),
        "machine": machine,
        "settings": {
            key: value if isinstance(value, (int, float, list)) else str(value) for key, value in settings.items()
        },
        "scales": {scale: _plain(result) for scale, result in scales.items()},
        "ratios": ratios,
        "targets": [asdict(target) for target in targets(scales, ratios)],
    }


def _plain(result: dict) -> dict:
    return {key: asdict(value) if hasattr(value, "__dataclass_fields__") else value for key, value in result.items()}


def _ok(result: dict | None, name: str):
    """The measurement `name` of a scale, if it ran and succeeded."""
    measured = (result or {}).get(name)
    return measured if measured is not None and measured.exit_code == 0 else None


def _ratios(scales: dict[str, dict]) -> dict[str, float]:
    ratios = {}
    for scale, result in scales.items():
        floor, job, unbounded, delta = (_ok(result, name) for name in ("floor", "job", "job_unbounded", "delta"))
        if floor and job:
            ratios[f"sf{scale} job / floor time"] = round(job.seconds / floor.seconds, 2)
        if job and unbounded:
            ratios[f"sf{scale} job (1 GiB limit) / unbounded time"] = round(job.seconds / unbounded.seconds, 2)
        if job and delta:
            ratios[f"sf{scale} delta night / full rebuild time"] = round(delta.seconds / job.seconds, 3)
        for measurement, (name, _) in PEERS.items():
            ratios |= _peer_ratios(f"sf{scale}", name, _ok(result, measurement), job, delta)
    small, large, huge = (_ok(scales.get(scale), "job") for scale in (SMALL, LARGE, HUGE))
    if small and large:
        ratios[f"sf{LARGE} / sf{SMALL} job time"] = round(large.seconds / small.seconds, 2)
    if large and huge:
        ratios[f"sf{HUGE} / sf{LARGE} job time"] = round(huge.seconds / large.seconds, 2)
    return ratios


def _peer_ratios(scale: str, name: str, peer, job, delta) -> dict[str, float]:
    """A peer's time over the job's (the first night) and over the delta night's, and the job's peak over its."""
    ratios = {}
    if job and peer:
        ratios[f"{scale} {name} / job time"] = round(peer.seconds / job.seconds, 2)
        ratios[f"{scale} job / {name} peak memory"] = round(job.peak_rss_bytes / peer.peak_rss_bytes, 2)
    if delta and peer:
        ratios[f"{scale} {name} / delta night time"] = round(peer.seconds / delta.seconds, 2)
    return ratios


def targets(scales: dict[str, dict], ratios: dict[str, float]) -> list[Target]:
    """Issue #12's targets, each judged on the scale it names."""
    return [
        _at_most(
            f"first night vs reading the inputs (sf{LARGE})",
            "job <= 3x floor (stretch 2x)",
            ratios.get(f"sf{LARGE} job / floor time"),
            3,
            "x",
        ),
        _at_most(f"peak RSS (sf{LARGE})", "<= 2 GiB", _peak(scales.get(LARGE)), 2, " GiB"),
        _at_least(
            f"first night vs the pandas peer (sf{SMALL})",
            ">= 2x faster",
            ratios.get(f"sf{SMALL} peer / job time"),
            2,
            "x",
        ),
        _at_least(
            f"first night vs the Polars peer (sf{SMALL})",
            "reported (no target)",
            ratios.get(f"sf{SMALL} polars peer / job time"),
            0,
            "x",
        ),
        _at_least(
            f"ordinary night vs both peers' full recomputation (sf{SMALL})",
            "delta night faster than either peer",
            min(
                (
                    ratios[key]
                    for key in (f"sf{SMALL} peer / delta night time", f"sf{SMALL} polars peer / delta night time")
                    if key in ratios
                ),
                default=None,
            ),
            1,
            "x",
        ),
        _at_most(
            f"ordinary night: one day onto a year of history (sf{LARGE})",
            "<= 0.08x a first night, same flags",
            _delta_ratio(scales.get(LARGE), ratios),
            0.08,
            "x",
        ),
        _at_most(f"peak RSS (sf{HUGE})", "<= 2 GiB", _peak(scales.get(HUGE)), 2, " GiB"),
        _at_most(
            f"scaling sf{LARGE} -> sf{HUGE}",
            "<= 5.5x time",
            _failure(scales.get(HUGE), "job") or ratios.get(f"sf{HUGE} / sf{LARGE} job time"),
            5.5,
            "x",
        ),
    ]


def _peak(result: dict | None) -> float | None:
    job = _ok(result, "job")
    return round(job.peak_rss_bytes / GIB, 2) if job else None


def _failure(result: dict | None, name: str) -> str | None:
    """`failed: <error>` when the measurement ran and failed."""
    measured = (result or {}).get(name)
    return f"failed: {measured.error}" if measured is not None and measured.exit_code != 0 else None


def _delta_ratio(result: dict | None, ratios: dict[str, float]):
    failed = _failure(result, "history") or _failure(result, "delta")
    if failed:
        return failed
    if (result or {}).get("delta_differences"):
        return f"flags differ from the full rebuild's ({len(result['delta_differences'])} differences)"
    return ratios.get(f"sf{LARGE} delta night / full rebuild time")


def _at_most(name: str, goal: str, value, limit: float, unit: str) -> Target:
    return _judged(name, goal, value, unit, lambda number: number <= limit)


def _at_least(name: str, goal: str, value, limit: float, unit: str) -> Target:
    return _judged(name, goal, value, unit, lambda number: number >= limit)


def _judged(name: str, goal: str, value, unit: str, passes) -> Target:
    if value is None:
        return Target(name, goal, "not measured", None)
    if isinstance(value, str):  # a failure message
        return Target(name, goal, value, False)
    return Target(name, goal, f"{value}{unit}", passes(value))


def write(document: dict, folder: Path, started: datetime) -> tuple[Path, Path]:
    """benchmarks/results/<UTC timestamp>.json and .md."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = started.strftime("%Y%m%dT%H%M%SZ")
    json_path, markdown_path = folder / f"{stem}.json", folder / f"{stem}.md"
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    markdown_path.write_text(markdown(document))
    return json_path, markdown_path


def markdown(document: dict) -> str:
    """The result document as Markdown tables."""
    machine, settings = document["machine"], document["settings"]
    lines = [
        f"# Benchmark {document['started_at'][:19]}Z",
        "",
        f"{machine['cores']} cores ({machine['cpu']}), {machine['memory_bytes'] / GIB:.1f} GiB RAM; "
        f"Python {machine['python']}, DuckDB {machine['duckdb']}, pandas {machine['pandas']}, "
        f"Polars {machine.get('polars') or 'not installed'}; "
        f"commit {machine['git_commit'][:10]}{' with local changes' if machine['git_tracked_changes'] else ''}. "
        f"Seed {settings['seed']}, {settings['format']} exports, as_of {settings['as_of']}, "
        f"best of {settings['repeat']} run(s) each.",
        "",
        'The job runs with the default settings (DuckDB memory_limit 1 GiB); "unbounded" with DuckDB\'s own '
        'limit (80% of RAM); "delta" is one day\'s records onto the year before it (history run at as_of - 1).',
        "",
        "| scale | input | floor | job | job peak RSS | job unbounded | its peak RSS | delta night | its peak RSS "
        "| delta flags = full rebuild's | pandas peer | peer peak RSS | peer flags = job flags "
        "| Polars peer | its peak RSS | its flags = job flags "
        "| load avg at start (floor/job/unbounded/delta/pandas peer/Polars peer) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_scale_row(scale, result) for scale, result in document["scales"].items()]
    lines += ["", "| ratio | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in document["ratios"].items()]
    lines += ["", "| target (issue #12) | goal | measured | met |", "|---|---|---|---|"]
    lines += [f"| {t['name']} | {t['goal']} | {t['measured']} | {_met(t['met'])} |" for t in document["targets"]]
    lines += ["", *_stage_table(document["scales"])]
    return "\n".join(lines) + "\n"


def _scale_row(scale: str, result: dict) -> str:
    cells = [f"sf{scale}", f"{result['data']['bytes'] / 1e6:,.0f} MB"]
    cells.append(_seconds(result.get("floor")))
    for name in ("job", "job_unbounded", "delta"):
        cells += [_seconds(result.get(name)), _gib(result.get(name))]
    cells.append(_agreement(result.get("delta_differences")))
    for measurement, (_, differences) in PEERS.items():
        cells += [_seconds(result.get(measurement)), _gib(result.get(measurement)), _agreement(result.get(differences))]
    loads = [f"{result[name]['load_average']:.1f}" for name in MEASUREMENTS if result.get(name)]
    cells.append(" / ".join(loads))
    return "| " + " | ".join(cells) + " |"


def _agreement(differences: list[str] | None) -> str:
    return "not run" if differences is None else "yes" if not differences else f"NO ({len(differences)} differences)"


def _seconds(measured: dict | None) -> str:
    if measured is None:
        return "not run"
    return f"{measured['seconds']:.1f} s" if measured["exit_code"] == 0 else f"failed: {measured['error']}"


def _gib(measured: dict | None) -> str:
    if measured is None or measured["exit_code"] != 0:
        return "-"
    return f"{measured['peak_rss_bytes'] / GIB:.2f} GiB"


def _met(met: bool | None) -> str:
    return "not measured" if met is None else "met" if met else "**not met**"


def _stage_table(scales: dict[str, dict]) -> list[str]:
    """The job's seconds and peak RSS per stage (run_results.json), per scale."""
    jobs = {scale: result["job"] for scale, result in scales.items() if result.get("job", {}).get("stage_seconds")}
    if not jobs:
        return []
    stages = list(next(iter(jobs.values()))["stage_seconds"])
    header = "| stage | " + " | ".join(f"sf{scale} s | sf{scale} peak RSS" for scale in jobs) + " |"
    lines = [
        "Where the job's time goes (default settings, from run_results.json):",
        "",
        header,
        "|---|" + "---|---|" * len(jobs),
    ]
    for stage in stages:
        cells = []
        for job in jobs.values():
            peak = job["stage_peak_rss_bytes"].get(stage)
            cells += [f"{job['stage_seconds'].get(stage, 0):.1f}", "-" if peak is None else f"{peak / GIB:.2f} GiB"]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    totals = [cell for job in jobs.values() for cell in (f"{sum(job['stage_seconds'].values()):.1f}", "")]
    walls = [cell for job in jobs.values() for cell in (f"{job['seconds']:.1f}", _gib(job))]
    lines.append("| all stages | " + " | ".join(totals) + " |")
    lines.append("| whole run (wall, incl. start-up and summary) | " + " | ".join(walls) + " |")
    return lines + _step_table(jobs)


def _step_table(jobs: dict[str, dict]) -> list[str]:
    """The SQL steps slowest at the largest scale, with their seconds at every scale."""
    profiled = {scale: job.get("step_seconds") or {} for scale, job in jobs.items()}
    largest = next((steps for steps in reversed(profiled.values()) if steps), None)
    if not largest:
        return []
    lines = [
        "",
        "The slowest SQL steps (runs.step_seconds; the stages' Python-driven statements, such as the "
        "loader's reads and the row checks, are not steps):",
        "",
        "| step | " + " | ".join(f"sf{scale} s" for scale in profiled) + " |",
        "|---|" + "---|" * len(profiled),
    ]
    for name in largest:
        cells = [f"{steps[name]:.2f}" if name in steps else "-" for steps in profiled.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
