"""accounting: payments, expenses and credit holds, with an O(1), strongly consistent credit balance.

Every change to one customer's money is an event on one stream, ``account-<customerId>``, appended
at the version it was decided on. Two writers for the same customer therefore cannot both win: a
balance check and the hold it allows are atomic, and the loser's handler runs again on fresh state.
Rows that such a decision reads (a payment's status, a hold's state) are read again *after* the
account is loaded, so anything committed in between makes our append conflict.

The ``accounts`` row mirrors the aggregate (running balance and live holds) in the same commit, so
reading a balance is one primary-key lookup however long the customer's history is (spec §0.10).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field
from sqlalchemy import Column, Float, Integer, String, Text, select
from starlette.requests import Request

from ebike.contracts.api import Dto, rfc3339
from ebike.contracts.events import (
    ExpenseCreated,
    PaymentCreated,
    PaymentDeleted,
    PaymentStatus,
    PaymentUpdated,
    PreliminaryExpenseCreated,
    PreliminaryExpenseFinalized,
)
from ebike.contracts.fees import HOLD_SECONDS
from junction.aggregate import Aggregate
from junction.errors import BadRequest, Conflict, HttpError, NotFound
from junction.events import Event
from junction.service import Service
from junction.uow import UnitOfWork

service = Service("accounting", worker=5)

# Lists keep creation order by ``seq`` (ids are opaque text, so they do not sort by time).
payments = service.table(
    "payments",
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String, nullable=False, unique=True),
    Column("customer_id", String, nullable=False, index=True),
    Column("amount", Integer, nullable=False),
    Column("status", String, nullable=False, index=True),
    Column("created_at", String, nullable=False),
    Column("updated_at", String, nullable=False),
)
expenses = service.table(
    "expenses",
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String, nullable=False, unique=True),
    Column("customer_id", String, nullable=False, index=True),
    Column("rental_id", String, nullable=True),
    Column("amount", Integer, nullable=False),
    Column("created_at", String, nullable=False),
    Column("updated_at", String, nullable=False),
)
# Holds stay after finalizing (marked with the rental and expense): a repeated finalize must find
# its expense again instead of a "not found" that would make the caller charge the fee twice.
holds = service.table(
    "preliminary_expenses",
    Column("id", String, primary_key=True),
    Column("inquiry_id", String, nullable=False),
    Column("customer_id", String, nullable=False),
    Column("amount", Integer, nullable=False),
    Column("created_at", String, nullable=False),
    Column("expires_at", String, nullable=False),
    Column("expires_ts", Float, nullable=False),
    Column("rental_id", String, nullable=True),
    Column("expense_id", String, nullable=True),
)
accounts = service.table(
    "accounts",
    Column("customer_id", String, primary_key=True),
    Column("balance", Integer, nullable=False),  # confirmed payments - expenses
    Column("holds", Text, nullable=False),  # the aggregate's live holds, as JSON
)

Row = Any  # a row mapping read from one of the tables above


# -- the account aggregate ---------------------------------------------------------------------------
class Hold(BaseModel):
    """Credit blocked by a preliminary expense until ``expires_ts``."""

    amount: int
    expires_ts: float


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class Account(Aggregate):
    """One customer's money: the running balance and the holds that may still be live (bounded state)."""

    stream_type = "account"

    balance: int = 0
    holds: dict[str, Hold] = Field(default_factory=dict)

    def apply(self, event: Event) -> None:
        """Change the balance or the holds by one event."""
        match event:
            case PaymentUpdated(status="CONFIRMED"):
                self.balance += event.amount
            case PaymentDeleted(status="CONFIRMED"):
                self.balance -= event.amount
            case ExpenseCreated():
                self.balance -= event.amount
            case PreliminaryExpenseCreated():
                expires = _timestamp(event.expires_at)
                # Forget holds that had expired when this one was made, so the state stays small.
                created = expires - HOLD_SECONDS
                self.holds = {k: h for k, h in self.holds.items() if h.expires_ts > created}
                self.holds[event.id] = Hold(amount=event.amount, expires_ts=expires)
            case PreliminaryExpenseFinalized():
                self.holds.pop(event.id, None)
            case PaymentCreated() | PaymentUpdated() | PaymentDeleted():
                pass  # no effect on the balance

    def available(self, now: float) -> int:
        """The credit balance at ``now``: balance minus the holds not yet expired."""
        return self.balance - sum(h.amount for h in self.holds.values() if now < h.expires_ts)


