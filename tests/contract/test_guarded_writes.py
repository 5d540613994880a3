"""Guarded writes (``UnitOfWork.require``): an atomic conditional update either changes the rows it must or
the whole unit of work is rolled back with ConditionFailed, on every store adapter."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Update, insert, select, update

from junction.clock import VirtualClock
from junction.errors import ConditionFailed
from junction.ids import Snowflake
from junction.store import Store
from junction.uow import UnitOfWork
from tests.contract.conftest import ACCOUNTS
from tests.contract.test_store import Incremented

IDS = Snowflake(901)


def make_uow(store: Store) -> UnitOfWork:
    return UnitOfWork(store, VirtualClock(), IDS)


def withdraw(amount: int) -> Update:
    """Take ``amount`` from acc-1 if it has that much: the shape of a stock decrement."""
    return (update(ACCOUNTS).where(ACCOUNTS.c.id == "acc-1", ACCOUNTS.c.balance >= amount)
            .values(balance=ACCOUNTS.c.balance - amount))


async def balance(store: Store) -> int:
    row = await store.fetch_one(select(ACCOUNTS.c.balance).where(ACCOUNTS.c.id == "acc-1"))
    assert row is not None
    return int(row["balance"])


async def open_account(store: Store, amount: int) -> None:
    uow = make_uow(store)
    uow.execute(insert(ACCOUNTS).values(id="acc-1", email="ann@example.com", balance=amount))
    await uow.commit()


async def test_a_guard_that_holds_commits_everything(store: Store) -> None:
    await open_account(store, 10)
    uow = make_uow(store)
    uow.require(withdraw(4))
    uow.append("tally-a", Incremented(token="withdrawn"))
    assert await uow.commit() == 1
    assert await balance(store) == 6


async def test_a_guard_that_fails_rolls_back_the_whole_unit_of_work(store: Store) -> None:
    await open_account(store, 10)
    uow = make_uow(store)
    uow.execute(update(ACCOUNTS).values(email="changed@example.com"))
    uow.require(withdraw(11))
    uow.append("tally-a", Incremented(token="withdrawn"))
    with pytest.raises(ConditionFailed):
        await uow.commit()
    assert await balance(store) == 10
    assert await store.head() == 0
    row = await store.fetch_one(select(ACCOUNTS.c.email))
    assert row is not None and row["email"] == "ann@example.com"


async def test_a_guard_on_a_missing_row_fails(store: Store) -> None:
    uow = make_uow(store)
    uow.require(withdraw(1))
    with pytest.raises(ConditionFailed):
        await uow.commit()


async def test_concurrent_guarded_decrements_never_overdraw(store: Store) -> None:
    await open_account(store, 100)

    async def take() -> bool:
        uow = make_uow(store)
        uow.require(withdraw(7))
        try:
            await uow.commit()
        except ConditionFailed:
            return False
        return True

    taken = await asyncio.gather(*(take() for _ in range(30)))
    assert sum(taken) == 100 // 7
    assert await balance(store) == 100 % 7


async def test_an_early_commit_takes_what_was_gathered(store: Store) -> None:
    """A handler may commit to learn the outcome; the platform's commit afterwards writes only what came later."""
    await open_account(store, 10)
    uow = make_uow(store)
    uow.require(withdraw(20))
    with pytest.raises(ConditionFailed):
        await uow.commit()
    assert await uow.commit() == 0  # the failed write is not tried again
    uow.append("tally-a", Incremented(token="later"))
    assert await uow.commit() == 1
    assert await balance(store) == 10
