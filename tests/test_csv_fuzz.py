"""Fuzzing the CSV layer (issue #4): malformed exports never crash the run, every data record
is loaded or quarantined (or set aside as after as_of) at the line on which it starts.

Files are built byte by byte from valid rows (tests/exports.py) and then mutated, and the
expected start line of every data record is computed while writing (header = line 1; a line
ends at each b"\\n", whether the file uses LF or CRLF and whether the newline is inside a
quoted field or not). Every case is run once, through `refund-recon validate` on the command
line (every bad row tolerated); the `jobs.pipeline.run` call it makes is watched (`watched_run`),
so the tables of that very run are checked beside what the command printed.

What each mutation of a data record must give (docs/validation.md, README "Decisions"):

| record kind          | what is written                                          | outcome                  |
|----------------------|----------------------------------------------------------|--------------------------|
| `valid`              | the builder's row                                        | loaded                   |
| `large`              | a 200 kB text field (under DuckDB's 2,000,000-byte line) | loaded                   |
| `ragged_short`       | one or more fields dropped                               | quarantined, `csv_row`   |
| `ragged_long`        | one to three fields added                                | quarantined, `csv_row`   |
| `semicolon`, `tab`   | the row's fields joined with `;` / a tab                 | quarantined, `csv_row`   |
| `invalid_utf8`       | bytes that are not UTF-8 inside one field                | quarantined, `csv_row`   |
| `huge`               | a 3 MB text field (over the reader's line limit)         | quarantined, `csv_row`   |
| `thousands_quoted`   | the number written `"1,000"` (quoted: still one field)   | quarantined, `type`      |
| `thousands_bare`     | the number written `1,000` (unquoted: one field more)    | quarantined, `csv_row`   |
| `header_again`       | the header line repeated as a data row                   | quarantined, `type`      |
| `bad_enum`           | a comma, quote, newline... appended to an enum's value   | quarantined, `isin`      |
| `after_as_of`        | the row's own moment after as_of                         | neither: rows_after_as_of|
| `stray_quote`        | a lone `"` inside an unquoted field (`U3"x`)             | loaded or quarantined    |
| `trailing_empty`     | one or two empty fields added at the end (`...,audio,`)  | quarantined, `csv_row`   |
| `bare_cr`            | a CR inside an unquoted field (not before the line end)   | quarantined, `csv_row`   |

On top of its kind, a record's key (a text column) may carry commas, doubled quotes, LF or
CRLF newlines, tabs, semicolons and non-ASCII text, quoted as RFC 4180 requires; any field may
be quoted without need. None of that changes the outcome. The file may start with a UTF-8
BOM, use LF or CRLF line endings, have blank lines before any record, trailing blank lines,
and no newline after its last record. Blank lines are not rows, but they count as lines.

The file may also mix LF and CRLF line endings (DuckDB's reader takes one for the whole file,
so the loader reads such a file from a copy whose records all end with LF).

Fixed cases: an empty file, a BOM-only file, a file of blank lines, a header with invalid
UTF-8, a repeated header name and a file delimited by `;` or tabs are structural errors (exit 1,
one line naming the file); a header-only file loads zero rows; a quote left open swallows the
rest of the file into one quarantined record; and the minimal reproductions of bugs found here
(mixed line endings, a trailing comma, a header over two lines, fields over the line limit
followed by a `;` row) load as the table says.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from exports import AS_OF, error_lines, purchase, refund, usage, write_exports
from fuzzing import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import core as hypothesis_core
from hypothesis import strategies as st

from jobs import cli as cli_module
from jobs.cli import main
from jobs.pipeline import run
from jobs.stages import loading
from jobs.stages.loading import StructuralError
from jobs.stages.run_result import RunResult
from jobs.stages.schemas import EXPORTS

BOM = b"\xef\xbb\xbf"
LF, CRLF = b"\n", b"\r\n"
HUGE = 3_000_000  # bytes of one field: over DuckDB's max_line_size (2,000,000 bytes)
LARGE = 200_000  # bytes of one field: under it
INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\x80", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82"]
DECORATIONS = [",", '"', '""', "\n", "\r\n", " ", "\t", ";", "é", "x"]
AS_OF_TEXT = AS_OF.isoformat()


@dataclass(frozen=True)
class Fuzzed:
    """How the fuzzed export's records are built, per export."""

    stem: str
    key: str  # a text column, unique per record
    number: str  # a numeric column for thousands separators
    enum: str  # a column with a fixed set of values
    thousands: tuple[str, ...]
    after: dict  # overrides putting the row after as_of

    def row(self, index: int) -> dict:
        builder = usage if self.stem == "usage" else refund
        return {name: str(value) for name, value in builder().items()} | {self.key: f"{self.key[0].upper()}{index}"}


