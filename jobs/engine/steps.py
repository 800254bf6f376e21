"""Declared SQL steps: every file under `sql/` opens with a header saying what it is.

A header is a TOML block in a comment, the first thing in the file:

    /* @step
    creates = ["refund_facts"]
    reads   = ["purchases", "refunds"]
    params  = ["as_of_end"]
    */

The word after `@` is the step's kind. `step` files create or append to tables themselves;
`rule` and `signal` files are one SELECT each, which the runner collects into one table per
kind (`rule_hits`, `signal_hits`); an `invariant` is one query returning one row. These kinds
also declare what their catalogue needs (a rule's code, category, severity...). Parameters
reach the SQL as `getvariable('name')`; a file may use only those it
declares, and the runner binds every declared one before the step runs (jobs/engine/runner.py).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from jobs.engine.sqlfiles import SQL_DIR

_HEADER = re.compile(r"\A/\* @(?P<kind>[a-z]+)\n(?P<body>.*?)\*/\n", re.DOTALL)
_PARAMETER_USE = re.compile(r"getvariable\('([A-Za-z0-9_]+)'\)")

# What each kind must declare beyond creates/reads/params.
KINDS: dict[str, dict[str, Any]] = {
    "step": {"required": ()},
    "rule": {"required": ("code", "position", "category", "severity", "whole_refund_at_risk", "summary")},
    "signal": {"required": ("code", "position", "origin", "weight", "summary")},
    "invariant": {"required": ("code", "name")},
}
# Engines whose per-engine overrides, `<name>.<engine>.sql`, sit next to a file (not steps of their own).
ENGINE_OVERRIDES = ("spark",)
_COMMON_KEYS = {"creates", "appends", "reads", "params", "settings", "repeat_until", "max_rounds", "template"}


class StepError(Exception):
    """A SQL file's header is missing or wrong; the message names the file."""


