"""The graph page in Debian's Chromium against a real `junction run social`: it draws the six users of the
generator and follows a friendship added and removed through the API, with no reload."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, expect  # noqa: E402

from junction.testing_browser import JUNCTION, chromium, screenshot, served  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh social system, filled by `junction social generate` (the six-user network)."""
    with served("social", tmp_path_factory.mktemp("social-browser")) as url:
        generated = subprocess.run([*JUNCTION, "social", "generate", "--base", url], capture_output=True, text=True,
                                   timeout=60)
        assert generated.returncode == 0, generated.stdout + generated.stderr
        assert "6 users, 6 friendships" in generated.stdout
        yield url


@pytest.fixture(scope="module")  # sync Playwright runs its own loop: end it before async tests run
def browser() -> Iterator[Browser]:
    with chromium() as instance:
        yield instance


def test_the_page_draws_the_network_and_follows_friendships_live(browser: Browser, base_url: str) -> None:
    mh, kb = 1, 4  # Michael H. and Kenny B. on a fresh system
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto("/")
        expect(page.locator("#status")).to_have_text("live")
        expect(page.locator("g.node")).to_have_count(6)
        expect(page.locator("line.edge")).to_have_count(6)
        expect(page.locator("g.node text")).to_contain_text(
            ["Michael H.", "Michael S.", "Michaela J.", "Kenny B.", "Sonja H.", "Emil E."])

        page.select_option("#who", str(kb))
        expect(page.locator("#friends li")).to_have_count(4)  # MS (who asked), SH, EE, MJ
        expect(page.locator("#recommendations li")).to_have_count(1)
        expect(page.locator("#recommendations li")).to_contain_text("Michael H.")
        expect(page.locator("#recommendations li .weight")).to_have_text("\u00d72")  # "times two"
        page.select_option("#other", str(mh))
        expect(page.locator("#mutual li")).to_have_text(["2 · Michael S.", "6 · Emil E."])
        screenshot(page, "social-graph")

        added = httpx.post(f"{base_url}/friend/v1/users/{kb}/commands/addFriend", params={"friendId": mh})
        assert added.status_code == 201, added.text
        expect(page.locator(f'line.edge[data-pair="{mh}-{kb}"]')).to_have_count(1)
        expect(page.locator("line.edge")).to_have_count(7)
        expect(page.locator("#friends li")).to_have_count(5)
        expect(page.locator("#recommendations li")).to_have_text(["none"])  # everyone is KB's friend now
        screenshot(page, "social-graph-after-friendship")

        removed = httpx.post(f"{base_url}/friend/v1/users/{mh}/commands/removeFriend", params={"friendId": kb})
        assert removed.status_code == 204, removed.text
        expect(page.locator(f'line.edge[data-pair="{mh}-{kb}"]')).to_have_count(0)
        expect(page.locator("#recommendations li")).to_contain_text("Michael H.")

        page.goto("/")  # a new page sees the same graph
        expect(page.locator("g.node")).to_have_count(6)
        expect(page.locator("line.edge")).to_have_count(6)
    finally:
        context.close()


def test_the_page_is_served_at_root_and_graph(base_url: str, tmp_path: Path) -> None:
    for path in ("/", "/graph"):
        answer = httpx.get(f"{base_url}{path}")
        assert answer.status_code == 200 and "social graph" in answer.text
