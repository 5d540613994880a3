"""Queries and mutations: check the role, call the service's internal API, map its DTO (spec section 4).

Service errors pass through with their text and the code of their status (``{"error": msg}`` with
404 → NOT_FOUND, 409 → CONFLICT, ...), so the reference's messages reach clients unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from ariadne import MutationType, QueryType, UnionType
from graphql import GraphQLResolveInfo

from ebike.gateway import dto
from ebike.gateway.session import ADMIN, CUSTOMER, SIGNED_IN, Context, Session, guarded, require
from junction.gateway.graphql import FORBIDDEN, ApiError
from junction.transport import UpstreamError

query = QueryType()
mutation = MutationType()
transaction = UnionType("Transaction")

AUTHENTICATED = "Authenticated"  # the reference's answer to signing up or in while signed in


def seg(value: str) -> str:
    """An id as one path segment: clients' ids must not walk to other internal routes."""
    return quote(value, safe="")


def customer_path(me: Session, rest: str = "") -> str:
    """The caller's own resources under ``/customers/{id}``."""
    return f"/customers/{seg(me.id)}{rest}"


@transaction.type_resolver
def transaction_type(obj: dto.Dto, *_: Any) -> str:
    """Payment or Expense (the mappers tag them)."""
    return str(obj["__typename"])


# -- auth --------------------------------------------------------------------------------------------
@query.field("auth")
async def resolve_auth(_: Any, info: GraphQLResolveInfo) -> dto.Dto | None:
    """The caller, or null."""
    session: Session | None = info.context.session
    return session.user() if session else None


@query.field("users")
@guarded(ADMIN)
async def users(ctx: Context, me: Session) -> list[dto.Dto]:
    """Every user."""
    return [dto.user(u) for u in await ctx.call("auth", "GET", "/users")]


def anonymous(ctx: Context) -> None:
    """Signing up or in is for anonymous callers ("Authenticated" otherwise, as the reference)."""
    if ctx.session is not None:
        raise ApiError(AUTHENTICATED, FORBIDDEN)


async def register(ctx: Context, username: str, password: str, role: str, bootstrap: bool = False) -> dto.Dto:
    """auth ``POST /register``; the new user's DTO with its freshly opened session."""
    body = {"username": username, "password": password, "role": role, "bootstrap": bootstrap}
    answer: dto.Dto = await ctx.call("auth", "POST", "/register", body)
    return answer


@mutation.field("registerAdmin")
async def register_admin(_: Any, info: GraphQLResolveInfo, username: str, password: str) -> dto.Dto:
    """Bootstrap the first admin anonymously; afterwards only an admin adds admins, keeping its session."""
    ctx: Context = info.context
    if ctx.session is None:
        # auth refuses (403 "Not authorized") once an admin exists, atomically with the insert
        return ctx.sign_in(await register(ctx, username, password, "ADMIN", bootstrap=True))
    require(ctx, (ADMIN,))
    created = await register(ctx, username, password, "ADMIN")
    # auth signed the new admin in; nobody holds that session, so close it at once
    await ctx.call("auth", "POST", "/logout", headers={"X-Session-ID": created["sessionId"]})
    return dto.user(created)


@mutation.field("registerCustomer")
async def register_customer(_: Any, info: GraphQLResolveInfo, username: str, password: str) -> dto.Dto:
    """Sign up as a customer and sign in."""
    ctx: Context = info.context
    anonymous(ctx)
    return ctx.sign_in(await register(ctx, username, password, "CUSTOMER"))


@mutation.field("login")
async def login(_: Any, info: GraphQLResolveInfo, username: str, password: str) -> dto.Dto:
    """Sign in (attempts limited per username and per client address)."""
    ctx: Context = info.context
    anonymous(ctx)
    ctx.gateway.login_limits.take(username, ctx.client_address)
    user = await ctx.call("auth", "POST", "/login", {"username": username, "password": password})
    return ctx.sign_in(user)


@mutation.field("logout")
@guarded(*SIGNED_IN)
async def logout(ctx: Context, me: Session) -> bool:
    """Revoke the session server-side and delete the cookie."""
    await ctx.call("auth", "POST", "/logout", headers={"X-Session-ID": me.session_id})
    ctx.sign_out()
    return True


