"""Browser tests: the real ebike system in a subprocess, driven through Debian's Chromium.

One system (fresh data dir, platform time 20 times faster) and one browser serve the whole session;
each test opens its own browser contexts (one per person, each with its own cookie jar) and uses
its own usernames, so tests do not depend on each other's order. The first administrator is
created once, through the sign-up page, by the ``admin`` fixture (only the first one may be).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, BrowserContext, Page  # noqa: E402

from junction.testing_browser import chromium, screenshot, served  # noqa: E402

TIME_SCALE = 20.0  # a-bike ticks every 50 ms of wall time, a rental minute lasts 3 s
PASSWORD = "password123"
ADMIN_NAME = "admin1"


_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A username no other test uses."""
    return f"{prefix}{next(_names)}"


@pytest.fixture(scope="session")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The running system's URL; it is stopped after the session."""
    with served("ebike", tmp_path_factory.mktemp("ebike-browser"), "--time-scale", str(TIME_SCALE)) as url:
        yield url


@pytest.fixture(scope="module")  # sync Playwright runs its own loop: end it before async tests run
def browser() -> Iterator[Browser]:
    with chromium() as instance:
        yield instance


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
        return screenshot(self.page, name)


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
