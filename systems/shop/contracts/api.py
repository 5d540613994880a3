"""The shop's external REST API (spec section 2): request bodies and the reference's plain-text answers.

Bodies are camelCase JSON, validated strictly: a wrong type is invalid input (a quoted number is not a
quantity, ``null`` is not a price), as are a blank SKU and a quantity that is not positive, and the
services answer it with the reference's 409 texts.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, RootModel
from pydantic.alias_generators import to_camel

INVENTORY_CREATED = "Inventory created successfully"
INVENTORY_FAILED = "Inventory creation failed"
ORDER_PLACED = "Order placement completed successfully"
ORDER_FAILED = "Order placement failed"
UNAVAILABLE = "Service Unavailable, please try again later"
INVALID_BODY = "invalid request body"

INT32_MAX = 2**31 - 1  # quantities travel as int32 over gRPC


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _json_number(value: Any) -> Decimal:
    """A JSON number as a Decimal, digit for digit (29.99 stays 29.99); anything else is invalid."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("must be a number")
    decimal = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not decimal.is_finite():
        raise ValueError("must be a finite number")
    return decimal


NonBlank = Annotated[str, AfterValidator(_not_blank)]
Quantity = Annotated[int, Field(gt=0, le=INT32_MAX)]
Price = Annotated[Decimal, BeforeValidator(_json_number), Field(ge=0, strict=False)]


class Body(BaseModel):
    """A request body: camelCase names only, strict types, unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, strict=True, extra="ignore")


class NewInventory(Body):
    """``POST /api/inventory``."""

    sku_code: NonBlank
    quantity: Quantity


class SkuCodes(RootModel[list[str]]):
    """``GET /api/inventory``'s JSON array body."""

    model_config = ConfigDict(strict=True)


class UserDetails(Body):
    """Who orders, and where the confirmation goes."""

    user_id: NonBlank
    email: NonBlank
    first_name: str
    last_name: str


class OrderRequest(Body):
    """``POST /api/order``; its ``orderNumber`` is ignored (the server makes one, as the running reference)."""

    sku_code: NonBlank
    price: Price
    quantity: Quantity
    user_details: UserDetails


CENT = Decimal("0.01")
MAX_CENTS = 2**63 - 1  # what a store's BIGINT holds


def total_cents(price: Decimal, quantity: int) -> int | None:
    """price x quantity in cents, rounded half up to the cent (29.99 x 2 = 5998); None when no store holds it."""
    total = price * quantity
    if total * 100 > MAX_CENTS:  # checked before rounding: quantize fails beyond the context's 28 digits
        return None
    return int(total.quantize(CENT, ROUND_HALF_UP) * 100)


def money_json(cents: int) -> str:
    """An amount as JSON number text, exact at any size: ``59.98``, or ``450`` when it has no cents (as the
    reference's BigDecimal prints 30 x 15)."""
    whole, part = divmod(cents, 100)
    return str(whole) if part == 0 else f"{whole}.{part:02d}"
