"""Security of the ebike gateway: sessions and tokens, the role matrix, login throttling, CSRF.

The role matrix runs against one system per module (its users are made once: argon2 is slow on
purpose); tests that move the clock or change settings get their own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from ebike.gateway.app import Settings
from ebike.tests.acceptance.harness import PASSWORD, Client, Stack, open_stack, settings_with_keys

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN, CUSTOMER, ANONYMOUS = "admin", "customer", "anonymous"
NOT_AUTHENTICATED = ("Not authenticated", "UNAUTHENTICATED")
NOT_AUTHORIZED = ("Not authorized", "FORBIDDEN")
AUTHENTICATED = ("Authenticated", "FORBIDDEN")
LOGIN = "mutation($u:String!,$p:String!){login(username:$u,password:$p){id}}"

# operation → the callers allowed (spec section 4's matrix, plus section 0's a-bike mutations)
MATRIX: list[tuple[str, set[str]]] = [
    ("{users{id}}", {ADMIN}),
    ("{payments{id}}", {ADMIN}),
    ('mutation{confirmPayment(id:"x"){id}}', {ADMIN}),
    ('mutation{rejectPayment(id:"x"){id}}', {ADMIN}),
    ("{customers{id}}", {ADMIN}),
    ('{customer(id:"x"){id}}', {ADMIN}),
    ('mutation{createStation(input:{name:"s",position:{x:1,y:1}}){id}}', {ADMIN}),
    ('mutation{deleteStation(id:"x"){id}}', {ADMIN}),
    ("{vehicles{id}}", {ADMIN}),
    ("mutation{createVehicle(input:{type:BIKE,position:{x:1,y:1}}){id}}", {ADMIN}),
    ('mutation{deleteVehicle(id:"x"){id}}', {ADMIN}),
    ("mutation{createPayment(amount:100){id}}", {CUSTOMER}),
    ('mutation{deletePayment(id:"x"){id}}', {CUSTOMER}),
    ("{transactions{__typename}}", {CUSTOMER}),
    ("{creditBalance}", {CUSTOMER}),
    ("{position{x}}", {CUSTOMER}),
    ("mutation{updateCustomerPosition(position:{x:1,y:1})}", {CUSTOMER}),
    ("{activeRental{id}}", {CUSTOMER}),
    ("{pastRentals{id}}", {CUSTOMER}),
    ('mutation{startRental(vehicleId:"x"){id}}', {CUSTOMER}),
    ('mutation{stopRental(id:"x"){id}}', {CUSTOMER}),
    ("mutation{requestABike(position:{x:1,y:1}){id}}", {CUSTOMER}),
    ("mutation{cancelABikeRequest}", {CUSTOMER}),
    ("{stations{id}}", {ADMIN, CUSTOMER}),
    ("{availableVehicles{id}}", {ADMIN, CUSTOMER}),
    ("mutation{logout}", {ADMIN, CUSTOMER}),
]
CASES = [(operation, caller) for operation, allowed in MATRIX for caller in (ANONYMOUS, CUSTOMER, ADMIN)
         if caller not in allowed]


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def settings(keys_dir: Path) -> Settings:
    return settings_with_keys(keys_dir)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """One system with an admin and a customer, for checks that change nothing."""
    async with open_stack(tmp_path_factory.mktemp("shared"), settings) as stack:
        admin = await stack.admin()
        customer = await stack.customer("carol")
        yield {"stack": stack, ADMIN: admin, CUSTOMER: customer, ANONYMOUS: stack.client()}


@pytest_asyncio.fixture(loop_scope="module")
async def stack(tmp_path: Path, settings: Settings) -> AsyncIterator[Stack]:
    async with open_stack(tmp_path / "data", settings) as running:
        yield running


# -- the role matrix ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("operation", "caller"), CASES)
async def test_wrong_role_is_refused(shared: dict[str, Any], operation: str, caller: str) -> None:
    expected = NOT_AUTHENTICATED if caller == ANONYMOUS else NOT_AUTHORIZED
    assert await shared[caller].error(operation) == expected


@pytest.mark.parametrize("caller", [ADMIN, CUSTOMER])
@pytest.mark.parametrize("operation", [
    'mutation{registerCustomer(username:"zed",password:"password123"){id}}',
    'mutation{login(username:"carol",password:"password123"){id}}',
])
async def test_signing_up_or_in_again_is_refused(shared: dict[str, Any], operation: str, caller: str) -> None:
    assert await shared[caller].error(operation) == AUTHENTICATED


async def test_only_admins_add_admins_once_one_exists(shared: dict[str, Any]) -> None:
    mutation = 'mutation{registerAdmin(username:"mallory",password:"password123"){id}}'
    for caller in (ANONYMOUS, CUSTOMER):
        assert await shared[caller].error(mutation) == NOT_AUTHORIZED


# -- tokens --------------------------------------------------------------------------------------------
def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a token, unverified (what an attacker can read)."""
    payload: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return payload


