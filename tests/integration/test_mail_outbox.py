"""The durable mail sender over real SMTP: exactly one mail per key through redelivery, an SMTP outage
(on SQLite and PostgreSQL stores) and a crash between the server's acceptance and the row being marked sent."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from junction.clock import VirtualClock
from junction.ids import Snowflake
from junction.mail import Mailer, MailRetry, MailSender, MailSink, message_id
from junction.metrics import exposition
from junction.postgres import postgres_stores
from junction.runtime import Runtime, StoreFactory, System, sqlite_store
from junction.service import Service
from junction.sqlite import SqliteStore
from junction.store import Store
from junction.uow import UnitOfWork
from tests.unit import toy

notify = Service("notify", worker=13)
mailer = Mailer(notify, mail_from="Toy Shop <shop@toy.example>",
                retry=MailRetry(first_delay=0.02, max_delay=0.1, slow_after=5, slow_delay=0.2))


@notify.on("orders", toy.OrderPlaced)
async def confirm(event: toy.OrderPlaced, uow: UnitOfWork) -> None:
    mailer.send(uow, key=f"{event.customer}-{event.seq}", to=f"{event.customer}@example.com",
                subject=f"Order {event.seq} confirmed", text=f"Thank you, {event.customer}.")


SYSTEM = System("toymail", [toy.orders, notify])


class DiesBeforeCheckpoint(toy.DiesBeforeCheckpoint, SqliteStore):
    """A SQLite store whose process dies saving a consumer checkpoint."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A free port the services send to (JUNCTION_SMTP_PORT); no sink listens there yet."""
    port = free_port()
    monkeypatch.delenv("JUNCTION_CONFIG", raising=False)
    monkeypatch.setenv("JUNCTION_SMTP_PORT", str(port))
    yield port


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request: pytest.FixtureRequest) -> StoreFactory:
    """The services' stores: SQLite files, or databases on the test PostgreSQL server (dropped afterwards)."""
    if request.param == "sqlite":
        return sqlite_store
    dsn: str = request.getfixturevalue("postgres_database")
    return postgres_stores(dsn, prefix=f"{dsn.rsplit('/', 1)[-1]}__")


def runtime(data: Path, **kwargs: object) -> Runtime:
    return Runtime(SYSTEM, data / "system", clock=VirtualClock(), retry=toy.FAST_RETRY, poll_interval=0.01,
                   **kwargs)  # type: ignore[arg-type]


async def place(runtime: Runtime, customer: str, seq: int) -> None:
    response = await runtime.client("orders").post("/orders", json={"customer": customer, "seq": seq})
    assert response.status_code == 200, response.text


def subjects(sink: MailSink) -> list[str]:
    return sorted(m["Subject"] for m in sink.mailbox.listing(limit=1000)["messages"])


def sender_status(status: dict[str, object]) -> dict[str, object]:
    return status["services"]["notify"]["background"]["mail-sender"]  # type: ignore[index, no-any-return]


async def test_one_mail_per_key_through_duplicates_and_redelivery(tmp_path: Path, smtp_port: int) -> None:
    def dying(service: Service, data: Path) -> Store:
        if service.name == "notify":
            return DiesBeforeCheckpoint(service.name, data / "notify.db", service.metadata)
        return sqlite_store(service, data)

    async with MailSink(tmp_path / "mail", smtp_port=smtp_port, http_port=0) as sink:
        first = runtime(tmp_path, store_factory=dying)
        await first.start()
        await place(first, "ann", 1)
        await place(first, "ann", 1)  # another event with the same key: queues nothing
        await place(first, "bob", 2)
        with pytest.raises(toy.Killed):
            await first._tasks["notify/handlers:orders"]  # handled (mail rows committed), died before its checkpoint
        await first.crash()

        async with runtime(tmp_path) as second:  # the events are delivered again; the inbox makes that a no-op
            await second.settle()
            assert subjects(sink) == ["Order 1 confirmed", "Order 2 confirmed"]
            assert sink.received - sink.duplicates == 2
            assert sender_status(await second.status())["pending"] == 0
        stored = {m["To"][0]["Address"]: m for m in sink.mailbox.listing()["messages"]}
        assert stored["ann@example.com"]["MessageID"] == message_id("notify", "mail", "ann-1").strip("<>")
        assert stored["ann@example.com"]["From"] == {"Name": "Toy Shop", "Address": "shop@toy.example"}


async def test_sink_down_while_20_mails_are_queued_then_up_gives_exactly_20(tmp_path: Path, smtp_port: int,
                                                                          stores: StoreFactory) -> None:
    async with runtime(tmp_path, store_factory=stores) as system:
        for seq in range(20):
            await place(system, "ann", seq)
        await system.settle()  # consumers caught up; the sender is backing off: nothing it can do now
        status = sender_status(await system.status())
        assert status["pending"] == 20 and status["server_down"] == 1 and status["sent"] == 0
        assert "onnect" in str(status["last_error"])
        assert 'junction_background{figure="pending",service="notify",task="mail-sender"} 20.0' in \
            exposition(await system.status()).decode()

        async with MailSink(tmp_path / "mail", smtp_port=smtp_port, http_port=0) as sink:
            await system.settle()  # waits for the mails now that the server is back
            assert subjects(sink) == sorted(f"Order {seq} confirmed" for seq in range(20))
            assert (sink.received, sink.duplicates) == (20, 0)
            status = sender_status(await system.status())
            assert status["pending"] == 0 and status["server_down"] == 0 and status["sent"] == 20


