"""Fault tests on the distributed ebike: acknowledged writes survive a kill -9 and a broker restart, exactly once.

One `junction up ebike --distributed` (PostgreSQL, a Kafka broker, one process per service under the
supervisor) serves the module. Riders (customers, each with a vehicle of their own) pay, have their
payments confirmed by an admin, and start and stop rentals through the gateway's public GraphQL API,
concurrently, while a service process is SIGKILLed (the supervisor restarts it) or the broker is
killed and started again. Each rider records the writes the API acknowledged, and learns the outcome
of the others the way a client would (a later "payment already confirmed", "rental already ended" or
"customer already has an active rental"). Once the system is quiet, `verify` reads every projection
and compares it with the write side and with those records: every acknowledged write is there, a
write that failed is either wholly there or wholly absent, and nothing is counted twice.

Platform time runs ten times faster than real time (`--time-scale 10`): the per-minute charges of
rentals (durable timers) then happen during the test, a credit hold expires after 1 s, and a
gateway's circuit breaker, open after a service died, tries again after 3 s instead of 30 s.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import httpx
import pytest

from ebike.contracts.fees import CHARGE_PERIOD_SECONDS, PER_MINUTE_FEE, UNLOCK_FEE
from junction.kafka.broker import KafkaBroker
from tests.integration.deployment import Up, junction, running

pytestmark = pytest.mark.slow

TIME_SCALE = 10
PASSWORD = "password123"
SERVICES = ("auth", "accounting", "rentals", "stations", "vehicles", "customers")
# Killed in turn during one stream, the processes that take the writes: accounting (the money) and
# rentals (the rentals and their charge timers). Then, together, the two that only consume the others'
# events into the views checked here (vehicles: availability and the twin; customers: balance and
# active rental); the stream ends while they are down, so each comes back to a backlog.
WRITERS = ("accounting", "rentals")
CONSUMERS = ("vehicles", "customers")
INITIAL_CREDIT, TOP_UP = 1000, 150  # a round tops up more than it costs: no rider runs out of credit
QUIET_WITHIN = 60.0  # seconds for every projection to agree once the stream has ended

LOGIN = "mutation($u:String!,$p:String!){login(username:$u,password:$p){id}}"
REGISTER_ADMIN = "mutation($u:String!,$p:String!){registerAdmin(username:$u,password:$p){id}}"
REGISTER = "mutation($u:String!,$p:String!){registerCustomer(username:$u,password:$p){id}}"
CREATE_VEHICLE = "mutation($t:VehicleType!){createVehicle(input:{type:$t,position:{x:1,y:1}}){id}}"
CREATE_PAYMENT = "mutation($a:Int!){createPayment(amount:$a){id}}"
CONFIRM = "mutation($id:ID!){confirmPayment(id:$id){status}}"
START = "mutation($v:ID!){startRental(vehicleId:$v){id}}"
STOP = "mutation($id:ID!){stopRental(id:$id){id}}"
ACTIVE = "{activeRental{id start cost}}"
PAST = "{pastRentals{id start end cost}}"
TRANSACTIONS = "{transactions{__typename ... on Payment{id amount status} ... on Expense{id amount rentalId}}}"
BALANCE = "{creditBalance}"
CUSTOMERS = "{customers{id name creditBalance activeRental{id vehicleId cost}}}"
VEHICLES = "{vehicles{id type available status activeRental{id customerId cost}}}"
AVAILABLE = "{availableVehicles{id}}"


class Answer(NamedTuple):
    """What the API said to one operation: its value, or the first error's message and code."""

    value: Any = None
    error: str | None = None
    code: str | None = None

    @property
    def ok(self) -> bool:
        """Acknowledged: the operation succeeded."""
        return self.error is None


async def gql(http: httpx.AsyncClient, query: str, **variables: Any) -> Answer:
    """POST one operation; transport failures are answers too (the outcome of a write is then unknown)."""
    try:
        response = await http.post("/graphql", json={"query": query, "variables": variables})
        answer = response.json()
    except (httpx.HTTPError, ValueError) as error:
        return Answer(error=repr(error), code="TRANSPORT")
    if answer.get("errors"):
        first = answer["errors"][0]
        return Answer(error=first["message"], code=(first.get("extensions") or {}).get("code"))
    (value,) = answer["data"].values()
    return Answer(value)


