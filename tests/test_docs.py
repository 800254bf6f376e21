"""Every `refund-recon` command shown in a ```sh block of README.md and docs/*.md runs (issue #14).

The commands run in document order (README.md, then docs/*.md by name) from one temp folder
holding a sample warehouse built once by the documented run, through bash and the installed
`refund-recon` script (data/sample as of 2026-03-31 into `out/recon.duckdb`): `out/` paths land in
the temp folder, `data/` is the repository's (linked in). A command must exit 0, or the code its
own comment gives as `(exit N)`. A command that is one `refund-recon` call, its output or input
at most redirected to a file (`> file`, `< file`), runs in this process through click's
CliRunner, as the script would run it (a subprocess costs ~2 s of imports each); any other shell
(pipes, `;`, `&&`) runs through bash.

Marker comments, on the lines right above a fence (HTML comments: invisible on the page):

    <!-- docs-test: skip: WHY -->       the block is not run (placeholders, production paths,
                                         minutes of work), with the reason
    <!-- docs-test: setup: SHELL -->    SHELL runs in the temp folder before the block (a file the
                                         commands read)
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.cli import main

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BUILD = (
    "refund-recon run --input data/sample --db out/recon.duckdb --as-of 2026-03-31 "
    "--config data/sample/refund-recon.toml"
)
FENCE = re.compile(r"((?:^<!-- docs-test: .*? -->\n)*)^```sh\n(.*?)^```", re.S | re.M)
MARKER = re.compile(r"<!-- docs-test: (skip|setup): (.*?) -->")
EXIT = re.compile(r"#[^\n]*\(exit (\d+)\)[^\n]*$")


@dataclass(frozen=True)
class Command:
    where: str  # file:line
    text: str  # as shown, continuation lines included
    setup: tuple[str, ...]
    skip: str | None  # why the block is not run
    exit_code: int


def commands_of(name: str, markdown: str) -> list[Command]:
    """The `refund-recon` commands of the ```sh blocks of one Markdown text."""
    found = []
    for block in FENCE.finditer(markdown):
        markers = MARKER.findall(block.group(1))
        setup = tuple(shell for kind, shell in markers if kind == "setup")
        skip = next((why for kind, why in markers if kind == "skip"), None)
        first_line = markdown.count("\n", 0, block.start(2)) + 1
        for offset, text in shell_commands(block.group(2)):
            if text.startswith("refund-recon "):
                found.append(Command(f"{name}:{first_line + offset}", text, setup, skip, expected_exit(text)))
    return found


def shell_commands(block: str) -> list[tuple[int, str]]:
    """(line offset, command) for each command of a block: a quote left open or a trailing
    backslash continues it on the next line; blank and comment-only lines are no commands."""
    commands, pending, start = [], "", 0
    for offset, line in enumerate(block.splitlines()):
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        start = offset if not pending else start
        pending = f"{pending}\n{line}" if pending else line
        if not pending.endswith("\\") and complete(pending):
            commands.append((start, pending))
            pending = ""
    assert not pending, f"an unfinished command: {pending!r}"
    return commands


def complete(command: str) -> bool:
    try:
        shlex.split(command, comments=True)
    except ValueError:  # "No closing quotation"
        return False
    return True


def expected_exit(command: str) -> int:
    """The exit code the command's comment names as `(exit N)`, else 0."""
    found = EXIT.search(command.splitlines()[-1])
    return int(found.group(1)) if found else 0


COMMANDS = [
    command
    for path in DOCS
    for command in commands_of(path.relative_to(REPO).as_posix(), path.read_text(encoding="utf-8"))
]


COLUMNS = "100"  # the width the commands' tables are laid out for
REDIRECTS = {">": "stdout", "<": "stdin"}


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stderr: str


def shell(command: str, folder: Path) -> Outcome:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "COLUMNS": COLUMNS}
    done = subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    return Outcome(done.returncode, done.stderr)


def in_process(command: str) -> tuple[list[str], dict[str, str]] | None:
    """The arguments and redirected files (stdout, stdin) of a lone `refund-recon` call, or None
    when the command needs a shell (a pipe, `;`, `&&`, `>>`...)."""
    lexer = shlex.shlex(command.replace("\\\n", " "), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words, arguments, files = iter(list(lexer)), [], {}
    for word in words:
        if word in REDIRECTS:
            files[REDIRECTS[word]] = next(words)
        elif word and set(word) <= set(lexer.punctuation_chars):
            return None
        else:
            arguments.append(word)
    return arguments[1:], files


def execute(command: str, folder: Path) -> Outcome:
    """Run a documented command in `folder`: in this process when it is a lone call, else through bash."""
    call = in_process(command)
    if call is None:
        return shell(command, folder)
    arguments, files = call
    with contextlib.chdir(folder):
        stdin = Path(files["stdin"]).read_bytes() if "stdin" in files else None
        result = CliRunner(env={"COLUMNS": COLUMNS}).invoke(main, arguments, input=stdin)
        if "stdout" in files:
            Path(files["stdout"]).write_bytes(result.stdout_bytes)
    unexpected = "" if isinstance(result.exception, SystemExit | None) else repr(result.exception)
    return Outcome(result.exit_code, result.stderr + unexpected)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A temp folder with the repository's data/ linked in and the sample night in out/recon.duckdb."""
    folder = tmp_path_factory.mktemp("docs")
    (folder / "data").symlink_to(REPO / "data")
    built = shell(BUILD, folder)
    assert built.returncode == 0, built.stderr
    return folder


@pytest.mark.slow  # ~10 s: the sample run, then about 20 commands run in this process
@pytest.mark.parametrize("command", COMMANDS, ids=[f"{command.where} {command.text[:60]}" for command in COMMANDS])
def test_a_documented_command_runs(folder, command):
    if command.skip:
        pytest.skip(command.skip)
    for setup in command.setup:
        assert shell(setup, folder).returncode == 0, setup
    result = execute(command.text, folder)
    assert result.returncode == command.exit_code, f"{command.where}: {command.text}\n{result.stderr}"


@pytest.mark.parametrize(
    "markdown, expected",
    [
        ("```sh\nrefund-recon review list   # all\n```\n", [("doc.md:2", "refund-recon review list   # all", 0)]),
        (
            '```sh\n# a comment\n\nmake run\nrefund-recon query "SELECT 1\n  FROM t" --format csv\n```\n',
            [("doc.md:5", 'refund-recon query "SELECT 1\n  FROM t" --format csv', 0)],
        ),
        (
            "```sh\nrefund-recon run \\\n  --input x\nrefund-recon lists add bad   # refused (exit 2)\n```\n",
            [
                ("doc.md:2", "refund-recon run \\\n  --input x", 0),
                ("doc.md:4", "refund-recon lists add bad   # refused (exit 2)", 2),
            ],
        ),
        ("```\nrefund-recon not sh\n```\n```console\nrefund-recon neither\n```\n", []),
    ],
)
def test_the_commands_of_a_page_are_its_sh_blocks_refund_recon_lines(markdown, expected):
    assert [(command.where, command.text, command.exit_code) for command in commands_of("doc.md", markdown)] == expected