FUZZED = {
    "usage": Fuzzed(
        "usage",
        "usage_id",
        "minutes",
        "media_type",
        ("1,000", "12,345.5", "1,000,000"),
        {"started_at": "2026-04-05 12:00:00"},
    ),
    "refunds": Fuzzed(
        "refunds",
        "refund_id",
        "refund_amount",
        "status",
        ("1,000.00", "12,345.67", "1,000,000.00"),
        {"requested_at": "2026-04-05 12:00:00", "processed_at": "2026-04-06 12:00:00"},
    ),
}

OUTCOMES = {  # kind -> (outcome, the check a quarantined record must have)
    "valid": ("loaded", None),
    "large": ("loaded", None),
    "ragged_short": ("quarantined", "csv_row"),
    "ragged_long": ("quarantined", "csv_row"),
    "semicolon": ("quarantined", "csv_row"),
    "tab": ("quarantined", "csv_row"),
    "invalid_utf8": ("quarantined", "csv_row"),
    "huge": ("quarantined", "csv_row"),
    "thousands_quoted": ("quarantined", "type"),
    "thousands_bare": ("quarantined", "csv_row"),
    "header_again": ("quarantined", "type"),
    "bad_enum": ("quarantined", "isin"),
    "after_as_of": ("after_as_of", None),
    "stray_quote": ("either", None),
    "trailing_empty": ("quarantined", "csv_row"),
    "bare_cr": ("quarantined", "csv_row"),
}
SOUND_KINDS = [kind for kind in OUTCOMES if kind != "stray_quote"]  # stray_quote has its own property


@dataclass
class Record:
    kind: str
    data: bytes  # the record's bytes, without its line ending
    blank_lines_before: int = 0


@dataclass
class CsvCase:
    """A file's bytes and what must come of each of its data records."""

    stem: str
    data: bytes
    expected: dict[int, str] = field(default_factory=dict)  # start line -> record kind
    records: int = 0  # data records in the file

    def lines_with(self, *outcomes: str) -> set[int]:
        return {line for line, kind in self.expected.items() if OUTCOMES[kind][0] in outcomes}


def header(stem: str) -> bytes:
    return ",".join(EXPORTS[stem].columns).encode()


def csv_field(value: bytes, quote: bool = False) -> bytes:
    if quote or any(char in value for char in (b",", b'"', b"\r", b"\n")):
        return b'"' + value.replace(b'"', b'""') + b'"'
    return value


def assemble(
    stem: str,
    records: list[Record],
    *,
    bom: bool = False,
    eol=LF,
    final_eol: bool = True,
    trailing_blank_lines: int = 0,
) -> CsvCase:
    """Write the header and records, noting the line on which each record starts.

    `eol` is one line ending for the file, or a callable giving the next one (mixed endings).
    """
    next_eol = eol if callable(eol) else (lambda: eol)
    case = CsvCase(stem, b"")
    out = bytearray(BOM if bom else b"")
    out += header(stem) + next_eol()
    line = 2
    for position, record in enumerate(records):
        for _ in range(record.blank_lines_before):
            out += next_eol()
            line += 1
        case.expected[line] = record.kind
        out += record.data
        line += record.data.count(b"\n")
        if position < len(records) - 1 or final_eol:
            out += next_eol()
            line += 1
    if final_eol or not records:
        for _ in range(trailing_blank_lines):
            out += next_eol()
    case.data = bytes(out)
    case.records = len(records)
    return case


# --- strategies -------------------------------------------------------------------------------