async def read(http: httpx.AsyncClient, query: str, **variables: Any) -> Any:
    """The value of an operation that must succeed (an AssertionError otherwise, so `eventually` tries again)."""
    answer = await gql(http, query, **variables)
    assert answer.ok, f"{query}: {answer.error}"
    return answer.value


def timestamp(text: str) -> float:
    """Unix seconds of an RFC 3339 platform time."""
    return datetime.fromisoformat(text).timestamp()


def marks(start: str, until: float, inclusive: bool = False) -> int:
    """How many per-minute marks (start + 60 s·m, m ≥ 1) lie before ``until`` (or at it, when ``inclusive``)."""
    elapsed = until - timestamp(start)
    whole = math.floor(elapsed / CHARGE_PERIOD_SECONDS)
    if not inclusive and whole * CHARGE_PERIOD_SECONDS >= elapsed:
        whole -= 1  # a mark exactly at the end is not reached (rentals charges marks strictly before it)
    return max(0, whole)


@dataclass
class Rider:
    """A customer of the stream with a vehicle of their own, and the writes the API acknowledged."""

    name: str
    http: httpx.AsyncClient
    vehicle: str
    vehicle_type: str
    id: str = ""
    phase: str = "setup"
    payments: set[str] = field(default_factory=set)  # created (acknowledged)
    confirmed: set[str] = field(default_factory=set)  # confirmed (acknowledged, or proven by a conflict)
    unconfirmed: list[str] = field(default_factory=list)  # created, confirmation not known yet
    started: set[str] = field(default_factory=set)  # rentals the rider knows to exist
    stopped: set[str] = field(default_factory=set)  # rentals the rider knows to have ended
    active: str | None = None
    rounds: int = 0  # rounds in which every write was acknowledged
    unknown: list[tuple[str, str, str]] = field(default_factory=list)  # (phase, operation, error): outcome unknown

    def _unknown(self, operation: str, answer: Answer) -> None:
        self.unknown.append((self.phase, operation, answer.error or ""))

    async def pay(self, admin: httpx.AsyncClient, amount: int) -> bool:
        """Create a payment, then confirm every payment still unconfirmed; True when all was acknowledged."""
        created = await gql(self.http, CREATE_PAYMENT, a=amount)
        if created.ok:
            self.payments.add(created.value["id"])
            self.unconfirmed.append(created.value["id"])
        else:
            self._unknown("createPayment", created)
        for payment in list(self.unconfirmed):
            confirmed = await gql(admin, CONFIRM, id=payment)
            if confirmed.ok or confirmed.error == "payment already confirmed":  # an unanswered confirm went through
                self.confirmed.add(payment)
                self.unconfirmed.remove(payment)
            else:
                self._unknown("confirmPayment", confirmed)
        return created.ok and not self.unconfirmed

    async def start(self) -> bool:
        """Rent the rider's vehicle; True when the rider then knows its active rental."""
        started = await gql(self.http, START, v=self.vehicle)
        if started.ok:
            self.active = started.value["id"]
            self.started.add(started.value["id"])
            return True
        if started.error == "customer already has an active rental":  # an unanswered start went through
            return await self.learn()
        if started.code not in ("NOT_FOUND", "BAD_USER_INPUT"):  # unknown vehicle yet, or not enough credit
            self._unknown("startRental", started)
        return False

    async def stop(self) -> bool:
        """End the active rental; True when it is known to have ended."""
        assert self.active is not None
        stopped = await gql(self.http, STOP, id=self.active)
        if stopped.ok or stopped.error == "rental already ended":  # an unanswered stop went through
            self.stopped.add(self.active)
            self.active = None
            return True
        self._unknown("stopRental", stopped)
        return False

    async def learn(self) -> bool:
        """Ask which rental is active (after writes whose outcome is unknown); True when answered."""
        answer = await gql(self.http, ACTIVE)
        if not answer.ok:
            return False
        if answer.value is None:
            if self.active is not None:  # an unanswered stop went through
                self.stopped.add(self.active)
        else:
            self.started.add(answer.value["id"])
        self.active = answer.value["id"] if answer.value else None
        return True

    async def round(self, admin: httpx.AsyncClient) -> None:
        """Top up, rent, return; a round counts when every write of it was acknowledged."""
        paid = await self.pay(admin, TOP_UP)
        rode = (self.active is not None or await self.start()) and await self.stop()
        if paid and rode:
            self.rounds += 1
        else:
            await asyncio.sleep(0.1)  # something is down: do not spin against it

    async def finish(self, admin: httpx.AsyncClient, keep_active: bool, timeout: float = 60.0) -> None:
        """Leave the rider in a known state: payments confirmed, one active rental or none."""
        deadline = time.monotonic() + timeout
        while True:
            if await self.learn() and not self.unconfirmed and (self.active is not None) == keep_active:
                return
            if self.unconfirmed:
                await self.pay(admin, TOP_UP)
            if keep_active and self.active is None:
                await self.start()
            elif not keep_active and self.active is not None:
                await self.stop()
            assert time.monotonic() < deadline, f"{self.name} could not finish: {self.unknown[-3:]}"
            await asyncio.sleep(0.1)

    async def check(self, customers: dict[str, Any], vehicles: dict[str, Any], available: set[str],
                    platform_now: Callable[[], Awaitable[float]]) -> None:
        """This rider's writes against accounting, rentals and the customers and vehicles projections."""
        transactions = await read(self.http, TRANSACTIONS)
        now = await platform_now()  # after the expenses were read: no later charge is counted below
        balance, active, past = [await read(self.http, q) for q in (BALANCE, ACTIVE, PAST)]
        payments = {t["id"]: t for t in transactions if t["__typename"] == "Payment"}
        expenses = [t for t in transactions if t["__typename"] == "Expense"]
        who = f"{self.name} ({self.id})"

        # payments: the acknowledged ones are there once, with their status; unknown ones only from
        # unanswered creates, and nobody confirmed those
        assert len(payments) == sum(t["__typename"] == "Payment" for t in transactions), f"{who}: duplicated payments"
        assert self.payments <= payments.keys(), f"{who}: acknowledged payments missing"
        assert all(payments[p]["status"] == "CONFIRMED" for p in self.confirmed), f"{who}: confirmation lost"
        strays = payments.keys() - self.payments
        assert len(strays) <= sum(op == "createPayment" for _, op, _ in self.unknown), f"{who}: unknown payments"
        assert all(payments[p]["status"] == "PENDING" for p in strays), f"{who}: a payment confirmed by nobody"

        # rentals: each once, exactly those the rider knows; the acknowledged stops ended them
        past_ids = [r["id"] for r in past]
        assert len(set(past_ids)) == len(past_ids), f"{who}: a rental listed twice"
        assert (active or {}).get("id") == self.active, f"{who}: active rental {active} != {self.active}"
        assert set(past_ids) == self.stopped, f"{who}: past rentals {set(past_ids) ^ self.stopped} differ"
        assert set(past_ids) | ({self.active} - {None}) == self.started, f"{who}: rentals differ from those started"

        # expenses: one unlocking fee per rental and one fee per minute mark reached, nothing else;
        # each rental's cost (projected from accounting's events) is their sum
        fees: dict[str, list[int]] = collections.defaultdict(list)
        for expense in expenses:
            fees[expense["rentalId"]].append(expense["amount"])
        assert fees.keys() == self.started, f"{who}: expenses of rentals {fees.keys() ^ self.started}"
        unlock, minute = UNLOCK_FEE[self.vehicle_type], PER_MINUTE_FEE[self.vehicle_type]
        for rental in past:
            expected = [unlock] + [minute] * marks(rental["start"], timestamp(rental["end"]))
            charged = fees[rental["id"]]
            assert sorted(charged) == sorted(expected), f"{who}: rental {rental} charged {charged}"
            assert rental["cost"] == sum(expected), f"{who}: rental {rental} cost != {sum(expected)}"
        if active is not None:
            charged = fees[active["id"]]
            assert charged.count(unlock) == 1 and all(f in (unlock, minute) for f in charged), f"{who}: {charged}"
            assert len(charged) - 1 <= marks(active["start"], now, inclusive=True), f"{who}: overcharged {charged}"
            assert active["cost"] == sum(charged), f"{who}: active rental {active} cost != {sum(charged)}"

        # the balance (accounting's write side) is confirmed payments minus expenses (no hold is live)
        credit = sum(p["amount"] for p in payments.values() if p["status"] == "CONFIRMED")
        assert balance == credit - sum(e["amount"] for e in expenses), f"{who}: balance {balance}"

        # the customers projection: the same balance and active rental
        view = customers[self.id]
        assert view["creditBalance"] == balance, f"{who}: customers view {view} != balance {balance}"
        if active is None:
            assert view["activeRental"] is None, f"{who}: customers view {view} shows a rental"
        else:
            assert view["activeRental"] == {"id": active["id"], "vehicleId": self.vehicle, "cost": active["cost"]}, \
                f"{who}: customers view {view} != {active}"

        # the vehicles projection: rented exactly while the rental is active
        vehicle = vehicles[self.vehicle]
        if active is None:
            assert vehicle["available"] and vehicle["status"] == "AVAILABLE" and vehicle["activeRental"] is None, \
                f"{who}: vehicle {vehicle} should be available"
            assert self.vehicle in available, f"{who}: vehicle {vehicle} not in availableVehicles"
        else:
            rented = {"id": active["id"], "customerId": self.id, "cost": active["cost"]}
            assert not vehicle["available"] and vehicle["status"] == "RENTED" and vehicle["activeRental"] == rented, \
                f"{who}: vehicle {vehicle} should be rented by {rented}"
            assert self.vehicle not in available, f"{who}: rented vehicle {vehicle} in availableVehicles"