def test_markers_skip_a_block_or_set_it_up():
    markdown = (
        "<!-- docs-test: skip: production paths -->\n```sh\nrefund-recon run --db ...\n```\n\n"
        "<!-- docs-test: setup: echo 'SELECT 1' > q.sql -->\n```sh\nrefund-recon query - < q.sql\n```\n"
    )
    first, second = commands_of("doc.md", markdown)
    assert (first.skip, first.setup) == ("production paths", ())
    assert (second.skip, second.setup, second.where) == (None, ("echo 'SELECT 1' > q.sql",), "doc.md:8")


def test_the_docs_show_commands_to_run():
    assert len([command for command in COMMANDS if not command.skip]) >= 15


@pytest.mark.parametrize(
    "command, call",
    [
        ("refund-recon review list   # all", (["review", "list"], {})),
        ("refund-recon review list --all > open.csv", (["review", "list", "--all"], {"stdout": "open.csv"})),
        ("refund-recon query - < q.sql   # from stdin", (["query", "-"], {"stdin": "q.sql"})),
        ('refund-recon query "SELECT 1\n  WHERE 2 > 1"', (["query", "SELECT 1\n  WHERE 2 > 1"], {})),
        ("refund-recon run \\\n  --input x", (["run", "--input", "x"], {})),
        ("refund-recon run ... --log-format json | jq -c .", None),
        ("refund-recon review list >> all.txt", None),
        ("refund-recon report && echo done", None),
    ],
)
def test_a_lone_call_runs_in_process_and_any_other_shell_through_bash(command, call):
    assert in_process(command) == call