@asynccontextmanager
async def _account(uow: UnitOfWork, customer_id: str) -> AsyncIterator[Account]:
    """The customer's account for this unit of work; its mirror row is written on the way out."""
    account = await uow.load(Account, customer_id) or await uow.create(Account, customer_id)
    yield account
    if not account.exists:
        return  # nothing recorded for a customer we never saw: no row to write
    values = {"balance": account.balance,
              "holds": json.dumps({k: h.model_dump() for k, h in account.holds.items()})}
    if account.version == 0:  # the stream was empty when loaded; a racing creator conflicts on append
        uow.execute(accounts.insert().values(customer_id=customer_id, **values))
    else:
        uow.execute(accounts.update().where(accounts.c.customer_id == customer_id).values(**values))


@asynccontextmanager
async def _locked_row(uow: UnitOfWork, read: Callable[[], Awaitable[Row]]) -> AsyncIterator[tuple[Account, Row]]:
    """A customer's row with their account; the row is read again after the account is loaded."""
    first = await read()
    async with _account(uow, first["customer_id"]) as account:
        yield account, await read()


# -- bodies and answers ----------------------------------------------------------------------------
class NewPayment(Dto):
    customer_id: str = Field(min_length=1)
    amount: int = Field(gt=0)


class PaymentDecision(Dto):
    status: Literal["CONFIRMED", "REJECTED"]


class CustomerRef(Dto):
    customer_id: str = Field(min_length=1)


class NewExpense(Dto):
    id: str | None = Field(default=None, min_length=1)  # client-chosen: the same id again is a no-op
    customer_id: str = Field(min_length=1)
    rental_id: str = Field(min_length=1)
    amount: int = Field(gt=0)


class NewHold(Dto):
    inquiry_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    amount: int = Field(gt=0)


class Finalize(Dto):
    rental_id: str = Field(min_length=1)


class PaymentOut(Dto):
    id: str
    customer_id: str
    amount: int
    status: PaymentStatus
    created_at: str
    updated_at: str


class ExpenseOut(Dto):
    id: str
    customer_id: str
    rental_id: str | None
    amount: int
    created_at: str
    updated_at: str


class HoldOut(Dto):
    id: str
    inquiry_id: str
    customer_id: str
    amount: int
    created_at: str
    expires_at: str


class CreditBalanceOut(Dto):
    customer_id: str
    credit_balance: int


def _payment_out(row: Row) -> PaymentOut:
    return PaymentOut.model_validate(dict(row))


def _expense_out(row: Row) -> ExpenseOut:
    return ExpenseOut.model_validate(dict(row))


async def _payment(uow: UnitOfWork, payment_id: str) -> Row:
    row = await uow.fetch_one(select(payments).where(payments.c.id == payment_id))
    if row is None:
        raise NotFound("payment not found")
    return row


async def _hold(uow: UnitOfWork, hold_id: str) -> Row:
    row = await uow.fetch_one(select(holds).where(holds.c.id == hold_id))
    if row is None:
        raise NotFound("preliminary expense not found")
    return row


async def _expense(uow: UnitOfWork, expense_id: str) -> Row | None:
    return await uow.fetch_one(select(expenses).where(expenses.c.id == expense_id))


