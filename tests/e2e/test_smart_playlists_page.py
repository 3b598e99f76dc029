"""The smart playlists page in headless Chromium: build a rule with the rows (its text follows, the count is
previewed live), edit the text (the rows follow), save it (stored, listed, and its publication started), and a bad
rule shown where it is wrong."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import OUTPUT_DIR
from tests.integration.test_search_api import seed_library

pytestmark = pytest.mark.browser


def test_build_a_rule_edit_its_text_and_save(start_site, config, db, redis, page):
    seed_library(db, redis, config)
    base = start_site()
    page.goto(base + "/smart_playlists")
    rows = page.locator("#smart-conditions .smart-row")
    expect(rows).to_have_count(1)  # a tempo range to start from
    expect(page.locator("#smart-rule")).to_have_value("bpm 120-130")
    expect(page.locator("#smart-preview")).to_contain_text("3 songs match")
    page.locator("#smart-add").click()
    second = rows.nth(1)
    expect(second.get_by_label("Field")).to_be_focused()
    second.get_by_label("Value").fill("electronic")
    expect(page.locator("#smart-rule")).to_have_value("bpm 120-130 AND tag = electronic")
    page.locator("#smart-add").click()
    third = rows.nth(2)
    third.get_by_label("Field").select_option("artist")
    third.get_by_label("Value").fill("Synth Lab")
    third.get_by_label("NOT").check()
    expect(page.locator("#smart-rule")).to_have_value('bpm 120-130 AND tag = electronic AND NOT artist = "Synth Lab"')
    expect(page.locator("#smart-preview")).to_contain_text("2 songs match")

    page.locator("#smart-rule").fill("energy = high AND key = 8A,8B")  # the text drives the rows
    expect(rows).to_have_count(2)
    expect(rows.nth(1).get_by_label("Value")).to_have_value("8A,8B")
    expect(page.locator("#smart-preview")).to_contain_text("2 songs match")
    page.locator("#smart-name").fill("Peak time")
    page.locator("#smart-save").click()
    expect(page.locator("#smart-message")).to_contain_text("Saved Peak time: publishing Peak time_smart.")
    listed = page.locator('#smart-table tr[data-name="Peak time"]')
    expect(listed).to_contain_text("energy = high AND key = 8A,8B")
    stored = db.fetch_one("SELECT rule, order_by, size_cap FROM smart_playlists")
    assert stored == {"rule": "energy = high AND key = 8A,8B", "order_by": "bpm", "size_cap": 100}
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "smart-playlists-page.png"), full_page=True)


def test_a_bad_rule_is_shown_where_it_is_wrong(start_site, config, db, redis, page):
    seed_library(db, redis, config)
    base = start_site()
    page.goto(base + "/smart_playlists")
    page.locator("#smart-rule").fill("bpm 130-120 AND tag = rock")
    expect(page.locator("#smart-rule-status")).to_contain_text("goes downwards")
    expect(page.locator("#smart-rule")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#smart-preview")).to_have_text("")


def test_saving_while_the_typed_rule_does_not_parse_is_refused(start_site, config, db, redis, page):
    seed_library(db, redis, config)
    base = start_site()
    page.goto(base + "/smart_playlists")
    expect(page.locator("#smart-preview")).to_contain_text("3 songs match")  # the rows' bpm 120-130
    page.locator("#smart-name").fill("Rock")
    page.locator("#smart-rule").fill("tag rock and energy high")
    expect(page.locator("#smart-rule-status")).to_contain_text("tag takes = and a value")
    page.locator("#smart-save").click()
    expect(page.locator("#smart-message")).to_contain_text("Not saved")
    expect(page.locator("#smart-message")).to_contain_text("tag takes = and a value")
    expect(page.locator("#smart-rule-status")).to_contain_text("tag takes = and a value")
    expect(page.locator("#smart-rule")).to_have_value("tag rock and energy high")  # the user's text kept
    page.wait_for_timeout(500)
    assert db.fetch_one("SELECT count(*) AS n FROM smart_playlists")["n"] == 0
    # the same refusal when saved before the text was checked (no pause after typing)
    page.locator("#smart-rule").fill("tag = rock and energy hgh")
    page.locator("#smart-save").click()
    expect(page.locator("#smart-message")).to_contain_text("Not saved")
    page.wait_for_timeout(500)
    assert db.fetch_one("SELECT count(*) AS n FROM smart_playlists")["n"] == 0


def test_what_is_saved_is_the_rule_shown(start_site, config, db, redis, page):
    seed_library(db, redis, config)
    base = start_site()
    page.goto(base + "/smart_playlists")
    expect(page.locator("#smart-preview")).to_contain_text("3 songs match")
    page.locator("#smart-name").fill("Rock")
    page.locator("#smart-rule").fill("tag = rock AND energy = high")
    page.locator("#smart-save").click()  # at once: the rows have not followed the text yet
    expect(page.locator("#smart-message")).to_contain_text("Saved Rock")
    assert db.fetch_one("SELECT rule FROM smart_playlists")["rule"] == "tag = rock AND energy = high"
    # rows changed and saved at once: the text shown follows them and is what is stored
    page.locator("#smart-name").fill("Slow")
    page.locator("#smart-conditions .smart-row").first.get_by_label("To", exact=True).fill("125")
    page.locator("#smart-save").click()
    expect(page.locator("#smart-message")).to_contain_text("Saved Slow")
    stored = db.fetch_one("SELECT rule FROM smart_playlists WHERE name = 'Slow'")["rule"]
    assert stored == "bpm 120-125"