# -- accounting --------------------------------------------------------------------------------------
@query.field("payments")
@guarded(ADMIN)
async def payments(ctx: Context, me: Session, status: str | None = None) -> list[dto.Dto]:
    """Payments, filtered by status when given."""
    path = "/payments" if status is None else f"/payments?status={seg(status)}"
    return [dto.payment(p) for p in await ctx.call("accounting", "GET", path)]


async def decide(ctx: Context, payment_id: str, status: str) -> dto.Dto:
    """Confirm or reject a payment."""
    return dto.payment(await ctx.call("accounting", "PATCH", f"/payments/{seg(payment_id)}", {"status": status}))


@mutation.field("confirmPayment")
@guarded(ADMIN)
async def confirm_payment(ctx: Context, me: Session, id: str) -> dto.Dto:
    """CONFIRMED is final."""
    return await decide(ctx, id, "CONFIRMED")


@mutation.field("rejectPayment")
@guarded(ADMIN)
async def reject_payment(ctx: Context, me: Session, id: str) -> dto.Dto:
    """A rejected payment may still be confirmed later."""
    return await decide(ctx, id, "REJECTED")


@mutation.field("createPayment")
@guarded(CUSTOMER)
async def create_payment(ctx: Context, me: Session, amount: int) -> dto.Dto:
    """A PENDING payment of the caller."""
    return dto.payment(await ctx.call("accounting", "PUT", "/payments", {"customerId": me.id, "amount": amount}))


@mutation.field("deletePayment")
@guarded(CUSTOMER)
async def delete_payment(ctx: Context, me: Session, id: str) -> dto.Dto:
    """Delete an own, unconfirmed payment."""
    return dto.payment(await ctx.call("accounting", "DELETE", f"/payments/{seg(id)}", {"customerId": me.id}))


@query.field("transactions")
@guarded(CUSTOMER)
async def transactions(ctx: Context, me: Session) -> list[dto.Dto]:
    """Own payments first, then own expenses."""
    paid, spent = await asyncio.gather(ctx.call("accounting", "GET", customer_path(me, "/payments")),
                                       ctx.call("accounting", "GET", customer_path(me, "/expenses")))
    return [*map(dto.payment, paid), *map(dto.expense, spent)]


@query.field("creditBalance")
@guarded(CUSTOMER)
async def credit_balance(ctx: Context, me: Session) -> int:
    """From accounting, strongly consistent."""
    answer = await ctx.call("accounting", "GET", customer_path(me, "/credit-balance"))
    return int(answer["creditBalance"])


# -- customers ---------------------------------------------------------------------------------------
@query.field("customers")
@guarded(ADMIN)
async def customers(ctx: Context, me: Session) -> list[dto.Dto]:
    """Every customer's view."""
    return [dto.customer(c) for c in await ctx.call("customers", "GET", "/customers")]


@query.field("customer")
@guarded(ADMIN)
async def customer(ctx: Context, me: Session, id: str) -> dto.Dto:
    """One customer's view; NOT_FOUND when unknown."""
    return dto.customer(await ctx.call("customers", "GET", f"/customers/{seg(id)}"))


@query.field("position")
@guarded(CUSTOMER)
async def position(ctx: Context, me: Session) -> dto.Dto:
    """The caller's position (the origin until the customers view has them)."""
    try:
        return dto.position_of(await ctx.call("customers", "GET", customer_path(me)))
    except UpstreamError as error:
        if error.status != 404:
            raise
        return dto.vec(0.0, 0.0)  # a new customer's view starts at the origin


@mutation.field("updateCustomerPosition")
@guarded(CUSTOMER)
async def update_position(ctx: Context, me: Session, position: dto.Dto) -> bool:
    """Move the caller; the view follows from the event."""
    body = {"positionX": position["x"], "positionY": position["y"]}
    await ctx.call("customers", "PATCH", customer_path(me, "/position"), body)
    return True


# -- rentals -----------------------------------------------------------------------------------------
@query.field("activeRental")
@guarded(CUSTOMER)
async def active_rental(ctx: Context, me: Session) -> dto.Dto | None:
    """The running rental, or null."""
    return dto.rental(await ctx.call("rentals", "GET", customer_path(me, "/rentals/active")))