@dataclass
class Stream:
    """Riders riding concurrently until stopped."""

    prefix: str
    riders: list[Rider]
    admin: httpx.AsyncClient
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    began: float = field(default_factory=time.monotonic)

    def begin(self) -> None:
        """Every rider starts riding."""
        self.tasks = [asyncio.create_task(self._ride(rider)) for rider in self.riders]

    async def _ride(self, rider: Rider) -> None:
        while not self.stopping.is_set():
            await rider.round(self.admin)

    def enter(self, phase: str) -> None:
        """Label what happens from now on (for the riders' records of unknown outcomes)."""
        print(f"{time.monotonic() - self.began:7.1f} s  {phase}")  # the timeline, shown when a test fails
        for rider in self.riders:
            rider.phase = phase

    async def rounds(self, more: int = 1, timeout: float = 60.0) -> None:
        """Wait until every rider has completed ``more`` further fully acknowledged rounds."""
        targets = [rider.rounds + more for rider in self.riders]
        deadline = time.monotonic() + timeout
        while any(r.rounds < target for r, target in zip(self.riders, targets, strict=True)):
            for task in self.tasks:
                if task.done():
                    task.result()  # a rider crashed: raise its error here
            if time.monotonic() > deadline:
                late = [(r.name, r.rounds, r.unknown[-2:]) for r, t in zip(self.riders, targets, strict=True)
                        if r.rounds < t]
                raise AssertionError(f"riders did not complete a round in {timeout} s: {late}")
            await asyncio.sleep(0.05)

    async def end(self, keep_active: Callable[[int], bool]) -> None:
        """Stop riding; then leave every rider in a known state (rider ``i`` renting when ``keep_active(i)``)."""
        self.stopping.set()
        await asyncio.gather(*self.tasks)
        await asyncio.gather(*(rider.finish(self.admin, keep_active(i)) for i, rider in enumerate(self.riders)))

    def unknown(self, phase: str) -> list[tuple[str, str, str]]:
        """Writes of ``phase`` whose outcome the API did not tell."""
        return [(rider.name, op, error) for rider in self.riders for p, op, error in rider.unknown if p == phase]


