"""One masking rule (jobs/masking.py): one id, free text, and the SQL twin (issue #10).

The ids are of every shape the SPEC allows (any text): spaces, '#', commas, quotes, non-ASCII
letters, 1 to 3 characters, ids inside other ids, ids that are common words.
"""

from __future__ import annotations

import duckdb
import pytest

from jobs.masking import Masker, create_known_ids, install_macro, mask_id, masker_for

HOSTILE_IDS = ["ENT 0010873", "企业0011342", "A#1", "x,y", 'say "hi"', "O'Brien & Co", "<b>", "E", "E1", "E12",
               "E123", "E1234567890", "paid", "the", "ENT0010231", "100023456781", "fp_abcdef123456", "fp-with-dash",
               "ACME, Inc. #42", "Müller", "tab\there", "  padded  ", "…"]


@pytest.mark.parametrize("identifier, masked", [
    ("ENT0010231", "ENT…31"),
    ("100023456781", "100…81"),
    ("ENT 0010873", "ENT…73"),
    ("企业0011342企业企", "企业0…业企"),
    ("ENT0001", "E…"),      # 7 characters: the same in every output
    ("ABCD", "A…"),
    ("ABC", "…"),
    ("E1", "…"),
    ("E", "…"),
])
def test_one_id_is_masked_by_its_length(identifier, masked):
    assert mask_id(identifier) == masked


def test_the_sql_macro_masks_exactly_as_mask_id():
    with duckdb.connect() as con:
        install_macro(con)
        rows = con.execute("SELECT id, masked_fingerprint(id) FROM unnest(?) AS ids(id)", [HOSTILE_IDS]).fetchall()
        assert con.execute("SELECT masked_fingerprint(NULL)").fetchone() == (None,)
    assert {identifier: masked for identifier, masked in rows} == {identifier: mask_id(identifier)
                                                                   for identifier in HOSTILE_IDS}


@pytest.mark.parametrize("text, masked", [
    ("group G-ENT0010231, card fp_abcdef123456", "group G-ENT…31, card fp_…56"),
    ("XENT0010231 ENT00102310 E12 E1", "XENT0010231 ENT00102310 … …"),     # whole runs of word characters only
    ("E1234567890 E123 E12 E1 E", "E12…90 E… … … …"),                       # longest first
    ('{"entity_id":"ENT 0010873","account":"企业0011342"}', '{"entity_id":"ENT…73","account":"企…"}'),
    ("客户企业0011342退款", "客户企…退款"),                                # no spaces around it in CJK text
    ("card A#1, ref A#12", "card …, ref A#12"),                              # 'A#12' is another id
    ("ACME, Inc. #42 paid", "ACM…42 p…"),
    ("the paid status; unpaid", "… p… status; unpaid"),
    ('he said say "hi"', 'he said s…'),
    ("O'Brien & Co bought", "O'B…Co bought"),
    ("x,y,z", "…,z"),
    ("", ""),
])
def test_text_is_masked_at_every_known_id(text, masked):
    assert Masker(HOSTILE_IDS).text(text) == masked


def test_no_known_id_survives_masking_of_text_holding_all_of_them():
    masker = Masker(HOSTILE_IDS)
    text = " | ".join(HOSTILE_IDS)
    parts = masker.text(text).split(" | ")
    assert parts == [mask_id(identifier) for identifier in HOSTILE_IDS]


def test_a_masker_for_texts_holds_only_the_known_ids_found_in_them():
    with duckdb.connect() as con:
        con.execute("CREATE TABLE purchases AS SELECT unnest(?) AS account_id, 'E-' || account_id AS entity_id, "
                    "NULL::VARCHAR AS payment_fingerprint", [HOSTILE_IDS])
        create_known_ids(con)
        masker = masker_for(con, ["refund of ENT 0010873 by 企业0011342", "E12", "x"], identifiers=True)
        fingerprints_only = masker_for(con, ["ENT 0010873"], identifiers=False)
    assert set(masker.masks) == {"ENT 0010873", "企业0011342", "E12"}
    assert fingerprints_only.masks == {}
