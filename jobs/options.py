"""Options several commands share, declared once (jobs/cli.py and jobs/tools/)."""

from __future__ import annotations

from pathlib import Path

import click

DEFAULT_WAREHOUSE = Path("out/recon.duckdb")


def db_option(meaning: str, default: Path | None = DEFAULT_WAREHOUSE):
    """`--db PATH`: the warehouse, and what the command does with it."""
    return click.option(
        "--db",
        "db_path",
        default=default,
        show_default=default is not None,
        type=click.Path(dir_okay=False, path_type=Path),
        help=meaning,
    )


def config_option(meaning: str = "TOML settings file; every key is optional (see README)."):
    """`--config FILE`: the settings."""
    return click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help=meaning)


WAIT_OPTION = click.option(
    "--wait",
    "wait_seconds",
    default=120.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait while a run publishes the warehouse (or another change is written) before "
    "giving up; nothing is recorded then.",
)
