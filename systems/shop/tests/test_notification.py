"""notification: the reference's e-mail for each placed order, exactly once, even across an SMTP outage."""

from __future__ import annotations

import pytest

from junction.mail import MailSink
from shop.tests.conftest import Shop


async def test_one_mail_per_placed_order_with_the_reference_texts(shop: Shop) -> None:
    await shop.create("SKU001", 10)
    assert (await shop.order("SKU001", 2))[0] == 201
    assert (await shop.order("SKU001", 20))[0] == 409  # no mail for a refused order
    await shop.settle()
    (number,) = [o["orderNumber"] for o in await shop.orders("user123")]
    (mail,) = await shop.mails()
    assert mail["From"]["Address"] == "zelilab4@email.com"
    assert [to["Address"] for to in mail["To"]] == ["user@example.com"]
    assert mail["Subject"] == f"Your Order with OrderNumber {number} is placed successfully"
    assert mail["Text"].replace("\r\n", "\n") == (
        f"Hi John,Doe\n\nYour order with order number {number} is now placed successfully.\n\n"
        "Best Regards\nSpring Shop\n")


async def test_the_signature_is_a_setting(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUNCTION_MAIL_SIGNATURE", "Junction Shop")
    await shop.create("SKU001", 10)
    await shop.order("SKU001", 1)
    await shop.settle()
    (mail,) = await shop.mails()
    assert mail["Text"].replace("\r\n", "\n").endswith("Best Regards\nJunction Shop\n")


async def test_orders_placed_while_the_mail_server_is_down_are_mailed_once_when_it_is_back(shop: Shop) -> None:
    """The fault test: the SMTP sink is stopped, 20 orders are placed (all 201), the sink comes back on
    the same port: exactly 20 mails, one per order, none twice."""
    await shop.create("SKU001", 100)
    port, directory = shop.sink.smtp_port, shop.sink.data_dir
    await shop.sink.stop()
    for _ in range(20):
        assert (await shop.order("SKU001", 1))[0] == 201
    await shop.settle()  # consumers caught up; the sender is idle because the server is down
    shop.sink = MailSink(directory, smtp_port=port, http_port=0)
    await shop.sink.start()
    try:
        await shop.settle()  # the sender sees the server back and delivers
        numbers = sorted(o["orderNumber"] for o in await shop.orders("user123"))
        mails = await shop.mails()
        assert sorted(m["Subject"].split()[4] for m in mails) == numbers
        assert len(numbers) == 20
    finally:
        await shop.sink.stop()
