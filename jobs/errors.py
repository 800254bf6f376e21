"""Shared wording of failures for the one-line messages the command line prints."""

from __future__ import annotations


def first_line(error: Exception) -> str:
    """The first line of an error's text (DuckDB's messages run on with hints and context)."""
    return str(error).strip().splitlines()[0]


def cannot_write(path, error: OSError) -> str:
    """`cannot write <path>: <the OS's reason>`, for a file the command was to write."""
    return f"cannot write {path}: {error.strerror or first_line(error)}"


class PublishError(Exception):
    """The warehouse could not be read or written; it is left as it was."""