@st.composite
def records(draw, fuzzed: Fuzzed, index: int, kinds: list[str]) -> Record:
    kind = draw(st.sampled_from(kinds))
    row = fuzzed.row(index)
    columns = list(row)
    decoration = "".join(draw(st.lists(st.sampled_from(DECORATIONS), max_size=3)))
    quote_all = draw(st.integers(0, 3)) == 0
    if kind == "header_again":
        return Record(kind, header(fuzzed.stem), draw(blank_lines()))
    if kind == "after_as_of":
        row |= fuzzed.after
    if kind == "large":
        row[fuzzed.key] += "g" * LARGE
    if kind == "huge":
        row[fuzzed.key] += "h" * HUGE
    if kind == "stray_quote":
        row[fuzzed.key] += '"x'
    if kind == "bad_enum":
        row[fuzzed.enum] += draw(st.sampled_from(DECORATIONS))
    row[fuzzed.key] += decoration if kind != "stray_quote" else ""
    values = {name: value.encode() for name, value in row.items()}
    if kind == "invalid_utf8":
        column = draw(st.sampled_from(columns))
        cut = draw(st.integers(0, len(values[column])))
        values[column] = values[column][:cut] + draw(st.sampled_from(INVALID_UTF8)) + values[column][cut:]
    quoted = {name: kind != "stray_quote" and quote_all for name in columns}
    if kind in ("thousands_quoted", "thousands_bare"):
        values[fuzzed.number] = draw(st.sampled_from(fuzzed.thousands)).encode()
        quoted[fuzzed.number] = kind == "thousands_quoted"
    if kind == "bare_cr":  # a CR before some character of a field other than the key
        cr_column = draw(st.sampled_from([name for name in columns if name != fuzzed.key]))
        cut = draw(st.integers(0, len(values[cr_column]) - 1))
        values[cr_column] = values[cr_column][:cut] + b"\r" + values[cr_column][cut:]
    raw = {
        "thousands_bare": fuzzed.number,
        "stray_quote": fuzzed.key,
        "bare_cr": cr_column if kind == "bare_cr" else None,
    }.get(kind)  # written as is, unquoted
    fields = [values[name] if name == raw else csv_field(values[name], quoted[name]) for name in columns]
    if kind == "ragged_short":
        dropped = draw(st.sets(st.integers(0, len(fields) - 1), min_size=1, max_size=len(fields) - 1))
        fields = [value for position, value in enumerate(fields) if position not in dropped]
    if kind == "ragged_long":  # the last added field is not empty: see `trailing_empty`
        fields += draw(st.lists(st.sampled_from([b"", b"x", b'"q,q"']), max_size=2))
        fields.append(draw(st.sampled_from([b"x", b"extra", b" ", b'"q,q"', b'"\n"'])))
    if kind == "trailing_empty":
        fields += draw(st.lists(st.sampled_from([b"", b'""']), min_size=1, max_size=2))
    delimiter = {"semicolon": b";", "tab": b"\t"}.get(kind, b",")
    return Record(kind, delimiter.join(fields), draw(blank_lines()))


def blank_lines():
    return st.sampled_from([0, 0, 0, 0, 1, 2])


@st.composite
def csv_cases(draw, kinds: list[str] = SOUND_KINDS, mixed_eol: bool = False) -> CsvCase:
    fuzzed = FUZZED[draw(st.sampled_from(sorted(FUZZED)))]
    count = draw(st.integers(1, 7))
    drawn = [draw(records(fuzzed, index, kinds)) for index in range(1, count + 1)]
    final_eol = draw(st.booleans())
    if mixed_eol:  # the header ends with LF, the next line with CRLF, the others either way
        endings = iter([LF, CRLF, *draw(st.lists(st.sampled_from([LF, CRLF]), min_size=64, max_size=64))])
        eol, final_eol = (lambda: next(endings, LF)), True
    else:
        eol = draw(st.sampled_from([LF, CRLF]))
    return assemble(
        fuzzed.stem,
        drawn,
        bom=draw(st.booleans()),
        eol=eol,
        final_eol=final_eol,
        trailing_blank_lines=draw(st.integers(0, 2)),
    )


# --- running a case and checking it -----------------------------------------------------------


def write_case(directory: Path, case: CsvCase) -> Path:
    folder = write_exports(directory / "in", purchases=[purchase()])
    (folder / f"{case.stem}.csv").write_bytes(case.data)
    return folder


@dataclass
class WatchedRun:
    """What the command's one `jobs.pipeline.run` call returned or raised."""

    result: RunResult | None = None
    error: Exception | None = None


def run_cli(directory: Path, folder: Path) -> tuple[Result, WatchedRun]:
    """`refund-recon validate` on `folder`, every bad row tolerated, and the run it made."""
    config = directory / "fuzz.toml"
    config.write_text("[validation]\nmax_bad_row_fraction = 1.0\n", encoding="utf-8")
    watched = WatchedRun()

    def watched_run(*args, **kwargs) -> RunResult:
        try:
            watched.result = run(*args, **kwargs)
        except Exception as error:
            watched.error = error
            raise
        return watched.result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli_module, "run", watched_run)
        cli = CliRunner().invoke(
            main, ["validate", "--input", str(folder), "--as-of", AS_OF_TEXT, "--config", str(config)]
        )
    return cli, watched


