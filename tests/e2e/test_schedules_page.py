"""The Schedules page in headless Chromium: add a schedule from the keyboard (the expression's meaning and next
runs shown as it is typed), see it listed with its next run, disable it, run it now (the task appears with a link),
edit and delete it; a bad expression is refused with the field marked and nothing saved."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import OUTPUT_DIR

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, timezone_id="Europe/Rome")
    yield context.new_page()
    context.close()


def test_add_run_disable_edit_and_delete_a_schedule(start_site, db, page):
    base = start_site()
    page.goto(base + "/cron")
    expect(page.locator("#cron-empty")).to_be_visible()
    page.locator("#cron-name").fill("Weekly cleaning preview")
    page.locator("#cron-task").select_option("cleaning")
    expect(page.locator("#cron-params-hint")).to_contain_text("dry_run")
    page.locator("#cron-expr").fill("30 4 * * SUN")
    expect(page.locator("#cron-preview")).to_contain_text("At 04:30, only on Sunday. Next:")
    page.locator("#cron-timezone").fill("Europe/Rome")
    page.locator("#cron-params").fill('{"dry_run": true}')
    page.locator("#cron-save").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#cron-message")).to_have_text("Saved Weekly cleaning preview.")
    row = page.locator('#cron-table tr[data-name="Weekly cleaning preview"]')
    expect(row).to_contain_text("Database cleaning")
    expect(row).to_contain_text("At 04:30, only on Sunday (Europe/Rome)")
    expect(row.locator(".next-run")).to_contain_text("Sun")
    stored = db.fetch_one("SELECT cron_expr, timezone, params, enabled FROM schedules")
    assert stored == {"cron_expr": "30 4 * * SUN", "timezone": "Europe/Rome", "params": {"dry_run": True},
                      "enabled": True}

    row.get_by_role("button", name="Run now").click()
    expect(page.locator("#cron-message")).to_contain_text("Weekly cleaning preview: started cleaning")
    expect(row.locator(".outcome-started")).to_be_visible()
    expect(row.locator("a.task-link")).to_have_attribute("href", re.compile(r"^/api/status/[0-9a-f-]{36}$"))

    row.get_by_role("checkbox").press("Space")  # disable from the keyboard
    expect(page.locator("#cron-message")).to_have_text("Weekly cleaning preview disabled.")
    expect(row.locator(".next-run")).to_have_text("disabled")
    assert db.fetch_one("SELECT enabled FROM schedules")["enabled"] is False

    row.get_by_role("button", name="Edit").click()
    expect(page.locator("#cron-form-title")).to_have_text("Edit “Weekly cleaning preview”")
    page.locator("button[data-expr='0 2 * * 1-5']").click()
    page.locator("#cron-save").click()
    expect(row).to_contain_text("At 02:00, Monday through Friday")
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "cron-page.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(page.locator("#cron-message")).to_have_text("Deleted Weekly cleaning preview.")
    expect(page.locator("#cron-empty")).to_be_visible()


def test_a_bad_expression_is_refused_with_the_field_marked(start_site, db, page):
    base = start_site()
    page.goto(base + "/cron")
    page.locator("#cron-name").fill("Broken")
    page.locator("#cron-expr").fill("0 25 * * *")
    expect(page.locator("#cron-preview")).to_contain_text("not a valid cron expression")
    expect(page.locator("#cron-preview")).to_have_class("muted error")
    page.locator("#cron-save").click()
    expect(page.locator("#cron-message")).to_contain_text("Not saved:")
    expect(page.locator("#cron-expr")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#cron-expr")).to_be_focused()
    assert db.fetch_all("SELECT name FROM schedules") == []
