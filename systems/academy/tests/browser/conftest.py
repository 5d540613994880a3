"""Browser tests: the real academy (`junction run academy`) in a subprocess, driven through Debian's Chromium.

One system (fresh data dir, platform time 60 times faster, its mail sink on free ports) and one browser per
module; the first admin comes from `junction academy create-admin`, as the docs say. Setup that is not
under test (users, approvals) goes through the JSON API.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("playwright.sync_api")
from junction.testing_browser import JUNCTION, chromium, free_port, served

ADMIN = ("admin@example.org", "admin-password")
TIME_SCALE = 60.0  # a platform minute lasts a wall second


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The running system's URL."""
    data_dir = tmp_path_factory.mktemp("academy-browser")
    subprocess.run([*JUNCTION, "academy", "create-admin", ADMIN[0], "--password", ADMIN[1], "--data-dir",
                    str(data_dir / "data")], check=True, capture_output=True)
    # its mail sink on free ports: other sinks (other test sessions, a developer's) may hold 1025 and 8025
    mail_ports = {"JUNCTION_SMTP_PORT": str(free_port()), "JUNCTION_MAIL_SINK_PORT": str(free_port())}
    with served("academy", data_dir, "--time-scale", str(TIME_SCALE), env=mail_ports) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (skips where there is none, except in CI)."""
    with chromium() as instance:
        yield instance


class Api:
    """The JSON API for setup."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.admin = self.login(*ADMIN)

    def login(self, email: str, password: str = "password123") -> str:
        """A token."""
        answer = httpx.post(f"{self.base_url}/api/auth/login", json={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["token"]
        return token

    def call(self, method: str, path: str, token: str, **options: Any) -> httpx.Response:
        """One request as ``token``."""
        return httpx.request(method, f"{self.base_url}{path}", headers={"Authorization": f"Bearer {token}"},
                             timeout=10, **options)

    def approved_user(self, email: str, name: str) -> None:
        """Register and approve a user."""
        fields = {"email": email, "password": "password123", "fullName": name, "licenceNumber": "L-" + name}
        answer = httpx.post(f"{self.base_url}/api/auth/register", data=fields,
                            files={"document": ("proof.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")})
        assert answer.status_code == 201, answer.text
        assert self.call("POST", f"/api/admin/users/{answer.json()['id']}/approve", self.admin).status_code == 200


@pytest.fixture(scope="module")
def api(base_url: str) -> Api:
    """Setup through the JSON API, as the admin."""
    return Api(base_url)


def proof(tmp_path: Path) -> Path:
    """A small PDF on disk, for the file input."""
    path = tmp_path / "proof.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n")
    return path
