"""The `refund-recon` command. Importing the command line reads every SQL step's header
(jobs/engine/steps.py); a broken one stops any command here, in one line, exit 1."""

from __future__ import annotations

from jobs.engine.steps import StepError


def main() -> None:
    try:
        from jobs.cli import main as command_line
    except StepError as broken:
        raise SystemExit(f"refund-recon: {broken}") from None
    command_line()


if __name__ == "__main__":  # spark-submit runs this file (docs/spark.md)
    main()