@query.field("pastRentals")
@guarded(CUSTOMER)
async def past_rentals(ctx: Context, me: Session) -> list[dto.Dto | None]:
    """Ended rentals."""
    return [dto.rental(r) for r in await ctx.call("rentals", "GET", customer_path(me, "/rentals/past"))]


@mutation.field("startRental")
@guarded(CUSTOMER)
async def start_rental(ctx: Context, me: Session, vehicleId: str) -> dto.Dto | None:
    """Rent a vehicle; the unlocking fee is taken at once."""
    body = {"customerId": me.id, "vehicleId": vehicleId}
    return dto.rental(await ctx.call("rentals", "POST", "/rentals/start", body))


@mutation.field("stopRental")
@guarded(CUSTOMER)
async def stop_rental(ctx: Context, me: Session, id: str) -> dto.Dto | None:
    """End an own rental."""
    return dto.rental(await ctx.call("rentals", "POST", f"/rentals/{seg(id)}/stop", {"customerId": me.id}))


# -- stations ----------------------------------------------------------------------------------------
@query.field("stations")
@guarded(*SIGNED_IN)
async def stations(ctx: Context, me: Session) -> list[dto.Dto]:
    """Every station (the last good list while the stations service fails)."""
    return [dto.station(s) for s in await ctx.call("stations", "GET", "/stations", stale_ok=True)]


@mutation.field("createStation")
@guarded(ADMIN)
async def create_station(ctx: Context, me: Session, input: dto.Dto) -> dto.Dto:
    """A new station."""
    body = {"name": input["name"], "positionX": input["position"]["x"], "positionY": input["position"]["y"]}
    return dto.station(await ctx.call("stations", "PUT", "/stations", body))


@mutation.field("deleteStation")
@guarded(ADMIN)
async def delete_station(ctx: Context, me: Session, id: str) -> dto.Dto:
    """Remove a station; the removed one."""
    return dto.station(await ctx.call("stations", "DELETE", f"/stations/{seg(id)}"))


# -- vehicles ----------------------------------------------------------------------------------------
@query.field("vehicles")
@guarded(ADMIN)
async def vehicles(ctx: Context, me: Session) -> list[dto.Dto]:
    """Every vehicle, with status and target."""
    return [dto.vehicle(v) for v in await ctx.call("vehicles", "GET", "/vehicles", stale_ok=True)]


@query.field("availableVehicles")
@guarded(*SIGNED_IN)
async def available_vehicles(ctx: Context, me: Session) -> list[dto.Dto]:
    """Rentable vehicles; a customer also sees the a-bike waiting for them."""
    path = "/vehicles/available" if me.role == ADMIN else f"/vehicles/available?customerId={seg(me.id)}"
    return [dto.vehicle(v) for v in await ctx.call("vehicles", "GET", path, stale_ok=True)]


@mutation.field("createVehicle")
@guarded(ADMIN)
async def create_vehicle(ctx: Context, me: Session, input: dto.Dto) -> dto.Dto:
    """A new vehicle with a full battery."""
    body = {"type": input["type"], "positionX": input["position"]["x"], "positionY": input["position"]["y"]}
    return dto.vehicle(await ctx.call("vehicles", "PUT", "/vehicles", body))


@mutation.field("deleteVehicle")
@guarded(ADMIN)
async def delete_vehicle(ctx: Context, me: Session, id: str) -> dto.Dto:
    """Remove a vehicle nobody uses; the removed one."""
    return dto.vehicle(await ctx.call("vehicles", "DELETE", f"/vehicles/{seg(id)}"))


@mutation.field("requestABike")
@guarded(CUSTOMER)
async def request_abike(ctx: Context, me: Session, position: dto.Dto) -> dto.Dto:
    """Call the nearest available a-bike to ``position``; the bike that comes."""
    body = {"customerId": me.id, "positionX": position["x"], "positionY": position["y"]}
    return dto.vehicle(await ctx.call("vehicles", "POST", "/vehicles/requests", body))


@mutation.field("cancelABikeRequest")
@guarded(CUSTOMER)
async def cancel_abike_request(ctx: Context, me: Session) -> bool:
    """Release the called a-bike."""
    await ctx.call("vehicles", "DELETE", f"/vehicles/requests/{seg(me.id)}")
    return True


BINDABLES = [query, mutation, transaction]