@contextlib.asynccontextmanager
async def stream_of(up: Up, prefix: str, count: int) -> AsyncIterator[Stream]:
    """``count`` registered riders (named ``prefix``-i) with credit and a vehicle each, and an admin."""
    async with contextlib.AsyncExitStack() as stack:
        def client() -> httpx.AsyncClient:
            return httpx.AsyncClient(base_url=up.base, timeout=20)  # a browser: its own cookie jar

        admin = await stack.enter_async_context(client())
        await read(admin, LOGIN, u="admin1", p=PASSWORD)
        types = ["BIKE", "EBIKE"]
        vehicles = [await read(admin, CREATE_VEHICLE, t=types[i % 2]) for i in range(count)]
        riders = [Rider(f"{prefix}-{i}", await stack.enter_async_context(client()), v["id"], types[i % 2])
                  for i, v in enumerate(vehicles)]
        registered = await asyncio.gather(*(read(r.http, REGISTER, u=r.name, p=PASSWORD) for r in riders))
        for rider, user in zip(riders, registered, strict=True):
            rider.id = user["id"]
            assert await rider.pay(admin, INITIAL_CREDIT)
        stream = Stream(prefix, riders, admin)
        try:
            yield stream
        finally:
            stream.stopping.set()
            await asyncio.gather(*stream.tasks, return_exceptions=True)
            # end the rentals left running, so that their per-minute charges do not run on into the next test
            await asyncio.gather(*(rider.stop() for rider in riders if rider.active), return_exceptions=True)