def forged(token: str, keys_dir: Path) -> dict[str, str]:
    """Tokens an attacker could make from a real one."""
    claims = claims_of(token)
    header, payload, signature = token.split(".")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unsigned = f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{payload}"
    confusion_head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    public_pem = (keys_dir / "jwt-key.pub").read_bytes()
    confusion_mac = hmac.new(public_pem, f"{confusion_head}.{payload}".encode(), hashlib.sha256).digest()
    tampered = b64(json.dumps({**claims, "role": "ADMIN"}).encode())
    return {
        "alg none": unsigned + ".",
        "another key": jwt.encode(claims, other_key, algorithm="RS256"),
        "tampered payload": f"{header}.{tampered}.{signature}",
        "HS256 keyed with the public key": f"{confusion_head}.{payload}.{b64(confusion_mac)}",
        "garbage": "not.a.token",
    }


async def test_forged_tokens_are_anonymous(shared: dict[str, Any], keys_dir: Path) -> None:
    customer: Client = shared[CUSTOMER]
    assert customer.token
    for name, token in forged(customer.token, keys_dir).items():
        probe = shared["stack"].client()
        bearer = {"Authorization": f"Bearer {token}"}
        assert await probe.gql("{auth{id}}", headers=bearer) == {"data": {"auth": None}}, name
        answer = await probe.gql("{creditBalance}", headers=bearer)
        assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", name
        # as a cookie: anonymous too, and the cookie is deleted
        probe.http.cookies.set("jwt", token, domain="ebike.test")
        response = await probe.http.post("/graphql", json={"query": "{auth{id}}"})
        assert response.json() == {"data": {"auth": None}}, name
        assert 'jwt=""' in response.headers["set-cookie"] and "Max-Age=0" in response.headers["set-cookie"], name


async def test_revoked_token_is_anonymous_at_once(stack: Stack) -> None:
    await stack.customer("alice")
    alice = stack.client()
    await alice.data(LOGIN, u="alice", p=PASSWORD)
    token = alice.token
    other = stack.client()  # another session of the same user stays valid
    await other.data(LOGIN, u="alice", p=PASSWORD)
    assert token and await alice.data("mutation{logout}") is True
    assert alice.token is None
    replay = stack.client()
    assert await replay.gql("{auth{id}}", headers={"Authorization": f"Bearer {token}"}) == {"data": {"auth": None}}
    replay.http.cookies.set("jwt", token, domain="ebike.test")
    assert await replay.data("{auth{id}}") is None and replay.token is None
    assert (await other.data("{auth{username}}"))["username"] == "alice"


async def test_expired_token_is_anonymous(stack: Stack) -> None:
    alice = await stack.customer("alice")
    await stack.advance(7 * 24 * 3600 - 1)
    assert (await alice.data("{auth{username}}"))["username"] == "alice"
    await stack.advance(1)
    assert await alice.data("{auth{id}}") is None
    assert alice.token is None  # the dead cookie was deleted


async def test_bearer_wins_over_the_cookie(stack: Stack) -> None:
    admin = await stack.admin()
    alice = await stack.customer("alice")
    answer = await admin.gql("{auth{username}}", headers={"Authorization": f"Bearer {alice.token}"})
    assert answer == {"data": {"auth": {"username": "alice"}}}


