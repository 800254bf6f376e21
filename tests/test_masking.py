"""One masking rule (jobs/outputs/masking.py): one id, free text, and the SQL twin (issue #10).

The ids are of every shape the SPEC allows (any text): spaces, '#', commas, quotes, non-ASCII
letters, 1 to 3 characters, ids inside other ids, ids that are common words.
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import duckdb
import pytest

import jobs.outputs.report
from jobs.outputs.masking import Masker, create_known_ids, install_macro, mask_id, masker_for

HOSTILE_IDS = [
    "ENT 0010873",
    "企业0011342",
    "A#1",
    "x,y",
    'say "hi"',
    "O'Brien & Co",
    "<b>",
    "E",
    "E1",
    "E12",
    "E123",
    "E1234567890",
    "paid",
    "the",
    "ENT0010231",
    "100023456781",
    "fp_abcdef123456",
    "fp-with-dash",
    "ACME, Inc. #42",
    "Müller",
    "tab\there",
    "  padded  ",
    "…",
]


@pytest.mark.parametrize(
    "identifier, masked",
    [
        ("ENT0010231", "ENT…31"),
        ("100023456781", "100…81"),
        ("ENT 0010873", "ENT…73"),
        ("企业0011342企业企", "企业0…业企"),
        ("ENT0001", "E…"),  # 7 characters: the same in every output
        ("ABCD", "A…"),
        ("ABC", "…"),
        ("E1", "…"),
        ("E", "…"),
    ],
)
def test_one_id_is_masked_by_its_length(identifier, masked):
    assert mask_id(identifier) == masked


def test_the_sql_macro_masks_exactly_as_mask_id():
    with duckdb.connect() as con:
        install_macro(con)
        rows = con.execute("SELECT id, masked_fingerprint(id) FROM unnest(?) AS ids(id)", [HOSTILE_IDS]).fetchall()
        assert con.execute("SELECT masked_fingerprint(NULL)").fetchone() == (None,)
    assert {identifier: masked for identifier, masked in rows} == {
        identifier: mask_id(identifier) for identifier in HOSTILE_IDS
    }


@pytest.mark.parametrize(
    "text, masked",
    [
        ("group G-ENT0010231, card fp_abcdef123456", "group G-ENT…31, card fp_…56"),
        ("XENT0010231 ENT00102310 E12 E1", "XENT0010231 ENT00102310 … …"),  # whole runs of word characters only
        ("E1234567890 E123 E12 E1 E", "……90 …… … … …"),  # longest first; E12 and E hidden inside masks too
        ('{"entity_id":"ENT 0010873","account":"企业0011342"}', '{"entity_id":"ENT…73","account":"企…"}'),
        ("客户企业0011342退款", "客户企…退款"),  # no spaces around it in CJK text
        ("card A#1, ref A#12", "card …, ref A#12"),  # 'A#12' is another id
        ("ACME, Inc. #42 paid", "ACM…42 p…"),
        ("the paid status; unpaid", "… p… status; unpaid"),
        ('he said say "hi"', "he said s…"),
        ("O'Brien & Co bought", "O'B…Co bought"),
        ("x,y,z", "…,z"),
        ("", ""),
    ],
)
def test_text_is_masked_at_every_known_id(text, masked):
    assert Masker(HOSTILE_IDS).text(text) == masked


def test_no_known_id_survives_masking_of_text_holding_all_of_them():
    masker = Masker(HOSTILE_IDS)
    masked = masker.text(" | ".join(HOSTILE_IDS))
    assert masked.split(" | ") == [masker.masks[identifier] for identifier in HOSTILE_IDS]
    assert masker.text(masked) == masked  # nothing left to mask: no id shows in full, not even inside a mask


def test_a_masker_for_texts_holds_only_the_known_ids_found_in_them():
    with duckdb.connect() as con:
        con.execute(
            "CREATE TABLE purchases AS SELECT unnest(?) AS account_id, 'E-' || account_id AS entity_id, "
            "NULL::VARCHAR AS payment_fingerprint",
            [HOSTILE_IDS],
        )
        create_known_ids(con)
        masker = masker_for(con, ["refund of ENT 0010873 by 企业0011342", "E12", "x"], identifiers=True)
        fingerprints_only = masker_for(con, ["ENT 0010873"], identifiers=False)
    assert set(masker.masks) == {"ENT 0010873", "企业0011342", "E12"}
    assert fingerprints_only.masks == {}


# --- end to end: the shared report and the masked CSV exports --------------------------------

ACCOUNTS = ["ACME, Inc. #42", "E", "O'Brien & Co", "企业0011342", "paid", "100023456781"]
ENTITIES = ["ENT 0010873", "E12", 'say "hi"', "企业", "the", "E1234567890"]
FINGERPRINTS = ["fp#1, x", "E1"]


def hostile_night(folder):
    from exports import purchase, refund, write_exports

    orders, refunds = [], []
    for n, (account, entity) in enumerate(zip(ACCOUNTS, ENTITIES, strict=False), start=1):
        fingerprint = FINGERPRINTS[n % 2]
        for k, day in enumerate(("01", "10", "20"), start=1):  # three late refunds each: PAST_WINDOW, SERIAL_REFUNDER
            orders.append(
                purchase(
                    order_id=f"O{n}{k}",
                    account_id=account,
                    entity_id=entity,
                    purchased_at=f"2026-03-{day} 10:00:00",
                    payment_fingerprint=fingerprint,
                )
            )
            refunds.append(
                refund(
                    refund_id=f"R{n}{k}",
                    order_id=f"O{n}{k}",
                    requested_at=f"2026-03-{int(day) + 8:02d} 12:00:00",
                    processed_at=f"2026-03-{int(day) + 9:02d} 12:00:00",
                )
            )
    return write_exports(folder, purchases=orders, refunds=refunds)


def standalone(identifier: str, text: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(identifier)}(?![A-Za-z0-9_])", text) is not None


def test_no_known_id_of_any_shape_appears_in_full_in_the_shared_report_or_the_masked_csv(tmp_path):
    from dataclasses import replace

    from exports import AS_OF

    from jobs.config import Settings
    from jobs.pipeline import run

    db_path = tmp_path / "out" / "recon.duckdb"
    settings = replace(Settings(), mask_csv_exports=True, mask_shared_report=True)
    run(settings, hostile_night(tmp_path / "in"), AS_OF, db_path)
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM refund_flags").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM abuse_cases").fetchone()[0] > 0
    shared = (db_path.parent / f"report-{AS_OF}.shared.html").read_text(encoding="utf-8")
    full = (db_path.parent / f"report-{AS_OF}.html").read_text(encoding="utf-8")
    csv_text = "\n".join(
        path.read_text(encoding="utf-8")
        for path in sorted((db_path.parent / "exports" / "csv" / f"as_of={AS_OF}").iterdir())
    )
    template = (Path(jobs.outputs.report.TEMPLATES) / "report.html.j2").read_text(encoding="utf-8")
    ids = ACCOUNTS + ENTITIES + FINGERPRINTS
    assert [i for i in ids if standalone(escape(i), full)], "the full report shows account and entity ids"
    for identifier in ids:
        assert not standalone(identifier, csv_text), identifier
        if not standalone(identifier, template):  # a common word the page's own wording uses stays
            assert not standalone(identifier, shared) and not standalone(escape(identifier), shared), identifier
    for fingerprint in FINGERPRINTS:
        assert not standalone(escape(fingerprint), full), fingerprint
