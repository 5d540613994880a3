"""A small two-service system exercising routes, aggregates, subscriptions and timers."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import Column, Integer, String, select

from junction.aggregate import Aggregate
from junction.clock import VirtualClock
from junction.events import Event
from junction.runtime import Runtime, System
from junction.service import Service
from junction.uow import UnitOfWork


class Deposited(Event):
    event_name = "TestDeposited"
    account_id: str
    amount: int


class Account(Aggregate):
    stream_type = "account"
    snapshot_every = 3
    balance: int = 0

    def apply(self, event: Event) -> None:
        if isinstance(event, Deposited):
            self.balance += event.amount


class Deposit(BaseModel):
    amount: int


bank = Service("bank", worker=1)
ledger = Service("ledger", worker=2)
totals = ledger.table("totals", Column("account_id", String, primary_key=True), Column("total", Integer))
totals_view = ledger.projection("totals", tables=[totals])


@bank.route("POST", "/accounts/{account_id}/deposits")
async def deposit(account_id: str, body: Deposit, uow: UnitOfWork) -> dict[str, int]:
    account = await uow.load(Account, account_id) or await uow.create(Account, account_id)
    account.record(Deposited(account_id=account_id, amount=body.amount))
    uow.schedule(uow.clock.timestamp() + 60, "interest", {"account": account_id})
    return {"balance": account.balance}


@bank.timer("interest")
async def interest(payload: dict[str, str], uow: UnitOfWork) -> None:
    account = await uow.get(Account, payload["account"])
    account.record(Deposited(account_id=account.id, amount=1))


@totals_view.on("bank", Deposited)
async def on_deposit(event: Deposited, uow: UnitOfWork) -> None:
    row = await uow.fetch_one(select(totals).where(totals.c.account_id == event.account_id))
    if row is None:
        uow.execute(totals.insert().values(account_id=event.account_id, total=event.amount))
    else:
        uow.execute(totals.update().where(totals.c.account_id == event.account_id)
                    .values(total=row["total"] + event.amount))


@ledger.route("GET", "/totals/{account_id}")
async def total(account_id: str, uow: UnitOfWork) -> int | None:
    row = await uow.fetch_one(select(totals).where(totals.c.account_id == account_id))
    return row["total"] if row else None


SYSTEM = System("toy", [bank, ledger])


async def test_routes_events_projection_and_timers(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Runtime(SYSTEM, tmp_path, clock=clock) as runtime:
        client = runtime.client("bank")
        for amount in (10, 20, 30, 40):
            response = await client.post("/accounts/a1/deposits", json={"amount": amount})
            assert response.status_code == 200, response.text
        assert response.json() == {"balance": 100}
        bad = await client.post("/accounts/a1/deposits", json={"amount": "lots"})
        assert bad.status_code == 422 and bad.json()["error"] == "validation failed"
        await runtime.settle()
        ledger_client = runtime.client("ledger")
        assert (await ledger_client.get("/totals/a1")).json() == 100
        await clock.advance(61)
        assert (await ledger_client.get("/totals/a1")).json() == 104
        await runtime.rebuild("totals")
        assert (await ledger_client.get("/totals/a1")).json() == 104


async def test_health_and_metrics(tmp_path: Path) -> None:
    async with Runtime(SYSTEM, tmp_path, clock=VirtualClock()) as runtime:
        await runtime.client("bank").post("/accounts/a2/deposits", json={"amount": 5})
        await runtime.settle()
        import httpx

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.app), base_url="http://t") as client:
            health = (await client.get("/health")).json()
            assert health["status"] == "ok" and health["time"].startswith("2026-01-01T08:00")
            text = (await client.get("/metrics")).text
        assert 'junction_log_head{service="bank"} 1.0' in text
        assert 'junction_consumer_lag{service="ledger",source="bank",subscription="projection:totals:bank"} 0.0' in text


async def test_two_appends_to_one_stream_in_one_unit_of_work(tmp_path: Path) -> None:
    async with Runtime(SYSTEM, tmp_path, clock=VirtualClock()) as runtime:
        bank_runtime = runtime.service("bank")
        uow = bank_runtime.uow()
        uow.append("log-1", Deposited(account_id="x", amount=1))
        uow.append("log-1", Deposited(account_id="x", amount=2))
        await uow.commit()
        events = await bank_runtime.store.read_stream("log-1")
        assert [(e.version, e.data["amount"]) for e in events] == [(1, 1), (2, 2)]


async def test_upsert_inserts_then_updates(tmp_path: Path) -> None:
    async with Runtime(SYSTEM, tmp_path, clock=VirtualClock()) as runtime:
        ledger_runtime = runtime.service("ledger")
        for amount in (5, 7):
            uow = ledger_runtime.uow()
            uow.upsert(totals, {"account_id": "u", "total": amount}, ["account_id"],
                       {"total": totals.c.total + amount})
            await uow.commit()
        row = await ledger_runtime.store.fetch_one(select(totals).where(totals.c.account_id == "u"))
        assert row["total"] == 12


def test_a_system_refuses_ambiguous_definitions() -> None:
    import pytest

    twin = Service("bank", worker=3)
    with pytest.raises(ValueError, match="service name used twice: bank"):
        System("bad", [bank, twin])
    same_worker = Service("other", worker=1)
    with pytest.raises(ValueError, match="Snowflake worker used twice: 1"):
        System("bad", [bank, same_worker])


async def test_operator_endpoints_answer_local_callers_only(tmp_path: Path) -> None:
    import httpx

    async with Runtime(SYSTEM, tmp_path, clock=VirtualClock()) as runtime:
        local = httpx.ASGITransport(app=runtime.app, client=("127.0.0.1", 5000))
        remote = httpx.ASGITransport(app=runtime.app, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=local, base_url="http://t") as client:
            assert (await client.get("/_junction/status")).status_code == 200
        async with httpx.AsyncClient(transport=remote, base_url="http://t") as client:
            assert (await client.get("/_junction/status")).status_code == 403
            assert (await client.post("/_junction/projections/totals/rebuild")).status_code == 403
            assert (await client.get("/health")).status_code == 200
