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
from collections.abc import Callable, Iterable
from functools import cached_property

import duckdb
import pyarrow

from jobs.engine.engine import DuckDBEngine
from jobs.engine.runner import Runner
from jobs.engine.steps import step

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

    def __init__(self, ids: Iterable[str] = (), masks: dict[str, str] | None = None):
        """Masks of `ids` by `mask_id`, settled; or the given (settled) `masks`."""
        if masks is None:
            self.masks = {identifier: mask_id(identifier) for identifier in ids if identifier}
            self.masks = {identifier: self.settled(mask) for identifier, mask in self.masks.items()}
        else:
            self.masks = masks

    @cached_property
    def pattern(self) -> re.Pattern | None:
        return _trie_pattern(self.masks)

    def escaped(self, escape: Callable[[str], str]) -> Masker:
        """The same masks for text in which each id is written escaped (HTML: `O&#39;Brien`)."""
        other = Masker()
        other.masks = {escape(identifier): escape(mask) for identifier, mask in self.masks.items()}
        return other

    def text(self, text: str) -> str:
        """`text` with each known id replaced by its mask."""
        if self.pattern is None or not text:
            return text
        return self.pattern.sub(lambda match: self.masks[match.group(0)], text)

    def settled(self, mask: str) -> str:
        """A mask in which no id shows in full: the 3 characters `E1234567890` keeps may be the id `E12`."""
        for _ in range(len(mask)):  # each pass hides at least one more character
            masked = self.text(mask)
            if masked == mask:
                break
            mask = masked
        return mask


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
    (
        "fingerprint",
        ("validation_errors_history", "validation_errors"),
        "SELECT value FROM {} WHERE \"column\" = 'payment_fingerprint' "
        "OR (\"check\" = 'csv_row' AND source = 'purchases')",
    ),
    ("identifier", ("purchases_versions", "purchases"), "SELECT account_id FROM {} UNION ALL SELECT entity_id FROM {}"),
    ("identifier", ("account_status_versions", "account_status"), "SELECT account_id FROM {}"),
    (
        "identifier",
        ("refund_verdicts_history", "refund_verdicts"),
        "SELECT account_id FROM {} UNION ALL SELECT entity_id FROM {}",
    ),
    ("identifier", ("entity_groups",), "SELECT entity_id FROM {}"),
    (
        "identifier",
        ("validation_errors_history", "validation_errors"),
        "SELECT value FROM {} WHERE \"column\" IN ('account_id', 'entity_id') "
        "OR (\"check\" = 'csv_row' AND source = 'account_status')",
    ),
)
KNOWN_IDS = "known_ids"


def install_macro(con: duckdb.DuckDBPyConnection) -> None:
    """`masked_fingerprint(id)`, the SQL form of `mask_id`, on this connection."""
    Runner(DuckDBEngine(con), {}).run((step("staging/masking"),))


def create_known_ids(con: duckdb.DuckDBPyConnection) -> None:
    """TEMP TABLE known_ids(id, kind, is_word, masked): every id the warehouse holds, once per kind."""
    install_macro(con)
    present = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
            "UNION SELECT view_name FROM duckdb_views() WHERE schema_name = 'main'"
        ).fetchall()
    }
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
    _settle_known_ids(con)


def _settle_known_ids(con: duckdb.DuckDBPyConnection) -> None:
    """Masks that show a known id in full (`E12…90` when `E12` is an id) masked again (`……90`)."""
    masks = [mask for (mask,) in con.execute(f"SELECT DISTINCT masked FROM {KNOWN_IDS}").fetchall()]
    masker = masker_for(con, masks, identifiers=True)
    if not masker.masks:
        return
    settled = {mask: masker.settled(mask) for mask in masks}
    settled = {mask: value for mask, value in settled.items() if value != mask}
    con.register(
        "settled_masks",
        pyarrow.table(
            {
                "masked": pyarrow.array(list(settled), pyarrow.string()),
                "settled": pyarrow.array(list(settled.values()), pyarrow.string()),
            }
        ),
    )
    con.execute(
        f"UPDATE {KNOWN_IDS} SET masked = settled_masks.settled FROM settled_masks "
        f"WHERE {KNOWN_IDS}.masked = settled_masks.masked"
    )
    con.unregister("settled_masks")


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
        rows = con.execute(
            f"""
            WITH known AS (SELECT DISTINCT id, is_word, masked FROM {KNOWN_IDS} WHERE list_contains(?, kind)),
                 words AS (SELECT DISTINCT unnest(regexp_extract_all(text, '{_WORD_ID}')) AS id FROM masking_texts)
            SELECT id, masked FROM known WHERE is_word AND id IN (SELECT id FROM words)
            UNION
            SELECT known.id, known.masked FROM known JOIN masking_texts ON contains(masking_texts.text, known.id)
            WHERE NOT known.is_word""",
            [kinds(identifiers)],
        ).fetchall()
    finally:
        con.unregister("masking_texts")
    return Masker(masks=dict(rows))
