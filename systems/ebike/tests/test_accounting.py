"""accounting: payments, expenses, holds and the O(1) credit balance, through the HTTP contract."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from ebike.tests.conftest import Ebike
from junction.sqlite import SqliteStore


# -- helpers shared with test_rentals --------------------------------------------------------------
async def pay(ebike: Ebike, customer: str, amount: int, status: str | None = "CONFIRMED") -> dict[str, Any]:
    """A payment of ``customer``, decided by an admin unless ``status`` is None."""
    payment = await ebike.call("accounting", "PUT", "/payments", {"customerId": customer, "amount": amount})
    if status is not None:
        payment = await ebike.call("accounting", "PATCH", f"/payments/{payment['id']}", {"status": status})
    return payment


async def balance(ebike: Ebike, customer: str) -> int:
    """The customer's credit balance as accounting answers it."""
    answer = await ebike.call("accounting", "GET", f"/customers/{customer}/credit-balance")
    assert answer["customerId"] == customer
    return int(answer["creditBalance"])


async def expense_amounts(ebike: Ebike, customer: str, rental: str | None = None) -> list[int]:
    """The amounts of the customer's expenses (of one rental when given), oldest first."""
    listed = await ebike.call("accounting", "GET", f"/customers/{customer}/expenses")
    return [e["amount"] for e in listed if rental is None or e["rentalId"] == rental]


async def hold(ebike: Ebike, customer: str, amount: int, expect: int = 200) -> dict[str, Any]:
    """Ask for a preliminary expense (a hold on credit)."""
    return await ebike.call("accounting", "PUT", "/preliminary-expenses",
                            {"inquiryId": "q1", "customerId": customer, "amount": amount}, expect=expect)


