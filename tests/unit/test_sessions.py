"""JWT sessions: key files, RS256 tokens checked against the platform clock, cookie and Bearer."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from starlette.responses import Response

from junction.clock import ScaledClock, VirtualClock
from junction.gateway.sessions import CookiePolicy, KeyPair, TokenSigner, token_from


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    directory = tmp_path_factory.mktemp("keys")
    return KeyPair.load_or_create(directory / "k.pem", directory / "k.pub")


def test_keys_are_generated_once_then_read(tmp_path: Path) -> None:
    private, public = tmp_path / "secrets" / "jwt-key.pem", tmp_path / "secrets" / "jwt-key.pub"
    made = KeyPair.load_or_create(private, public)
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert private.stat().st_mode & 0o777 == 0o600
    assert KeyPair.load_or_create(private, public) == made


def test_generated_keys_are_fresh_pairs_that_sign_and_verify() -> None:
    made = KeyPair.generate()
    assert made != KeyPair.generate()
    assert made.private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    signer = TokenSigner(KeyPair(made.private_pem, made.public_pem))  # as read back from where it was kept
    assert (signer.verify(signer.issue({"sub": "u1"}, now=100), now=101) or {}).get("sub") == "u1"


def test_a_token_carries_its_claims_until_it_expires(keys: KeyPair) -> None:
    clock = VirtualClock()
    signer = TokenSigner(keys, lifetime=timedelta(hours=1))
    token = signer.issue({"id": "u1", "role": "ADMIN"}, clock.timestamp())
    claims = signer.verify(token, clock.timestamp())
    assert claims is not None and claims["id"] == "u1" and claims["exp"] == int(clock.timestamp()) + 3600
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert signer.verify(token, clock.timestamp() + 3599) is not None
    assert signer.verify(token, clock.timestamp() + 3600) is None


def test_time_is_the_platform_clock_not_the_wall(keys: KeyPair) -> None:
    """A time-scaled run issues tokens whose iat is in the wall clock's future; they are valid."""
    clock = ScaledClock(1000.0)
    signer = TokenSigner(keys)
    later = clock.timestamp() + 86_400  # a day ahead of the wall
    assert signer.verify(signer.issue({"id": "u1"}, later), later) is not None
    future = signer.issue({"id": "u1", "nbf": int(later + 60)}, later)
    assert signer.verify(future, later) is None  # not before: also the platform clock


def test_forged_tokens_do_not_verify(keys: KeyPair, tmp_path: Path) -> None:
    now = VirtualClock().timestamp()
    signer = TokenSigner(keys)
    token = signer.issue({"id": "u1", "role": "CUSTOMER"}, now)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    other = TokenSigner(KeyPair.load_or_create(tmp_path / "o.pem", tmp_path / "o.pub"))
    for forged in (
        f"{part({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        f"{header}.{part({**claims, 'role': 'ADMIN'})}.{signature}",
        other.issue({"id": "u1", "role": "CUSTOMER"}, now),
        jwt.encode({"id": "u1", "exp": now + 60}, "s" * 32, algorithm="HS256"),
        "garbage",
        "",
    ):
        assert signer.verify(forged, now) is None, forged
    without_exp = jwt.encode({"id": "u1"}, keys.private_pem, algorithm="RS256")  # rightly signed, never expiring
    assert signer.verify(without_exp, now) is None


@pytest.mark.parametrize(("headers", "cookies", "expected"), [
    ({"authorization": "Bearer abc"}, {"jwt": "cookie"}, "abc"),  # the header wins
    ({"authorization": "bearer  abc "}, {}, "abc"),
    ({"authorization": "Basic abc"}, {"jwt": "cookie"}, "cookie"),
    ({"authorization": "Bearer "}, {"jwt": "cookie"}, "cookie"),
    ({}, {"jwt": ""}, None),
    ({}, {}, None),
])
def test_token_from_prefers_bearer(headers: dict[str, str], cookies: dict[str, str], expected: str | None) -> None:
    assert token_from(headers, cookies) == expected


def test_cookie_policy_writes_and_deletes_the_session_cookie() -> None:
    response = Response()
    CookiePolicy().set(response, "tok")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("jwt=tok;")
    for attribute in ("HttpOnly", "Max-Age=604800", "Path=/", "SameSite=lax"):
        assert attribute in cookie
    assert "Secure" not in cookie
    secure = Response()
    CookiePolicy(secure=True).clear(secure)
    assert "Max-Age=0" in secure.headers["set-cookie"] and "Secure" in secure.headers["set-cookie"]
