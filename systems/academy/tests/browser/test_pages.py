"""The academy in Chromium: an admin approves a user and schedules a webinar through the pages; two users in
a live room see each other's presence and chat. Screenshots go to var/screenshots/academy-*.png."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from academy.tests.browser.conftest import ADMIN, Api, proof
from junction.testing_browser import screenshot

pytestmark = pytest.mark.browser


def log_in(page: Any, email: str, password: str = "password123") -> None:
    """Through the login form."""
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.locator("#login").click()
    page.wait_for_url("**/me")


def test_an_admin_approves_a_user_and_schedules_a_webinar(browser: Any, base_url: str, tmp_path: Path) -> None:
    ana = browser.new_context(base_url=base_url).new_page()
    ana.goto("/register")
    ana.get_by_label("E-mail").fill("ana@example.org")
    ana.get_by_label("Password (at least 8 characters)").fill("password123")
    ana.get_by_label("Full name").fill("Ana Novak")
    ana.get_by_label("Licence number").fill("SI-1234")
    ana.get_by_label("Proof of qualification (PDF, PNG or JPEG, at most 10 MB)").set_input_files(proof(tmp_path))
    ana.locator("#register").click()
    expect(ana.locator("#notice")).to_contain_text("Registered")
    log_in(ana, "ana@example.org")
    expect(ana.locator("#account-status")).to_have_text("PENDING_VERIFICATION")

    admin = browser.new_context(base_url=base_url).new_page()
    log_in(admin, *ADMIN)
    admin.goto("/admin")
    row = admin.locator('tr.pending-user[data-email="ana@example.org"]')
    expect(row).to_be_visible()
    screenshot(admin, "academy-admin-pending")
    row.locator("button.approve").click()
    expect(admin.locator("#notice")).to_have_text("Approved.")
    expect(row).to_have_count(0)
    admin.locator("#webinar-title").fill("ECG basics")
    admin.locator("#webinar-category").fill("cardiology")
    admin.locator("#webinar-starts").fill((datetime.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"))
    admin.locator("#webinar-duration").fill("45")
    admin.locator("#webinar-points").fill("2")
    admin.locator("#schedule").click()
    expect(admin.locator("#notice")).to_have_text("Webinar scheduled.")
    screenshot(admin, "academy-admin-scheduled")

    ana.goto("/webinars")
    expect(ana.locator("tr.webinar", has_text="ECG basics")).to_be_visible()
    ana.locator("tr.webinar", has_text="ECG basics").get_by_role("button", name="Remind me").click()
    expect(ana.locator("tr.webinar", has_text="ECG basics").get_by_role("button", name="Unsubscribe")).to_be_visible()
    screenshot(ana, "academy-webinars")
    ana.goto("/me")
    expect(ana.locator("#account-status")).to_have_text("APPROVED")
    screenshot(ana, "academy-personal-page")


def test_two_users_in_the_live_room_see_each_other(browser: Any, base_url: str, api: Api) -> None:
    api.approved_user("ben@example.org", "Ben Kos")
    api.approved_user("eva@example.org", "Eva Horvat")
    now = datetime.fromisoformat(httpx.get(f"{base_url}/health").json()["time"])
    created = api.call("POST", "/api/admin/webinars", api.admin, json={
        "title": "Live triage", "category": "emergency", "startsAt": (now + timedelta(minutes=1)).isoformat(),
        "durationMinutes": 600, "points": 1})
    assert created.status_code == 201, created.text
    webinar_id = created.json()["id"]
    deadline = time.monotonic() + 30
    while api.call("GET", f"/api/webinars/{webinar_id}", api.admin).json()["status"] != "LIVE":
        assert time.monotonic() < deadline, "the webinar did not go live"
        time.sleep(0.2)  # a minute of platform time is a second here: waiting for the saga, nothing else to wait on

    ben = browser.new_context(base_url=base_url).new_page()
    eva = browser.new_context(base_url=base_url).new_page()
    log_in(ben, "ben@example.org")
    log_in(eva, "eva@example.org")
    ben.goto(f"/webinars/{webinar_id}")
    eva.goto(f"/webinars/{webinar_id}")
    for page in (ben, eva):
        expect(page.locator("#presence li.viewer")).to_have_text(["Ben Kos", "Eva Horvat"])
        expect(page.locator("#player")).to_be_visible()
    ben.locator("#chat-text").fill("Good morning from Ben")
    ben.locator("#send").click()
    expect(eva.locator("#chat .chat-line")).to_contain_text(["Ben Kos: Good morning from Ben"])
    eva.locator("#chat-text").fill("Hello Ben")
    eva.locator("#send").click()
    expect(ben.locator("#chat .chat-line")).to_contain_text(["Ben Kos: Good morning from Ben", "Eva Horvat: Hello Ben"])
    screenshot(ben, "academy-live-room")
    eva.close()
    expect(ben.locator("#presence li.viewer")).to_have_text(["Ben Kos"])