async def test_the_sender_recovers_by_itself_when_the_server_comes_back(tmp_path: Path, smtp_port: int) -> None:
    async with runtime(tmp_path) as system:
        await place(system, "ann", 1)
        await system.settle()
        sender = mailer.sender(system.service("notify"))
        assert sender.down
        async with MailSink(tmp_path / "mail", smtp_port=smtp_port, http_port=0) as sink:
            async with asyncio.timeout(5):
                while sender.sent == 0:  # no settle, no nudge: its own backoff (at most 0.2 s here) brings it back
                    await asyncio.sleep(0.01)
            assert subjects(sink) == ["Order 1 confirmed"]


async def test_crash_after_the_server_accepted_before_marking_sent_stores_one_mail(
        tmp_path: Path, smtp_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    async def dies(self: MailSender, key: str) -> None:
        raise toy.Killed

    async with MailSink(tmp_path / "mail", smtp_port=smtp_port, http_port=0) as sink:
        with monkeypatch.context() as patch:
            patch.setattr(MailSender, "_mark_sent", dies)
            first = runtime(tmp_path)
            await first.start()
            await place(first, "ann", 1)
            with pytest.raises(toy.Killed):
                await first._tasks["notify/mail-sender"]  # the server has the mail; the row is not marked sent
            assert sink.received == 1
            await first.crash()

        async with runtime(tmp_path) as second:
            await second.settle()
            assert (sink.received, sink.duplicates) == (2, 1)  # sent again, with the same Message-ID
            assert subjects(sink) == ["Order 1 confirmed"]
            assert sender_status(await second.status())["pending"] == 0


async def test_a_refused_mail_is_retried_on_its_own_while_the_others_go(tmp_path: Path, smtp_port: int) -> None:
    async with MailSink(tmp_path / "mail", smtp_port=smtp_port, http_port=0) as sink, runtime(tmp_path) as system:
        accept = sink.accept

        def refuse_bob(raw: bytes, recipients: list[str]) -> bool:
            if "bob@example.com" in recipients:
                raise OSError("disk full")  # the sink answers 451: this mail only
            return accept(raw, recipients)

        sink.accept = refuse_bob  # type: ignore[method-assign]
        await place(system, "bob", 1)
        await place(system, "ann", 2)
        await system.settle()  # does not wait for a refused mail's backoff
        assert subjects(sink) == ["Order 2 confirmed"]
        status = sender_status(await system.status())
        assert status["pending"] == 1 and status["refused"] == 1 and "451" in str(status["last_error"])

        sink.accept = accept  # type: ignore[method-assign]
        async with asyncio.timeout(5):
            while len(subjects(sink)) < 2:  # its own backoff (0.02 s, then more) brings it
                await asyncio.sleep(0.01)
        assert subjects(sink) == ["Order 1 confirmed", "Order 2 confirmed"]


def test_backoff_grows_then_settles_on_the_slow_retry() -> None:
    retry = MailRetry(first_delay=0.1, max_delay=1.0, slow_after=6, slow_delay=30.0)
    assert [retry.delay(n) for n in range(1, 8)] == [0.1, 0.2, 0.4, 0.8, 1.0, 30.0, 30.0]
    assert message_id("notify", "mail", "7") == message_id("notify", "mail", "7") != message_id("notify", "mail", "8")


async def test_a_burst_goes_over_several_connections_each_mail_once(tmp_path: Path, smtp_port: int) -> None:
    async with MailSink(tmp_path / "mail", smtp_port=smtp_port, http_port=0) as sink, runtime(tmp_path) as system:
        sender = mailer.sender(system.service("notify"))
        assert sender.connections > 1
        for seq in range(37):  # not a multiple of the connections: uneven shares
            await place(system, "ann", seq)
        await system.settle()
        assert subjects(sink) == sorted(f"Order {seq} confirmed" for seq in range(37))
        assert (sink.received, sink.duplicates) == (37, 0)
        status = sender_status(await system.status())
        assert status["pending"] == 0 and status["sent"] == 37


async def test_one_replica_sends_and_another_takes_over_when_it_stops(tmp_path: Path, smtp_port: int) -> None:
    async with MailSink(tmp_path / "mail", smtp_port=smtp_port, http_port=0) as sink:
        replica_store = sqlite_store(notify, tmp_path / "system")  # a second process over the same data
        async with runtime(tmp_path) as system:
            await replica_store.open()
            replica = mailer.sender(SimpleNamespace(store=replica_store))
            replica.standby_interval = 0.02
            standing = asyncio.create_task(replica.run())
            try:
                async with asyncio.timeout(20):
                    while not replica.standing_by:
                        await asyncio.sleep(0.01)
                for seq in range(5):
                    await place(system, "ann", seq)
                await system.settle()
                assert (sink.received, replica.sent) == (5, 0)  # the runtime's sender delivered them all
            except BaseException:
                standing.cancel()
                raise
        try:  # the runtime stopped: its sender gave the lease up, the replica takes over
            uow = UnitOfWork(replica_store, VirtualClock(), Snowflake(99))
            for n in range(3):
                mailer.send(uow, key=f"later-{n}", to="bob@example.com", subject=f"Later {n}", text="Hello.")
            await uow.commit()
            async with asyncio.timeout(20):
                while sink.received < 8:
                    await asyncio.sleep(0.02)
            assert replica.leased and replica.sent == 3 and sink.duplicates == 0
        finally:
            standing.cancel()
            await asyncio.gather(standing, return_exceptions=True)
            await replica_store.close()