# -- login throttling ----------------------------------------------------------------------------------
async def test_login_attempts_are_limited_per_username(tmp_path: Path, keys_dir: Path) -> None:
    settings = settings_with_keys(keys_dir, logins_per_username=3, username_window=60)
    async with open_stack(tmp_path, settings) as stack:
        await stack.customer("alice")
        for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):  # spread over addresses: still one username
            assert await stack.client(address).error(LOGIN, u="alice", p="wrongpass1") == (
                "invalid username or password", "UNAUTHENTICATED")
        answer = await stack.client("127.0.0.5").gql(LOGIN, u="alice", p=PASSWORD)
        (error,) = answer["errors"]
        assert error["message"] == "too many login attempts, try again later"
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "retryAfter": 20.0}
        await stack.advance(20)  # one attempt back
        assert await stack.client("127.0.0.5").data(LOGIN, u="alice", p=PASSWORD)


async def test_login_attempts_are_limited_per_address(tmp_path: Path, keys_dir: Path) -> None:
    settings = settings_with_keys(keys_dir, logins_per_address=3, address_window=60)
    async with open_stack(tmp_path, settings) as stack:
        await stack.customer("alice")
        attacker = stack.client("127.0.0.9")
        for name in ("bob", "carl", "dora"):
            assert (await attacker.error(LOGIN, u=name, p="password123"))[0] == "invalid username or password"
        assert (await attacker.error(LOGIN, u="alice", p=PASSWORD))[0] == "too many login attempts, try again later"
        assert await stack.client("127.0.0.8").data(LOGIN, u="alice", p=PASSWORD)  # others are not locked out


# -- cross-site requests and cookies -------------------------------------------------------------------
async def test_cross_site_requests_cannot_mutate(stack: Stack) -> None:
    await stack.admin()
    alice = await stack.customer("alice")
    create = "mutation{createPayment(amount:999){id}}"
    attempts = [
        ({"content-type": "application/x-www-form-urlencoded"}, f"query={create}", 415),  # an HTML form
        ({"content-type": "multipart/form-data; boundary=x"}, f"--x\r\nquery={create}\r\n--x--", 415),
        ({"content-type": "text/plain"}, json.dumps({"query": create}), 415),  # a "simple" fetch
        ({"content-type": "application/json", "origin": "https://evil.example"}, json.dumps({"query": create}), 403),
    ]
    for headers, body, status in attempts:
        response = await alice.http.post("/graphql", content=body, headers=headers)
        assert response.status_code == status, headers
    assert (await alice.http.get("/graphql", params={"query": create})).status_code == 405
    assert await alice.data("{transactions{__typename}}") == []
    assert (await alice.data("{auth{username}}"))["username"] == "alice"

    same_site = await alice.http.post("/graphql", json={"query": create}, headers={"origin": "http://ebike.test"})
    assert same_site.status_code == 200 and same_site.json()["data"]["createPayment"]["id"]


async def test_session_cookie_attributes(tmp_path: Path, keys_dir: Path) -> None:
    for secure in (False, True):
        async with open_stack(tmp_path / str(secure), settings_with_keys(keys_dir, secure_cookies=secure)) as stack:
            response = await stack.client().http.post("/graphql", json={
                "query": 'mutation{registerCustomer(username:"alice",password:"password123"){id}}'})
            cookie = response.headers["set-cookie"]
            for attribute in ("jwt=", "HttpOnly", "Max-Age=604800", "Path=/", "SameSite=lax"):
                assert attribute in cookie
            assert ("Secure" in cookie) is secure


async def test_settings_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path, {"SECURE_COOKIES": "true", "JWT_PRIVATE_KEY_PATH": "/k/a.pem"})
    assert settings.secure_cookies and settings.private_key == Path("/k/a.pem")
    assert settings.public_key == tmp_path / "keys" / "jwt-key.pub"
    assert not Settings.from_env(tmp_path, {}).secure_cookies


async def test_keys_are_generated_on_first_start(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path / "data", {})
    async with open_stack(tmp_path / "data", settings) as stack:
        assert not settings.private_key.exists()  # not before a token is needed
        await stack.customer("alice")
        assert settings.private_key.exists() and settings.public_key.exists()
        assert settings.private_key.stat().st_mode & 0o777 == 0o600