def _charge(uow: UnitOfWork, account: Account, expense_id: str, rental_id: str | None, amount: int) -> ExpenseOut:
    """Record an expense on the account and its row; the expense."""
    now = rfc3339(uow.now())
    account.record(ExpenseCreated(id=expense_id, customer_id=account.id, rental_id=rental_id, amount=amount))
    values = {"id": expense_id, "customer_id": account.id, "rental_id": rental_id, "amount": amount,
              "created_at": now, "updated_at": now}
    uow.execute(expenses.insert().values(**values))
    return _expense_out(values)


# -- payments --------------------------------------------------------------------------------------
@service.route("GET", "/payments")
async def list_payments(request: Request, uow: UnitOfWork) -> list[PaymentOut]:
    """All payments, oldest first; ``?status=`` filters by status."""
    query = select(payments).order_by(payments.c.seq)
    status = request.query_params.get("status")
    if status is not None:
        if status not in get_args(PaymentStatus):
            raise HttpError("validation failed", status=422)
        query = query.where(payments.c.status == status)
    return [_payment_out(r) for r in await uow.fetch_all(query)]


@service.route("PUT", "/payments")
async def create_payment(body: NewPayment, uow: UnitOfWork) -> PaymentOut:
    """A PENDING payment: it counts only once an admin confirms it."""
    now = rfc3339(uow.now())
    values = {"id": uow.new_id(), "customer_id": body.customer_id, "amount": body.amount, "status": "PENDING",
              "created_at": now, "updated_at": now}
    async with _account(uow, body.customer_id) as account:
        account.record(PaymentCreated(id=values["id"], customer_id=body.customer_id, amount=body.amount,
                                      status="PENDING"))
    uow.execute(payments.insert().values(**values))
    return _payment_out(values)


@service.route("PATCH", "/payments/{payment_id}")
async def decide_payment(payment_id: str, body: PaymentDecision, uow: UnitOfWork) -> PaymentOut:
    """Confirm or reject; only CONFIRMED is final (REJECTED may still be confirmed)."""
    async with _locked_row(uow, lambda: _payment(uow, payment_id)) as (account, row):
        if row["status"] == "CONFIRMED":
            raise Conflict("payment already confirmed")
        account.record(PaymentUpdated(id=payment_id, customer_id=row["customer_id"], amount=row["amount"],
                                      status=body.status))
    changes = {"status": body.status, "updated_at": rfc3339(uow.now())}
    uow.execute(payments.update().where(payments.c.id == payment_id).values(**changes))
    return _payment_out({**row, **changes})


@service.route("DELETE", "/payments/{payment_id}")
async def delete_payment(payment_id: str, body: CustomerRef, uow: UnitOfWork) -> PaymentOut:
    """The owner deletes a payment that is not CONFIRMED; the deleted payment."""
    async with _locked_row(uow, lambda: _payment(uow, payment_id)) as (account, row):
        if row["customer_id"] != body.customer_id:
            raise HttpError(f"customer {body.customer_id} not authorized to delete payment {payment_id}", status=403)
        if row["status"] == "CONFIRMED":
            raise Conflict("confirmed payment cannot be deleted")
        account.record(PaymentDeleted(id=payment_id, customer_id=row["customer_id"], amount=row["amount"],
                                      status=row["status"]))
    uow.execute(payments.delete().where(payments.c.id == payment_id))
    return _payment_out(row)


# -- expenses and holds ----------------------------------------------------------------------------
@service.route("PUT", "/expenses")
async def create_expense(body: NewExpense, uow: UnitOfWork) -> ExpenseOut:
    """Charge a customer (no balance check); with an ``id`` the same request again charges once."""
    async with _account(uow, body.customer_id) as account:
        if body.id is not None and (existing := await _expense(uow, body.id)) is not None:
            if (existing["customer_id"], existing["rental_id"], existing["amount"]) != (
                    body.customer_id, body.rental_id, body.amount):
                raise Conflict(f"expense {body.id} already exists with other content")
            return _expense_out(existing)
        return _charge(uow, account, body.id or uow.new_id(), body.rental_id, body.amount)


