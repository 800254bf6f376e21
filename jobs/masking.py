"""One masking rule for ids, in one place (issue #10): the shared report, the CSV exports and
`review` mask with it; `query` does not mask (it reads the full warehouse).

Which ids: the ids the warehouse knows (`create_known_ids`): payment fingerprints, and account
and entity ids, of every record version and every quarantined value, plus the raw line of a
row that could not be split (it may hold an id nobody could read, so it is masked whole). Not
a pattern of what an id looks like: an id may hold spaces, '#', commas, quotes, any letters.

One id (`mask_id`): its first 3 and last 2 characters when at least 5 more stay hidden (10
characters or more), its first character when 3 more do (4 to 9), nothing of 1 to 3
(`ENT0010231` -> `ENT…31`, `ENT0001` -> `E…`, `A1` -> `…`). `masked_fingerprint()` in
sql/staging/macros.sql is the same rule in SQL (tests/test_masking.py holds them equal).

Text (`Masker.text`): every occurrence of a known id is replaced by its mask, longest id first,
but not inside a longer run of ASCII letters, digits and '_' (`A1` is not masked in `A12`, nor
`ENT1` in `XENT1`; `G-ENT1` and `企业ENT1` are). One compiled regex, a trie of the ids, finds
them all in one pass; it holds only the ids that occur in the texts at hand (`masker_for`).
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Iterable

import duckdb
import pyarrow

from .sqlfiles import read_sql

ELLIPSIS = "…"
# (shortest length, first characters shown, last characters shown), longest first.
_SHOWN = ((10, 3, 2), (4, 1, 0))
WORD_CHARACTERS = "A-Za-z0-9_"
_WORD_ID = f"[{WORD_CHARACTERS}]+"


def mask_id(identifier: str) -> str:
    """One id as a shared page or file may show it."""
    for shortest, first, last in _SHOWN:
        if len(identifier) >= shortest:
            return identifier[:first] + ELLIPSIS + (identifier[-last:] if last else "")
    return ELLIPSIS


class Masker:
    """Masks every occurrence of the given ids in a text."""

    def __init__(self, ids: Iterable[str] = ()):
        self.masks = {identifier: mask_id(identifier) for identifier in ids if identifier}

    @cached_property
    def pattern(self) -> re.Pattern | None:
        return _trie_pattern(self.masks)

    def text(self, text: str) -> str:
        """`text` with each known id replaced by its mask."""
        if self.pattern is None or not text:
            return text
        return self.pattern.sub(lambda match: self.masks[match.group(0)], text)


def _trie_pattern(ids: Iterable[str]) -> re.Pattern | None:
    """One regex matching any of `ids`, longest first, not inside a longer run of word characters."""
    trie: dict = {}
    for identifier in ids:
        node = trie
        for char in identifier:
            node = node.setdefault(char, {})
        node[""] = {}
    if not trie:
        return None

    def render(node: dict) -> str:
        branches = [re.escape(char) + render(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    word = f"[{WORD_CHARACTERS}]"
    # At each end: no word character beyond it, or the id's own end is not a word character.
    return re.compile(f"(?:(?<!{word})|(?!{word})){render(trie)}(?:(?!{word})|(?<!{word}))")


# --- the ids the warehouse knows --------------------------------------------------------------

# (kind, relations in order of preference, SQL giving the ids of the first present as `id`).
_SOURCES = (
    ("fingerprint", ("purchases_versions", "purchases"), "SELECT payment_fingerprint FROM {}"),
    ("fingerprint", ("validation_errors_history", "validation_errors"),
     "SELECT value FROM {} WHERE \"column\" = 'payment_fingerprint' OR (\"check\" = 'csv_row' AND source = 'purchases')"),
    ("identifier", ("purchases_versions", "purchases"), "SELECT account_id FROM {} UNION ALL SELECT entity_id FROM {}"),
    ("identifier", ("account_status_versions", "account_status"), "SELECT account_id FROM {}"),
    ("identifier", ("refund_verdicts_history", "refund_verdicts"),
     "SELECT account_id FROM {} UNION ALL SELECT entity_id FROM {}"),
    ("identifier", ("entity_groups",), "SELECT entity_id FROM {}"),
    ("identifier", ("validation_errors_history", "validation_errors"),
     "SELECT value FROM {} WHERE \"column\" IN ('account_id', 'entity_id') "
     "OR (\"check\" = 'csv_row' AND source = 'account_status')"),
)
KNOWN_IDS = "known_ids"


def install_macro(con: duckdb.DuckDBPyConnection) -> None:
    """`masked_fingerprint(id)`, the SQL form of `mask_id`, on this connection."""
    con.execute(read_sql("staging/macros.sql"))


def create_known_ids(con: duckdb.DuckDBPyConnection) -> None:
    """TEMP TABLE known_ids(id, kind, is_word, masked): every id the warehouse holds, once per kind."""
    install_macro(con)
    present = {name for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
        "UNION SELECT view_name FROM duckdb_views() WHERE schema_name = 'main'").fetchall()}
    selects = []
    for kind, relations, sql in _SOURCES:
        relation = next((name for name in relations if name in present), None)
        if relation is not None:
            selects.append(f"SELECT '{kind}' AS kind, id FROM ({sql.format(relation, relation)}) AS ids(id)")
    union = " UNION ALL ".join(selects) or "SELECT NULL::VARCHAR AS kind, NULL::VARCHAR AS id"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {KNOWN_IDS} AS
        SELECT DISTINCT kind, id, regexp_full_match(id, '{_WORD_ID}') AS is_word, masked_fingerprint(id) AS masked
        FROM ({union}) WHERE id IS NOT NULL AND id <> ''""")


def kinds(identifiers: bool) -> list[str]:
    """The kinds of id masked: fingerprints always, account and entity ids when `identifiers`."""
    return ["fingerprint", "identifier"] if identifiers else ["fingerprint"]


def masker_for(con: duckdb.DuckDBPyConnection, texts: Iterable[str], identifiers: bool) -> Masker:
    """A Masker of the known ids (table known_ids) that occur in `texts`.

    Word ids are found as whole runs of word characters (a hash join); the others, rare, by
    substring search. The regex then holds only those ids, however many the night has.
    """
    con.register("masking_texts", pyarrow.table({"text": pyarrow.array(list(texts), pyarrow.string())}))
    try:
        rows = con.execute(f"""
            WITH known AS (SELECT id, is_word FROM {KNOWN_IDS} WHERE list_contains(?, kind)),
                 words AS (SELECT DISTINCT unnest(regexp_extract_all(text, '{_WORD_ID}')) AS id FROM masking_texts)
            SELECT id FROM known WHERE is_word AND id IN (SELECT id FROM words)
            UNION
            SELECT known.id FROM known JOIN masking_texts ON contains(masking_texts.text, known.id)
            WHERE NOT known.is_word""", [kinds(identifiers)]).fetchall()
    finally:
        con.unregister("masking_texts")
    return Masker(identifier for (identifier,) in rows)
