"""Spreadsheet-safe CSV cells, shared by `review export`, `query --format csv` and the nightly CSV exports.

A cell whose text starts with `=`, `+`, `-`, `@`, a tab or a carriage return may be taken
for a formula by a spreadsheet (OWASP "CSV injection"); such a cell gets a leading single
quote, and `restore` takes exactly that quote off again when a file comes back.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may take for a formula


def neutralise(text: str) -> str:
    """Prefix a single quote to a cell a spreadsheet would evaluate (OWASP CSV injection)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def restore(text: str) -> str:
    """Undo `neutralise`: drop the quote it added, and only that one."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


def is_text_value(value) -> bool:
    """Whether a cell came from text (which a spreadsheet could take for a formula), not a number or date."""
    return not isinstance(value, (bool, int, float, Decimal, date))
