"""Browser tests: the real ebike system in a subprocess, driven through Debian's Chromium.

One system (fresh data dir, platform time 20 times faster) and one browser serve the whole session;
each test opens its own browser contexts (one per person, each with its own cookie jar) and uses
its own usernames, so tests do not depend on each other's order. The first administrator is
created once, through the sign-up page, by the ``admin`` fixture (only the first one may be).
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright  # noqa: E402

CHROMIUM = os.environ.get("EBIKE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIME_SCALE = 20.0  # a-bike ticks every 50 ms of wall time, a rental minute lasts 3 s
PASSWORD = "password123"
ROOT = Path(__file__).resolve().parents[4]
SCREENSHOTS = ROOT / "var" / "screenshots"
ADMIN_NAME = "admin1"

# the CLI of this environment (``junction run``), whichever way pytest was started
JUNCTION = [sys.executable, "-c", "import sys; from junction.cli import main; sys.argv[0] = 'junction'; main()"]

_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A username no other test uses."""
    return f"{prefix}{next(_names)}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The running system's URL; it is stopped (SIGTERM, then SIGKILL) after the session."""
    data_dir = tmp_path_factory.mktemp("ebike-browser")
    port = _free_port()
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(
        [*JUNCTION, "run", "ebike", "--port", str(port), "--data-dir", str(data_dir / "data"),
         "--time-scale", str(TIME_SCALE)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # waiting for a process to listen: nothing else to wait on
            if process.poll() is not None:
                raise RuntimeError(f"the system exited: {(data_dir / 'server.log').read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the system did not start in 30 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")  # sync Playwright runs its own loop: end it before async tests run
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):  # in CI the browser tests are how the UI is judged: never skip them
            pytest.fail(f"no Chromium at {CHROMIUM}: `make browser` installs Debian's chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (`make browser` adds Debian's chromium)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@dataclass
class Person:
    """One browser context (one cookie jar) and its page, plus API calls with the same session."""

    context: BrowserContext
    page: Page
    base_url: str

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call the GraphQL API with this person's session cookie (for setup, not what is tested)."""
        cookies = {c["name"]: c["value"] for c in self.context.cookies()}
        response = httpx.post(f"{self.base_url}/graphql", json={"query": query, "variables": variables or {}},
                              cookies=cookies, timeout=10)
        body: dict[str, Any] = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def people(browser: Browser, base_url: str) -> Iterator[list[Person]]:
    """Contexts opened by a test (through ``open_person``), closed after it."""
    opened: list[Person] = []
    yield opened
    for person in opened:
        person.context.close()


def open_person(browser: Browser, base_url: str, people: list[Person], storage: Any = None) -> Person:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900},
                                  storage_state=storage)
    context.set_default_timeout(10_000)
    person = Person(context, context.new_page(), base_url)
    people.append(person)
    return person


@pytest.fixture(scope="module")
def admin_state(browser: Browser, base_url: str) -> Any:
    """The first administrator, signed up through the sign-up page; its cookies for later contexts."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    page.goto("/signup")
    form = page.locator('form[data-op="registerAdmin"]')
    form.get_by_label("Username").fill(ADMIN_NAME)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Create the administrator").click()
    page.wait_for_url("**/admin")
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def admin(browser: Browser, base_url: str, people: list[Person], admin_state: Any) -> Person:
    """A browser signed in as the administrator."""
    return open_person(browser, base_url, people, admin_state)


@pytest.fixture
def customer_factory(browser: Browser, base_url: str, people: list[Person]) -> Any:
    """``customer_factory(credit_cents)``: a new customer signed up through the sign-up page."""

    def make(credit: int = 0, admin: Person | None = None) -> Person:
        person = open_person(browser, base_url, people)
        page = person.page
        page.goto("/signup")
        form = page.locator('form[data-op="registerCustomer"]')
        form.get_by_label("Username").fill(unique("rider"))
        form.get_by_label("Password").fill(PASSWORD)
        form.get_by_role("button", name="Sign up").click()
        page.wait_for_url("**/ride")
        if credit:
            assert admin is not None, "credit needs an admin to confirm it"
            payment = person.gql("mutation($a: Int!) { createPayment(amount: $a) { id } }", {"a": credit})
            admin.gql("mutation($id: ID!) { confirmPayment(id: $id) { id } }", {"id": payment["createPayment"]["id"]})
        return person

    return make