@service.route("PUT", "/preliminary-expenses")
async def create_hold(body: NewHold, uow: UnitOfWork) -> HoldOut:
    """Block ``amount`` of the customer's credit for HOLD_SECONDS, if the credit suffices."""
    now = uow.now()
    async with _account(uow, body.customer_id) as account:
        if account.available(now.timestamp()) < body.amount:
            raise BadRequest(f"customer {body.customer_id} does not have enough credit balance")
        expires = now + timedelta(seconds=HOLD_SECONDS)
        out = HoldOut(id=uow.new_id(), inquiry_id=body.inquiry_id, customer_id=body.customer_id,
                      amount=body.amount, created_at=rfc3339(now), expires_at=rfc3339(expires))
        account.record(PreliminaryExpenseCreated(id=out.id, inquiry_id=out.inquiry_id, customer_id=out.customer_id,
                                                 amount=out.amount, expires_at=out.expires_at))
    uow.execute(holds.insert().values(**out.model_dump(), expires_ts=expires.timestamp()))
    return out


@service.route("POST", "/preliminary-expenses/{hold_id}/finalize")
async def finalize_hold(hold_id: str, body: Finalize, uow: UnitOfWork) -> ExpenseOut:
    """Turn a live hold into an expense of the rental, atomically; repeating it returns the same expense."""
    async with _locked_row(uow, lambda: _hold(uow, hold_id)) as (account, hold):
        if hold["rental_id"] is not None:
            if hold["rental_id"] != body.rental_id:
                raise Conflict("preliminary expense already finalized")
            existing = await _expense(uow, hold["expense_id"])
            assert existing is not None, "a finalized hold's expense is written in the same commit"
            return _expense_out(existing)
        # Expired exactly when the balance stops counting it, so its credit is never spent twice.
        if uow.now().timestamp() >= hold["expires_ts"]:
            raise BadRequest("preliminary expense expired")
        expense = _charge(uow, account, uow.new_id(), body.rental_id, hold["amount"])
        account.record(PreliminaryExpenseFinalized(id=hold_id, inquiry_id=hold["inquiry_id"],
                                                   customer_id=hold["customer_id"], rental_id=body.rental_id,
                                                   amount=hold["amount"]))
    uow.execute(holds.update().where(holds.c.id == hold_id).values(rental_id=body.rental_id, expense_id=expense.id))
    return expense


# -- per customer ----------------------------------------------------------------------------------
@service.route("GET", "/customers/{customer_id}/credit-balance")
async def credit_balance(customer_id: str, uow: UnitOfWork) -> CreditBalanceOut:
    """Confirmed payments - expenses - live holds, from one row (no scan of the history)."""
    row = await uow.fetch_one(select(accounts).where(accounts.c.customer_id == customer_id))
    if row is None:
        return CreditBalanceOut(customer_id=customer_id, credit_balance=0)
    account = Account.model_validate({"id": customer_id, "balance": row["balance"], "holds": json.loads(row["holds"])})
    return CreditBalanceOut(customer_id=customer_id, credit_balance=account.available(uow.now().timestamp()))


@service.route("GET", "/customers/{customer_id}/payments")
async def customer_payments(customer_id: str, uow: UnitOfWork) -> list[PaymentOut]:
    """The customer's payments, oldest first."""
    rows = await uow.fetch_all(select(payments).where(payments.c.customer_id == customer_id).order_by(payments.c.seq))
    return [_payment_out(r) for r in rows]


@service.route("GET", "/customers/{customer_id}/expenses")
async def customer_expenses(customer_id: str, uow: UnitOfWork) -> list[ExpenseOut]:
    """The customer's expenses, oldest first."""
    rows = await uow.fetch_all(select(expenses).where(expenses.c.customer_id == customer_id).order_by(expenses.c.seq))
    return [_expense_out(r) for r in rows]