def check_loaded_case(case: CsvCase) -> None:
    """The run succeeds; every record is loaded or quarantined as its kind says, at its line."""
    with tempfile.TemporaryDirectory() as directory:
        folder = write_case(Path(directory), case)
        cli, watched = run_cli(Path(directory), folder)
        assert watched.result is not None, (watched.error, cli.output)
        result = watched.result
        counts = result.files[case.stem]
        loaded = [line for (line,) in result.con.execute(f"SELECT _line FROM delivered_{case.stem}").fetchall()]
        checks = {}
        for line, check in result.con.execute(
            'SELECT line, "check" FROM quarantine WHERE source = ?', [case.stem]
        ).fetchall():
            checks.setdefault(line, set()).add(check)

    assert None not in loaded, f"a loaded row has no line: {sorted(loaded, key=str)}"
    assert len(loaded) == len(set(loaded)), f"two loaded rows share a line: {sorted(loaded)}"
    assert not set(loaded) & set(checks), "a row is both loaded and quarantined"
    assert set(loaded) | set(checks) == case.lines_with("loaded", "quarantined", "either"), (
        f"lines loaded {sorted(loaded)} + quarantined {sorted(checks)} != records written {case.expected}"
    )
    assert set(loaded) >= case.lines_with("loaded"), f"loaded {sorted(loaded)}, expected {case.expected}"
    for line in case.lines_with("quarantined"):
        expected_check = OUTCOMES[case.expected[line]][1]
        assert expected_check in checks.get(line, set()), (
            f"line {line} ({case.expected[line]}): checks {checks.get(line)}, expected {expected_check}"
        )

    assert counts.rows_read == case.records, counts
    assert counts.rows_after_as_of == len(case.lines_with("after_as_of")), counts
    assert counts.rows_read == counts.rows_after_as_of + counts.rows_in, counts
    assert counts.rows_in == counts.rows_loaded + counts.rows_quarantined, counts
    assert (counts.rows_loaded, counts.rows_quarantined) == (len(loaded), len(checks)), counts

    assert "Traceback" not in cli.output and cli.exception is None, (cli.exception, cli.output)
    assert cli.exit_code == 0, cli.output
    shown = re.search(rf"^  {case.stem}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", cli.stdout, re.M)
    assert shown, cli.stdout
    assert tuple(map(int, shown.groups())) == (
        counts.rows_in,
        counts.rows_loaded,
        counts.rows_quarantined,
        counts.rows_after_as_of,
    )


def check_structural_error(case: CsvCase, mentions: str) -> None:
    """The run stops with a one-line StructuralError naming the file; the CLI exits 1 with it."""
    file_name = f"{case.stem}.csv"
    with tempfile.TemporaryDirectory() as directory:
        folder = write_case(Path(directory), case)
        cli, watched = run_cli(Path(directory), folder)
    assert isinstance(watched.error, StructuralError), watched.error
    message = str(watched.error)
    assert len(message.splitlines()) == 1 and file_name in message and mentions in message, message
    assert "Traceback" not in cli.output
    assert isinstance(cli.exception, SystemExit), cli.exception  # not an unhandled error
    assert cli.exit_code == 1, cli.output
    lines = error_lines(cli.stderr.strip())
    assert len(lines) == 1 and file_name in lines[0] and lines[0].startswith("refund-recon: "), cli.stderr
    assert cli.stdout == "", cli.stdout


# Derandomized: CI runs the same examples every time, so a red build is never luck. Given
# `pytest --hypothesis-seed=N` (which derandomize would silently override), other examples are
# explored; what such a search finds becomes a fixed case below.
# The 8 examples `make test` tries of the first property hold every record kind of SOUND_KINDS
# but `trailing_empty`, which has a property of its own (the 12 it tried before missed `tab`);
# `make fuzz` tries 4 times as many.
FUZZ = settings(
    max_examples=examples(8),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=hypothesis_core.global_force_seed is None,
)
FUZZ_ONE_TRAIT = settings(FUZZ, max_examples=examples(4))  # a property of one trait: fewer examples keep the suite fast


# --- the fuzz properties ----------------------------------------------------------------------


@pytest.mark.fuzz
@FUZZ
@given(csv_cases())
def test_every_record_of_a_mutated_csv_is_loaded_or_quarantined_at_its_start_line(case):
    check_loaded_case(case)


