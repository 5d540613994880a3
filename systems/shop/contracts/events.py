"""shop events. Payloads serialise in camelCase, so ``OrderPlaced`` is the reference's ``OrderPlacedEvent``
field for field (``order-placed.avsc``)."""

from __future__ import annotations

from junction.events import Event


class OrderPlaced(Event):
    """An order was stored (with this event, in one transaction): its customer is to be told by e-mail."""

    order_number: str
    email: str
    first_name: str
    last_name: str
