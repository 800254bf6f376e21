"""The one way SQL files run: order declared steps by what they read, bind their parameters,
run them on an engine and time each one.

A step runs after every step of the same batch that creates or appends to a table it reads
(creators before appenders before readers; ties by file name). Before anything runs,
`check_plan` proves that every table a step reads is made by some step or provided by Python,
that there is no cycle, and that every parameter a step declares has a value.
"""

from __future__ import annotations

import graphlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobs.engine.engine import Engine
from jobs.engine.sqlfiles import literal
from jobs.engine.steps import Step, StepError
from jobs.logs import step_progress


@dataclass(frozen=True)
class Collection:
    """How the SELECTs of one kind become rows of one table (created empty first).

    With `phases`, the kind's files run phase by phase (by their `phase_key`), and a file may
    read the table as the earlier phases left it: SPEC 4's reconciliation rules look at what
    the policy rules found.
    """

    table: str
    create: str
    insert: str  # {code}: the file's code as a SQL literal; {sql}: its SELECT
    phase_key: str | None = None
    phases: tuple[str, ...] = ()

    def phase(self, step: Step) -> int:
        return self.phases.index(step.meta[self.phase_key]) if self.phase_key else 0


COLLECTIONS = {
    "rule": Collection(
        "rule_hits",
        "CREATE OR REPLACE TABLE rule_hits (rule_code VARCHAR, refund_id VARCHAR, "
        "amount_at_risk DECIMAL(18,2), evidence VARCHAR)",
        "INSERT INTO rule_hits SELECT {code}, refund_id, amount_at_risk, CAST(to_json(evidence) AS VARCHAR) "
        "FROM ({sql})",
        phase_key="category",
        phases=("policy", "reconciliation"),
    ),
    "signal": Collection(
        "signal_hits",
        "CREATE OR REPLACE TABLE signal_hits (signal_code VARCHAR, entity_id VARCHAR, evidence VARCHAR, "
        "refund_ids VARCHAR[])",
        "INSERT INTO signal_hits SELECT {code}, entity_id, CAST(to_json(evidence) AS VARCHAR), refund_ids FROM ({sql})",
    ),
}


class Runner:
    """Runs steps on one engine with one set of parameters; remembers what has been made."""

    def __init__(self, engine: Engine, params: Mapping[str, Any], provided: Iterable[str] = ()):
        self.engine = engine
        self.params = dict(params)
        self.made: set[str] = set(provided)
        self.step_seconds: dict[str, float] = {}

    def provide(self, *tables: str) -> None:
        """Python made these tables (loading, validation in pandas...): steps may read them."""
        self.made.update(tables)

    def bind(self, **params: Any) -> None:
        """Parameters whose value is known only now (the run's finish time, say)."""
        self.params.update(params)

    def run(self, steps: Sequence[Step]) -> None:
        """Run `steps` in the order their reads demand; collected kinds into their tables."""
        for collection in _collections_to_start(steps, self.made):
            self.engine.execute(collection.create, {})
        ordered = plan(steps, self.made)
        for done, step in enumerate(ordered, start=1):
            self._run(step)
            step_progress(done, len(ordered), step.name)

    def fetch(self, step: Step) -> tuple[list[str], list[tuple]]:
        """Run a query step (an invariant, say) and return its column names and rows."""
        self._check_inputs(step)
        return self.engine.fetch(step.sql, self._bound(step))

    def _run(self, step: Step) -> None:
        self._check_inputs(step)
        started = time.perf_counter()
        params = self._bound(step)
        if step.kind in COLLECTIONS:
            statement = COLLECTIONS[step.kind].insert.format(code=literal(step.code), sql=step.sql)
            self.engine.execute(statement, params)
        else:
            self.engine.execute(step.sql, params)
            if step.repeat_until:
                self._repeat_until_settled(step, params)
        self.made.update((*step.creates, *step.appends, *_collected(step)))
        self.step_seconds[step.name] = self.step_seconds.get(step.name, 0.0) + time.perf_counter() - started

    def _repeat_until_settled(self, step: Step, params: dict[str, Any]) -> None:
        """Run a repeated step again until its `repeat_until` holds: `max_rounds` runs in all at most."""
        for _ in range(step.max_rounds - 1):
            if self.engine.fetch(f"SELECT ({step.repeat_until})", params)[1][0][0]:
                return
            self.engine.execute(step.sql, params)
        raise StepError(f"{step.path}: did not settle in {step.max_rounds} rounds")

    def _check_inputs(self, step: Step) -> None:
        missing = [table for table in step.reads if table not in self.made and table not in _collected(step)]
        if missing:
            raise StepError(f"{step.path}: reads {', '.join(missing)}, which no earlier step made")

    def _bound(self, step: Step) -> dict[str, Any]:
        names = (*step.params, *step.settings)
        missing = [name for name in names if name not in self.params]
        if missing:
            raise StepError(f"{step.path}: parameter {', '.join(missing)} has no value")
        return {name: self.params[name] for name in names}


def plan(steps: Sequence[Step], provided: Iterable[str] = ()) -> list[Step]:
    """`steps` in an order where each runs after what it reads is made; ties by file name.

    Raises StepError naming the file when a step reads a table nothing makes, or on a cycle.
    """
    available = set(provided)
    makers: dict[str, list[Step]] = {}
    for step in steps:
        for table in (*step.creates, *step.appends, *_collected(step)):
            makers.setdefault(table, []).append(step)
    graph: dict[str, set[str]] = {}
    for step in steps:
        needs: set[str] = set()
        for table in step.reads:
            if table not in makers and table not in available:
                raise StepError(f"{step.path}: reads {table}, which no step creates and nothing provides")
            needs.update(other.name for other in makers.get(table, ()) if _feeds(other, step, table))
        for table in step.appends:  # an appender runs after the table's creator
            needs.update(other.name for other in makers[table] if table in other.creates and other is not step)
        graph[step.name] = needs
    by_name = {step.name: step for step in steps}
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        cycle = " -> ".join(str(by_name[name].path) for name in error.args[1])
        raise StepError(f"the steps read each other in a cycle: {cycle}") from None
    ordered: list[Step] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        ordered.extend(by_name[name] for name in ready)
        sorter.done(*ready)
    return ordered


def check_plan(steps: Sequence[Step], provided: Iterable[str], params: Iterable[str]) -> None:
    """At start-up: the whole pipeline's steps can be ordered and every parameter has a value."""
    plan(steps, provided)
    known = set(params)
    for step in steps:
        missing = [name for name in (*step.params, *step.settings) if name not in known]
        if missing:
            raise StepError(f"{step.path}: parameter {', '.join(missing)} is not set by the run")


def _collections_to_start(steps: Sequence[Step], made: set[str]) -> list[Collection]:
    """The collections these steps fill, and those they read that nothing has started yet."""
    return [
        collection
        for kind, collection in COLLECTIONS.items()
        if any(step.kind == kind for step in steps)
        or (collection.table not in made and any(collection.table in step.reads for step in steps))
    ]


def _feeds(maker: Step, reader: Step, table: str) -> bool:
    """Whether `reader` must wait for `maker`, which makes `table`. A collected file that reads
    its own kind's table waits for the files of earlier phases only."""
    if table not in _collected(reader):
        return maker is not reader
    collection = COLLECTIONS[reader.kind]
    if collection.phase(reader) == 0:
        raise StepError(f"{reader.path}: reads {table}, which files of its phase are still filling")
    return collection.phase(maker) < collection.phase(reader)


def _collected(step: Step) -> tuple[str, ...]:
    return (COLLECTIONS[step.kind].table,) if step.kind in COLLECTIONS else ()