@pytest.mark.fuzz
@FUZZ_ONE_TRAIT
@given(csv_cases(mixed_eol=True))
def test_mixed_line_endings_are_read_like_uniform_ones(case):
    check_loaded_case(case)


@st.composite
def stray_quote_cases(draw) -> CsvCase:
    """A lone quote in an unquoted field, a later record, and a blank line (which forces the scan)."""
    fuzzed = FUZZED[draw(st.sampled_from(sorted(FUZZED)))]
    before = [draw(records(fuzzed, 100 + index, SOUND_KINDS)) for index in range(draw(st.integers(0, 2)))]
    stray = draw(records(fuzzed, 200, ["stray_quote"]))
    after = [draw(records(fuzzed, 300, ["valid"]))]
    after[0].blank_lines_before = 1
    return assemble(fuzzed.stem, [*before, stray, *after], eol=draw(st.sampled_from([LF, CRLF])))


@pytest.mark.fuzz
@FUZZ
@given(stray_quote_cases())
def test_a_lone_quote_inside_an_unquoted_field_does_not_shift_later_lines(case):
    check_loaded_case(case)


@pytest.mark.fuzz
@FUZZ_ONE_TRAIT
@given(csv_cases(kinds=["trailing_empty"]))
def test_a_row_with_trailing_empty_fields_is_quarantined_like_any_ragged_row(case):
    check_loaded_case(case)


# --- fixed cases ------------------------------------------------------------------------------


def usage_row(index: int, **overrides) -> bytes:
    return ",".join(str(value) for value in (usage() | {"usage_id": f"U{index}"} | overrides).values()).encode()


USAGE_HEADER = header("usage")
STRUCTURAL = {
    "empty file": (b"", "file is empty"),
    "BOM only": (BOM, "not a header row"),
    "BOM and a newline": (BOM + CRLF, "not a header row"),
    "blank lines only": (LF + LF, "not a header row"),
    "duplicated header column": (
        USAGE_HEADER + b",minutes" + LF + usage_row(1) + b",10" + LF,
        "'minutes' appears more than once",
    ),
    "duplicated header column, same row twice": (USAGE_HEADER + b"," + USAGE_HEADER + LF, "appears more than once"),
    "header with invalid UTF-8": (
        USAGE_HEADER.replace(b"minutes", b"min\xffutes") + LF + usage_row(1) + LF,
        "not valid UTF-8",
    ),
    "file delimited by semicolons": (
        USAGE_HEADER.replace(b",", b";") + LF + usage_row(1).replace(b",", b";") + LF,
        "missing required column",
    ),
    "file delimited by tabs": (
        USAGE_HEADER.replace(b",", b"\t") + LF + usage_row(1).replace(b",", b"\t") + LF,
        "missing required column",
    ),
}


@pytest.mark.parametrize("data, mentions", STRUCTURAL.values(), ids=STRUCTURAL.keys())
def test_a_structurally_broken_file_is_one_clear_error_naming_it(data, mentions):
    check_structural_error(CsvCase("usage", data), mentions)


def fixed(data: bytes, expected: dict[int, str], records: int | None = None) -> CsvCase:
    return CsvCase("usage", data, expected, len(expected) if records is None else records)


