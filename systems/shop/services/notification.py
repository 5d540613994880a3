"""notification: the reference's confirmation e-mail for every placed order, exactly once.

The mail is queued in the same transaction as the handled event's inbox row (``junction.mail``), keyed
by the order number, and a background sender delivers it over SMTP: an order placed while the mail
server (or, distributed, Kafka) is down is e-mailed once it is back, and never twice.
"""

from __future__ import annotations

from junction.config import load as load_config
from junction.mail import Mailer
from junction.service import Service
from junction.uow import UnitOfWork
from shop.contracts.events import OrderPlaced

service = Service("notification", worker=3)
mailer = Mailer(service, mail_from="zelilab4@email.com")  # the reference's sender (``mail_from`` overrides it)

SIGNATURE = "Spring Shop"  # the reference's; ``mail_signature`` overrides it


def subject(order_number: str) -> str:
    """The reference's subject line."""
    return f"Your Order with OrderNumber {order_number} is placed successfully"


def text(event: OrderPlaced, signature: str = SIGNATURE) -> str:
    """The reference's body, line for line (its text block: no space after the comma)."""
    return (f"Hi {event.first_name},{event.last_name}\n\n"
            f"Your order with order number {event.order_number} is now placed successfully.\n\n"
            f"Best Regards\n{signature}\n")


@service.on("order", OrderPlaced)
async def confirm(event: OrderPlaced, uow: UnitOfWork) -> None:
    """Queue the confirmation (a redelivered event queues nothing: the key is the order number)."""
    signature = load_config().get("mail_signature") or SIGNATURE
    mailer.send(uow, key=event.order_number, to=event.email, subject=subject(event.order_number),
                text=text(event, signature))