async def eventually(check: Callable[[], Awaitable[None]], timeout: float, what: str) -> None:
    """Run ``check`` until it passes; after ``timeout`` seconds its last failure is the test's."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await check()
            return
        except AssertionError as failure:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not within {timeout} s: {failure}") from failure
        await asyncio.sleep(0.25)


async def verify(up: Up, stream: Stream) -> None:
    """Once quiet, every projection agrees with the write side and with every rider's records, exactly once."""
    async with httpx.AsyncClient(timeout=20) as operator:
        async def platform_now() -> float:
            return timestamp((await operator.get(f"{up.base}/health")).json()["time"])

        async def check() -> None:
            for name in SERVICES:  # caught up and nothing parked, as each process sees it
                report = (await operator.get(f"{up.service_url(name)}/_junction/status")).json()
                for service in report["services"].values():
                    lags = {c: s["lag"] for c, s in service["consumers"].items() if s["lag"]}
                    assert not lags and not service["parked"], f"{name}: lag {lags}, {service['parked']} parked"
            customers = {c["id"]: c for c in await read(stream.admin, CUSTOMERS)}
            vehicles = {v["id"]: v for v in await read(stream.admin, VEHICLES)}
            available = {v["id"] for v in await read(stream.admin, AVAILABLE)}
            mine = [c["name"] for c in customers.values() if c["name"].startswith(f"{stream.prefix}-")]
            assert sorted(mine) == sorted(r.name for r in stream.riders), f"customers view lists {mine}"
            failures = []
            for rider in stream.riders:
                try:
                    await rider.check(customers, vehicles, available, platform_now)
                except AssertionError as failure:
                    failures.append(str(failure).splitlines()[0])
            assert not failures, "\n".join(failures)

        async def drained() -> None:
            report = json.loads(await run_junction("status", "ebike", "--data-dir", str(up.data), "--json"))
            behind = {f"{name}/{consumer}": c["lag"] for name, service in report["services"].items()
                      for consumer, c in service["consumers"].items() if c["lag"]}
            relays = {name: service["relay_lag"] for name, service in report["services"].items()
                      if service["relay_lag"]}
            assert not behind and not relays, f"consumers behind {behind}, relays behind {relays}"

        await eventually(check, QUIET_WITHIN, "every projection agreeing with every acknowledged write")
        # Then every outbox relayed and every group's offsets committed: nothing already written is in
        # flight any more (a batch published twice, say), and the views still agree after it arrived.
        await eventually(drained, QUIET_WITHIN, "every relay and consumer drained")
        await eventually(check, QUIET_WITHIN, "every projection still agreeing")
    parked = await run_junction("dlq", "list", "ebike", "--data-dir", str(up.data), "--json")
    assert json.loads(parked) == [], f"parked messages: {parked}"