FIXED = {
    "header only": fixed(USAGE_HEADER, {}),
    "header only, BOM, CRLF and trailing blank lines": fixed(BOM + USAGE_HEADER + CRLF + CRLF + CRLF, {}),
    "BOM, CRLF, blank line after the header": fixed(
        BOM + USAGE_HEADER + CRLF + CRLF + usage_row(1) + CRLF, {3: "valid"}
    ),
    "a quote left open swallows the rest of the file": fixed(
        USAGE_HEADER + LF + usage_row(1) + LF + b'"U2,O1' + LF + usage_row(3) + LF + LF + usage_row(4) + LF,
        {2: "valid", 3: "ragged_short"},
    ),
    "a huge field is quarantined, the rows around it keep their lines": fixed(
        USAGE_HEADER
        + LF
        + usage_row(1)
        + LF
        + b'"U2'
        + b"x\n" * (HUGE // 2)
        + b'",O1,1,2026-03-02 12:00:00,1,audio'
        + LF
        + LF
        + usage_row(3)
        + LF,
        {2: "valid", 3: "huge", 3 + HUGE // 2 + 2: "valid"},
    ),
    "the header repeated as a row": fixed(
        USAGE_HEADER + LF + usage_row(1) + LF + USAGE_HEADER + LF + usage_row(2) + LF,
        {2: "valid", 3: "header_again", 4: "valid"},
    ),
    "1,000 quoted and unquoted": fixed(
        USAGE_HEADER + LF + usage_row(1, minutes='"1,000"') + LF + usage_row(2, minutes="1,000") + LF,
        {2: "thousands_quoted", 3: "thousands_bare"},
    ),
    "a field that is only a newline": fixed(
        USAGE_HEADER + LF + usage_row(1, media_type='"\n"') + LF + usage_row(2) + LF, {2: "bad_enum", 4: "valid"}
    ),
    "lone quote, then a blank line": fixed(
        USAGE_HEADER + LF + usage_row(1, usage_id='U1"x') + LF + LF + usage_row(2) + LF, {2: "stray_quote", 4: "valid"}
    ),
    "lone quote, then a ragged row": fixed(
        USAGE_HEADER + LF + usage_row(1, usage_id='U1"x') + LF + usage_row(2) + b",extra" + LF + usage_row(3) + LF,
        {2: "stray_quote", 3: "ragged_long", 4: "valid"},
    ),
    "LF header, CRLF row": fixed(USAGE_HEADER + LF + usage_row(1) + CRLF, {2: "valid"}),
    "a lone CR at the end of the file": fixed(
        USAGE_HEADER + LF + usage_row(1) + LF + b"\r", {2: "valid", 3: "bare_cr"}
    ),
    "a last row ended by a CR alone": fixed(
        USAGE_HEADER + CRLF + usage_row(1) + CRLF + usage_row(2) + b"\r", {2: "valid", 3: "bare_cr"}
    ),
    "a trailing comma": fixed(
        USAGE_HEADER + LF + usage_row(1) + b"," + LF + usage_row(2) + LF, {2: "trailing_empty", 3: "valid"}
    ),
    "a trailing quoted empty field, CRLF": fixed(
        USAGE_HEADER + CRLF + usage_row(1) + CRLF + usage_row(2) + b',""' + CRLF + usage_row(3) + CRLF,
        {2: "valid", 3: "trailing_empty", 4: "valid"},
    ),
    "no quote: trailing commas, a blank line and a short row": fixed(  # lines from the blank and rejected ones
        USAGE_HEADER
        + LF
        + usage_row(1)
        + b","
        + LF
        + LF
        + usage_row(2)
        + b",,"
        + LF
        + usage_row(3).rsplit(b",", 1)[0]
        + LF
        + usage_row(4)
        + LF,
        {2: "trailing_empty", 4: "trailing_empty", 5: "ragged_short", 6: "valid"},
    ),
    "a CR inside a quoted field": fixed(
        USAGE_HEADER + LF + usage_row(1, usage_id='"U1\rx"') + LF + usage_row(2) + LF, {2: "valid", 3: "valid"}
    ),
    "a header spanning two lines": fixed(  # a quoted column name holding a newline: the header is lines 1-2
        USAGE_HEADER + b',"extra' + LF + b'column"' + LF + usage_row(1) + b",e" + LF, {3: "valid"}
    ),
    # Found by a random search: DuckDB's parallel reader lost its place after the third record
    # over the line limit, swallowing the rows after it into one rejected record.
    "three fields over the line limit, then a row split by ';' and a valid row": fixed(
        USAGE_HEADER
        + LF
        + usage_row(1)
        + LF
        + b"".join(b'"U%d' % index + b"h" * HUGE + b'\n",O1,1,2026-03-02 12:00:00,1,audio' + LF for index in (2, 3, 4))
        + usage_row(5).replace(b",", b";")
        + LF
        + usage_row(6)
        + LF,
        {2: "valid", 3: "huge", 5: "huge", 7: "huge", 9: "semicolon", 10: "valid"},
    ),
}


@pytest.mark.parametrize("name", FIXED)
def test_fixed_csv_cases_are_loaded_or_quarantined_at_their_start_lines(name):
    check_loaded_case(FIXED[name])


@pytest.mark.parametrize("chunk_bytes", [1, 3])
@pytest.mark.parametrize(
    "name",
    ["a trailing comma", "a trailing quoted empty field, CRLF", "LF header, CRLF row", "a CR inside a quoted field"],
)
def test_line_ends_straddling_two_reads_of_the_file_are_seen(name, chunk_bytes, monkeypatch):
    """The file's bytes are read in chunks (16 MiB): here tiny ones, so that some chunk
    boundary falls inside every line end and every empty last field."""
    monkeypatch.setattr(loading, "_CHUNK_BYTES", chunk_bytes)
    check_loaded_case(FIXED[name])