def suspend_around(monkeypatch: pytest.MonkeyPatch, target: object, *methods: str) -> None:
    """Make ``target.<method>`` yield to the event loop before and after, as a network or database hop would.

    In the embedded runtime neither in-process HTTP nor SQLite reads suspend, so concurrent
    requests would run one after the other and a race could never show; this lets them interleave
    between reading state and committing, which is the window atomicity has to close.
    """
    for name in methods:
        original: Callable[..., Awaitable[Any]] = getattr(target, name)

        async def suspended(*args: Any, _original: Callable[..., Awaitable[Any]] = original, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            result = await _original(*args, **kwargs)
            await asyncio.sleep(0)  # what was read may be stale by the time the caller uses it
            return result

        monkeypatch.setattr(target, name, suspended)


def slow_store(monkeypatch: pytest.MonkeyPatch, ebike: Ebike, service: str) -> None:
    """Reads of ``service``'s store suspend, as they do on a database server."""
    suspend_around(monkeypatch, ebike.runtime.service(service).store, "fetch_all", "read_stream")


# -- payments --------------------------------------------------------------------------------------
async def test_only_confirmed_payments_count_and_confirming_is_final(ebike: Ebike) -> None:
    pending = await pay(ebike, "c1", 1000, status=None)
    assert pending["status"] == "PENDING" and pending["amount"] == 1000 and pending["customerId"] == "c1"
    assert set(pending) == {"id", "customerId", "amount", "status", "createdAt", "updatedAt"}
    assert await balance(ebike, "c1") == 0

    confirmed = await ebike.call("accounting", "PATCH", f"/payments/{pending['id']}", {"status": "CONFIRMED"})
    assert confirmed["status"] == "CONFIRMED"
    assert await balance(ebike, "c1") == 1000
    again = await ebike.call("accounting", "PATCH", f"/payments/{pending['id']}", {"status": "CONFIRMED"},
                             expect=409)
    assert again == {"error": "payment already confirmed"}
    await ebike.call("accounting", "PATCH", f"/payments/{pending['id']}", {"status": "REJECTED"}, expect=409)
    assert await balance(ebike, "c1") == 1000

    rejected = await pay(ebike, "c1", 500, status="REJECTED")
    assert rejected["status"] == "REJECTED"
    assert await balance(ebike, "c1") == 1000
    # REJECTED is not final: confirming later counts it, once
    await ebike.call("accounting", "PATCH", f"/payments/{rejected['id']}", {"status": "CONFIRMED"})
    assert await balance(ebike, "c1") == 1500


async def test_concurrent_confirms_count_once(ebike: Ebike, monkeypatch: pytest.MonkeyPatch) -> None:
    payment = await pay(ebike, "c1", 300, status=None)
    slow_store(monkeypatch, ebike, "accounting")
    answers = await asyncio.gather(*[
        ebike.runtime.client("accounting").patch(f"/payments/{payment['id']}", json={"status": "CONFIRMED"})
        for _ in range(10)])
    assert sorted(a.status_code for a in answers) == [200] + [409] * 9
    assert await balance(ebike, "c1") == 300


async def test_payment_validation_and_not_found(ebike: Ebike) -> None:
    for amount in (0, -5):
        bad = await ebike.call("accounting", "PUT", "/payments", {"customerId": "c1", "amount": amount}, expect=422)
        assert bad["error"] == "validation failed"
    await ebike.call("accounting", "PATCH", "/payments/nope", {"status": "PENDING"}, expect=422)
    missing = await ebike.call("accounting", "PATCH", "/payments/nope", {"status": "CONFIRMED"}, expect=404)
    assert missing == {"error": "payment not found"}
    gone = await ebike.call("accounting", "DELETE", "/payments/nope", {"customerId": "c1"}, expect=404)
    assert gone == {"error": "payment not found"}


async def test_payments_filter_by_status(ebike: Ebike) -> None:
    pending = await pay(ebike, "c1", 100, status=None)
    confirmed = await pay(ebike, "c2", 200)
    rejected = await pay(ebike, "c1", 300, status="REJECTED")
    everything = await ebike.call("accounting", "GET", "/payments")
    assert [p["id"] for p in everything] == [pending["id"], confirmed["id"], rejected["id"]]
    for payment in (pending, confirmed, rejected):
        only = await ebike.call("accounting", "GET", f"/payments?status={payment['status']}")
        assert [p["id"] for p in only] == [payment["id"]]
    bad = await ebike.call("accounting", "GET", "/payments?status=LOST", expect=422)
    assert bad["error"] == "validation failed"
    mine = await ebike.call("accounting", "GET", "/customers/c1/payments")
    assert [p["id"] for p in mine] == [pending["id"], rejected["id"]]  # newest last


async def test_delete_payment_rules(ebike: Ebike) -> None:
    pending = await pay(ebike, "c1", 100, status=None)
    confirmed = await pay(ebike, "c1", 200)
    foreign = await ebike.call("accounting", "DELETE", f"/payments/{pending['id']}", {"customerId": "c2"},
                               expect=403)
    assert foreign == {"error": f"customer c2 not authorized to delete payment {pending['id']}"}
    refused = await ebike.call("accounting", "DELETE", f"/payments/{confirmed['id']}", {"customerId": "c1"},
                               expect=409)
    assert refused == {"error": "confirmed payment cannot be deleted"}
    deleted = await ebike.call("accounting", "DELETE", f"/payments/{pending['id']}", {"customerId": "c1"})
    assert deleted["id"] == pending["id"] and deleted["status"] == "PENDING"
    assert [p["id"] for p in await ebike.call("accounting", "GET", "/customers/c1/payments")] == [confirmed["id"]]
    assert await balance(ebike, "c1") == 200


# -- expenses --------------------------------------------------------------------------------------
async def test_expenses_have_no_balance_check_and_an_id_makes_them_idempotent(ebike: Ebike) -> None:
    body = {"id": "r1-1", "customerId": "c1", "rentalId": "r1", "amount": 10}
    first = await ebike.call("accounting", "PUT", "/expenses", body)
    assert set(first) == {"id", "customerId", "rentalId", "amount", "createdAt", "updatedAt"}
    assert first["id"] == "r1-1"
    again = await ebike.call("accounting", "PUT", "/expenses", body)
    assert again == first
    assert await balance(ebike, "c1") == -10  # charged once; the balance may go negative
    assert await expense_amounts(ebike, "c1") == [10]
    other = await ebike.call("accounting", "PUT", "/expenses", {**body, "amount": 11}, expect=409)
    assert "already exists" in other["error"]
    free = await ebike.call("accounting", "PUT", "/expenses", {"customerId": "c1", "rentalId": "r1", "amount": 5})
    assert free["id"] != "r1-1"
    assert await expense_amounts(ebike, "c1") == [10, 5]
    await ebike.settle()
    created = [e for e in await ebike.runtime.service("accounting").store.read_log() if e.type == "ExpenseCreated"]
    assert len(created) == 2  # the repeated request published nothing


# -- holds -----------------------------------------------------------------------------------------
async def test_hold_needs_credit_and_blocks_it_for_ten_seconds(ebike: Ebike) -> None:
    await pay(ebike, "c1", 100)
    refused = await hold(ebike, "c1", 101, expect=400)
    assert refused == {"error": "customer c1 does not have enough credit balance"}
    held = await hold(ebike, "c1", 100)  # equal to the balance is allowed
    created = datetime.fromisoformat(held["createdAt"])
    assert (datetime.fromisoformat(held["expiresAt"]) - created).total_seconds() == 10
    assert created == ebike.clock.now()
    assert await balance(ebike, "c1") == 0
    await hold(ebike, "c1", 1, expect=400)
    await ebike.advance(9.5)
    assert await balance(ebike, "c1") == 0
    await ebike.advance(0.5)
    assert await balance(ebike, "c1") == 100  # expired: the amount returns
    late = await ebike.call("accounting", "POST", f"/preliminary-expenses/{held['id']}/finalize",
                            {"rentalId": "r1"}, expect=400)
    assert late == {"error": "preliminary expense expired"}
    assert await balance(ebike, "c1") == 100
    assert await expense_amounts(ebike, "c1") == []


async def test_finalize_turns_the_hold_into_one_expense(ebike: Ebike) -> None:
    await pay(ebike, "c1", 500)
    held = await hold(ebike, "c1", 120)
    assert await balance(ebike, "c1") == 380
    path = f"/preliminary-expenses/{held['id']}/finalize"
    expense = await ebike.call("accounting", "POST", path, {"rentalId": "r1"})
    assert expense["amount"] == 120 and expense["rentalId"] == "r1" and expense["customerId"] == "c1"
    assert await balance(ebike, "c1") == 380  # the hold became the expense: not counted twice
    assert await ebike.call("accounting", "POST", path, {"rentalId": "r1"}) == expense
    await ebike.advance(11)  # a finalized hold does not come back when it would have expired
    assert await ebike.call("accounting", "POST", path, {"rentalId": "r1"}) == expense
    assert await balance(ebike, "c1") == 380
    assert await expense_amounts(ebike, "c1") == [120]
    other = await ebike.call("accounting", "POST", path, {"rentalId": "r2"}, expect=409)
    assert other == {"error": "preliminary expense already finalized"}
    missing = await ebike.call("accounting", "POST", "/preliminary-expenses/nope/finalize", {"rentalId": "r1"},
                               expect=404)
    assert missing == {"error": "preliminary expense not found"}
    await ebike.settle()
    types = [e.type for e in await ebike.runtime.service("accounting").store.read_log()]
    assert types[-2:] == ["ExpenseCreated", "PreliminaryExpenseFinalized"]


async def test_concurrent_holds_cannot_spend_the_same_credit(ebike: Ebike, monkeypatch: pytest.MonkeyPatch) -> None:
    await pay(ebike, "c1", 100)
    slow_store(monkeypatch, ebike, "accounting")
    answers = await asyncio.gather(*[ebike.runtime.client("accounting").put(
        "/preliminary-expenses", json={"inquiryId": f"q{i}", "customerId": "c1", "amount": 60}) for i in range(8)])
    assert sorted(a.status_code for a in answers) == [200] + [400] * 7
    assert await balance(ebike, "c1") == 40


# -- the balance -----------------------------------------------------------------------------------
async def test_balance_is_exact_across_a_long_history(ebike: Ebike) -> None:
    # more events than a snapshot interval, mixing every kind of balance change
    expected = 0
    for i in range(40):
        await pay(ebike, "c1", 100 + i)
        expected += 100 + i
        await pay(ebike, "c1", 7, status="REJECTED")
        await ebike.call("accounting", "PUT", "/expenses", {"customerId": "c1", "rentalId": f"r{i}", "amount": 30})
        expected -= 30
    held = await hold(ebike, "c1", 50)
    assert await balance(ebike, "c1") == expected - 50
    await ebike.call("accounting", "POST", f"/preliminary-expenses/{held['id']}/finalize", {"rentalId": "r"})
    assert await balance(ebike, "c1") == expected - 50
    payments = await ebike.call("accounting", "GET", "/customers/c1/payments")
    scanned = sum(p["amount"] for p in payments if p["status"] == "CONFIRMED") - sum(
        await expense_amounts(ebike, "c1"))
    assert scanned == expected - 50
    assert await balance(ebike, "c2") == 0


async def test_balance_query_reads_one_row_not_the_history(ebike: Ebike) -> None:
    for _ in range(3):
        await pay(ebike, "c1", 100)
        await ebike.call("accounting", "PUT", "/expenses", {"customerId": "c1", "rentalId": "r", "amount": 1})
    await hold(ebike, "c1", 10)
    statements: list[str] = []
    store = ebike.runtime.service("accounting").store
    assert isinstance(store, SqliteStore)
    raw = store.raw
    raw.set_trace_callback(statements.append)
    try:
        assert await balance(ebike, "c1") == 287
    finally:
        raw.set_trace_callback(None)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1 and "FROM accounts" in reads[0] and "customer_id = " in reads[0], statements