@dataclass(frozen=True)
class Step:
    """One SQL file and what its header declares."""

    path: Path
    kind: str
    sql: str  # the file's text after the header
    creates: tuple[str, ...] = ()
    appends: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)  # a signal's own thresholds, with defaults
    repeat_until: str | None = None  # SQL returning true when the repeated step has settled
    max_rounds: int = 1
    template: tuple[str, ...] = ()  # identifiers filled in per use: `{stem}` (never values)
    meta: dict[str, Any] = field(default_factory=dict)  # the catalogue fields of its kind

    @property
    def name(self) -> str:
        """`rules/PAST_WINDOW`: the file's path under sql/, without `.sql` (or `.spark.sql`)."""
        return self.path.relative_to(self.path.parents[1]).with_name(self.path.name.split(".")[0]).as_posix()

    @property
    def code(self) -> str:
        return self.meta["code"]

    def render(self, **identifiers: str) -> Step:
        """A template step with its `{placeholders}` filled in (names and column lists from the
        job's own schemas, never data)."""
        if sorted(identifiers) != sorted(self.template):
            raise StepError(f"{self.path}: fill exactly {', '.join(self.template)}")

        def fill(names: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(name.format(**identifiers) for name in names)

        return replace(
            self,
            sql=self.sql.format(**identifiers),
            creates=fill(self.creates),
            appends=fill(self.appends),
            reads=fill(self.reads),
            template=(),
        )

    @property
    def description(self) -> str:
        """The comment lines after the header (the policy sentence, "Fires when ..."), as one paragraph."""
        lines = []
        for line in self.sql.splitlines():
            if not line.startswith("--"):
                break
            lines.append(line[2:].strip())
        return " ".join(line for line in lines if line)


def parse_step(path: Path) -> Step:
    """Read one SQL file and check its header; raise StepError naming the file."""
    text = path.read_text(encoding="utf-8")
    match = _HEADER.match(text)
    if match is None:
        raise StepError(f"{path}: a SQL file starts with a header, '/* @<kind>' ... '*/' (see jobs/engine/steps.py)")
    kind, sql = match["kind"], text[match.end() :]
    if kind not in KINDS:
        raise StepError(f"{path}: unknown kind @{kind}; one of {', '.join('@' + name for name in KINDS)}")
    try:
        header = tomllib.loads(match["body"])
    except tomllib.TOMLDecodeError as error:
        raise StepError(f"{path}: the header is not valid TOML ({error})") from None
    missing = [key for key in KINDS[kind]["required"] if key not in header]
    if missing:
        raise StepError(f"{path}: a @{kind} header needs {', '.join(missing)}")
    common = {key: header.pop(key) for key in list(header) if key in _COMMON_KEYS}
    for key in ("creates", "appends", "reads", "params", "template"):
        if not isinstance(common.get(key, []), list) or not all(isinstance(name, str) for name in common.get(key, [])):
            raise StepError(f"{path}: {key} is a list of names, got {common[key]!r}")
    step = Step(
        path=path,
        kind=kind,
        sql=sql,
        creates=tuple(common.get("creates", ())),
        appends=tuple(common.get("appends", ())),
        reads=tuple(common.get("reads", ())),
        params=tuple(common.get("params", ())),
        settings=dict(common.get("settings", {})),
        repeat_until=common.get("repeat_until"),
        max_rounds=int(common.get("max_rounds", 1)),
        template=tuple(common.get("template", ())),
        meta=header,
    )
    _check_parameters(step)
    return step


def _check_parameters(step: Step) -> None:
    """The SQL uses exactly the parameters the header declares (a signal's settings included)."""
    used = set(_PARAMETER_USE.findall(step.sql)) | set(_PARAMETER_USE.findall(step.repeat_until or ""))
    declared = set(step.params) | set(step.settings)
    undeclared = sorted(used - declared)
    if undeclared:
        raise StepError(f"{step.path}: uses parameter {', '.join(undeclared)} without declaring it in params")
    unused = sorted(declared - used)
    if unused:
        raise StepError(f"{step.path}: declares parameter {', '.join(unused)} but never uses it")


def step(name: str, sql_dir: Path | None = None) -> Step:
    """The step `sql/<name>.sql`, e.g. `outputs/refund_flags`."""
    folder, _, stem = name.partition("/")
    for found in discover(folder, sql_dir):
        if found.path.stem == stem:
            return found
    raise StepError(f"no SQL step {name} under {sql_dir or SQL_DIR}")


def discover(folder: str, sql_dir: Path | None = None) -> tuple[Step, ...]:
    """Every step of `sql/<folder>/`, in name order (the runner orders them by what they read)."""
    return _discover(sql_dir or SQL_DIR, folder)


def for_engine(step: Step, engine: str) -> Step:
    """`step` as `engine` runs it: its override `<name>.<engine>.sql` next to it, when there is one
    (a construct that does not carry over to that engine). The override declares the same header;
    only a repeated step's `repeat_until` and `max_rounds` may differ (another algorithm)."""
    override = step.path.with_name(f"{step.path.stem}.{engine}.sql")
    if engine not in ENGINE_OVERRIDES or not override.is_file():
        return step
    replacement = parse_step(override)
    if (
        replace(replacement, path=step.path, sql=step.sql, repeat_until=step.repeat_until, max_rounds=step.max_rounds)
        != step
    ):
        raise StepError(f"{override}: an override declares the same header as {step.path.name}")
    return replacement


def _is_override(path: Path) -> bool:
    """`ACCOUNT_SUSPENDED.spark.sql`: another engine's form of a file, not a step of its own."""
    return len(path.suffixes) > 1 and path.suffixes[-2][1:] in ENGINE_OVERRIDES


@cache
def _discover(sql_dir: Path, folder: str) -> tuple[Step, ...]:
    steps = tuple(parse_step(path) for path in sorted((sql_dir / folder).glob("*.sql")) if not _is_override(path))
    codes = [step.code for step in steps if step.kind != "step"]
    duplicated = sorted({code for code in codes if codes.count(code) > 1})
    if duplicated:
        raise StepError(f"{sql_dir / folder}: two files declare the code {', '.join(duplicated)}")
    return steps
