"""The Analysis page's bundle section in a real browser: the export link downloads this install's analyses, a file
that is not a bundle is refused with the reason, the downloaded bundle imports, by keyboard too."""

from __future__ import annotations

import gzip
import json

import numpy as np
from playwright.sync_api import expect

from audio.analyze import ANALYSIS_VERSION
from tests.seeded_library import insert_track


def test_the_analysis_is_exported_and_a_bundle_imported_from_the_page(start_site, db, page, tmp_path):
    for i in range(3):
        insert_track(db, item_id=f"t{i}", title=f"Song {i}", artist="Artist", vector=np.full(200, i + 1.0))
    db.execute("""UPDATE tracks SET content_fingerprint = md5(item_id), analysis_version = %s,
                                    tags = '{"rock": 0.5}', moods = '{"happy": 0.5}'""", (ANALYSIS_VERSION,))
    base = start_site()
    page.goto(base + "/analysis")

    with page.expect_download() as download:
        page.click("#export-bundle")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.startswith("audiomuse-analysis-") and saved.name.endswith(".jsonl.gz")
    lines = gzip.decompress(saved.read_bytes()).decode().splitlines()
    assert json.loads(lines[0])["format"] == "audiomuse-analysis-bundle" and len(lines) == 4

    page.click("#import-bundle")  # nothing chosen yet
    expect(page.locator("#import-message")).to_have_text("Choose a bundle file first.")
    junk = tmp_path / "junk.gz"
    junk.write_bytes(b"these are not the tracks you are looking for")
    page.set_input_files("#import-file", str(junk))
    page.click("#import-bundle")
    expect(page.locator("#import-message")).to_contain_text("Could not import junk.gz: not a readable analysis bundle")
    expect(page.locator("#import-message")).to_have_class("error")

    page.set_input_files("#import-file", str(saved))
    page.locator("#import-bundle").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#import-message")).to_have_text(
        "Imported 3 of 3 analyses. The next analysis run gives them to the tracks whose files have the same content.")
    expect(page.locator("#import-refused li")).to_have_count(0)
    assert db.fetch_one("SELECT count(*) AS n FROM imported_analyses")["n"] == 3
