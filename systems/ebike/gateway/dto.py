"""From the services' DTOs (camelCase JSON of spec section 5) to the GraphQL types' shapes.

Every function takes one DTO dict and returns a dict whose keys are the GraphQL fields, so the
default resolvers serve it.
"""

from __future__ import annotations

from typing import Any

Dto = dict[str, Any]


def vec(x: float, y: float) -> Dto:
    """A Vec2d."""
    return {"x": x, "y": y}


def position_of(dto: Dto) -> Dto:
    """The Vec2d of a DTO's ``positionX``/``positionY``."""
    return vec(dto["positionX"], dto["positionY"])


def user(dto: Dto) -> Dto:
    """User."""
    return {"id": dto["id"], "username": dto["username"], "role": dto["role"], "lastLogin": dto.get("lastLogin")}


def payment(dto: Dto) -> Dto:
    """Payment (``customer`` is null, as in the reference)."""
    return {"__typename": "Payment", "id": dto["id"], "amount": dto["amount"], "status": dto["status"],
            "createdAt": dto["createdAt"], "customer": None}


def expense(dto: Dto) -> Dto:
    """Expense."""
    return {"__typename": "Expense", "id": dto["id"], "amount": dto["amount"], "createdAt": dto["createdAt"],
            "customer": None, "rentalId": dto.get("rentalId")}


def rental(dto: Dto | None) -> Dto | None:
    """Rental (null stays null)."""
    if dto is None:
        return None
    return {"id": dto["id"], "start": dto["start"], "end": dto.get("end"), "cost": dto.get("cost")}


def active_rental(dto: Dto | None) -> Dto | None:
    """CustomerRental / VehicleRental (the same fields)."""
    if dto is None:
        return None
    return {"id": dto["id"], "vehicleId": dto["vehicleId"], "customerId": dto["customerId"],
            "vehicleType": dto["vehicleType"], "start": dto["start"], "cost": dto["cost"]}


def customer(dto: Dto) -> Dto:
    """Customer."""
    return {"id": dto["id"], "name": dto["name"], "position": position_of(dto), "creditBalance": dto["creditBalance"],
            "activeRental": active_rental(dto.get("activeRental")), "lastLogin": dto.get("lastLogin")}


def station(dto: Dto) -> Dto:
    """Station."""
    return {"id": dto["id"], "name": dto["name"], "position": position_of(dto), "createdAt": dto["createdAt"]}


def vehicle(dto: Dto) -> Dto:
    """Vehicle (``available`` is ``status == AVAILABLE``)."""
    target = dto.get("target")
    return {"id": dto["id"], "type": dto["type"], "position": position_of(dto), "battery": dto["battery"],
            "available": dto["status"] == "AVAILABLE", "status": dto["status"],
            "target": vec(target["x"], target["y"]) if target else None,
            "activeRental": active_rental(dto.get("activeRental")), "createdAt": dto["createdAt"]}