async def run_junction(*args: str) -> str:
    """Run the junction command line; its standard output (it must succeed)."""
    process = await asyncio.create_subprocess_exec(*junction(*args), stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, f"junction {' '.join(args)}: {err.decode()}"
    return out.decode()


def wait_gone(broker: KafkaBroker, timeout: float = 30.0) -> None:
    """Wait until the broker's process has exited."""
    deadline = time.monotonic() + timeout
    while broker.pid() is not None:
        assert time.monotonic() < deadline, "the broker did not die"
        time.sleep(0.05)


async def run_module(module: str, *args: str) -> None:
    """``python -m module *args``, which must succeed."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", module, *args,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, f"{module} {' '.join(args)}: {out.decode()}{err.decode()}"


@pytest.fixture(scope="module")
def ebike(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """ebike under `junction up --distributed`, platform time ten times faster, with its first admin."""
    with running("ebike", tmp_path_factory.mktemp("faults"), "--distributed", "--time-scale", str(TIME_SCALE)) as up:
        with httpx.Client(base_url=up.base, timeout=20) as admin:
            answer = admin.post("/graphql", json={"query": REGISTER_ADMIN, "variables": {"u": "admin1", "p": PASSWORD}})
            assert "errors" not in answer.json(), answer.text
        yield up


async def test_a_killed_service_process_loses_no_acknowledged_write_and_doubles_none(ebike: Up) -> None:
    async with stream_of(ebike, "kill", 4) as stream:
        stream.begin()
        stream.enter("riding")
        await stream.rounds()  # every rider's vehicle is known to rentals, every service takes writes
        for victim in WRITERS:
            stream.enter(f"{victim} killed")
            pid = ebike.kill(victim)
            restarted = await asyncio.to_thread(ebike.wait_restarted, victim, pid)
            stream.enter(f"{victim} restarted as {restarted}")
            await stream.rounds()  # the stream goes on: every rider had a whole round acknowledged since
        # the kills landed mid-stream: writes to the processes that take them failed meanwhile
        assert all(stream.unknown(f"{victim} killed") for victim in WRITERS)

        # Each view comes back to a backlog holding several rentals of each customer and vehicle, one
        # stream per rental: it must apply them in commit order (see tests/contract/test_kafka_order.py).
        stream.enter("consumers killed")
        pids = {victim: ebike.kill(victim) for victim in CONSUMERS}
        await stream.rounds()  # no write waits for a view
        stream.enter("ending")
        await stream.end(keep_active=lambda i: i % 3 == 0)  # the last rentals start while no view follows
        assert stream.unknown("consumers killed") == stream.unknown("ending") == []
        for victim, pid in pids.items():
            await asyncio.to_thread(ebike.wait_restarted, victim, pid)
        stream.enter("verifying")
        await verify(ebike, stream)
        stream.enter("verified")


async def test_writes_go_on_while_the_broker_is_down_and_reach_every_projection_once(ebike: Up) -> None:
    broker = KafkaBroker.at(ebike.data / "kafka")
    async with stream_of(ebike, "broker", 4) as stream:
        stream.begin()
        stream.enter("riding")
        await stream.rounds()
        pid = broker.pid()
        assert pid is not None
        stream.enter("broker killed")
        os.kill(pid, signal.SIGKILL)
        await asyncio.to_thread(wait_gone, broker)
        await stream.rounds(2)  # the services take writes without the broker: their outbox holds the events
        stream.enter("ending")
        await stream.end(keep_active=lambda i: i % 2 == 0)
        assert stream.unknown("broker killed") == stream.unknown("ending") == []
        stream.enter("broker restarting")  # as an operator would: scripts/kafka.sh start, same home and ports
        await run_module("junction.kafka.broker", "start", "--home", str(broker.home), "--port", str(broker.port),
                         "--controller-port", str(broker.controller_port))
        stream.enter("verifying")
        await verify(ebike, stream)
        stream.enter("verified")

