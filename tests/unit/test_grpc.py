"""The gRPC block: stubs generated from a .proto, a servicer served by the runtime with a unit of work per
call, errors as status codes, clients that call with a deadline, ports and peers from the configuration."""

from __future__ import annotations

import asyncio
import importlib
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from sqlalchemy import Column, String, select

from junction.config import Config
from junction.errors import BadRequest, ConcurrencyError, ConfigError, NotFound
from junction.grpc import GrpcClient, GrpcConfig, codegen
from junction.runtime import Runtime, System
from junction.service import Service
from junction.uow import UnitOfWork

PROTO = """syntax = "proto3";
package junction.tests.echo;
service Echo { rpc Say(Text) returns (Text); }
message Text { string value = 1; }
"""


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated service module of a toy system's proto, as the build hook makes it."""
    root = tmp_path_factory.mktemp("project")
    package = f"toy{uuid.uuid4().hex[:8]}"
    contracts = root / "systems" / package / "contracts"
    contracts.mkdir(parents=True)
    for init in (contracts.parent / "__init__.py", contracts / "__init__.py"):
        init.write_text("")
    (contracts / "echo-service.proto").write_text(PROTO)
    written = codegen.generate(root)
    assert sorted(p.name for p in written) == [
        "echo_service_pb2.py", "echo_service_pb2.pyi", "echo_service_pb2_grpc.py"]
    sys.path.insert(0, str(root / "systems"))
    try:
        yield importlib.import_module(f"{package}.contracts.echo_service_pb2_grpc")  # imports its _pb2 by package
    finally:
        sys.path.remove(str(root / "systems"))


def echo_system(echo: ModuleType, port: int = 0) -> tuple[System, list[str]]:
    """A system whose service ``echo`` answers Say and records what it said; also the calls it saw."""
    messages = importlib.import_module(echo.__name__.removesuffix("_grpc"))
    service = Service("echo", worker=1)
    said = service.table("said", Column("value", String, primary_key=True))
    calls: list[str] = []

    @service.grpc(echo.add_EchoServicer_to_server, port=port)
    class Echo:
        async def Say(self, request: Any, uow: UnitOfWork, context: Any) -> Any:
            calls.append(request.value)
            match request.value:
                case "invalid":
                    raise BadRequest("say something")
                case "missing":
                    raise NotFound("nothing to say")
                case "boom":
                    raise RuntimeError("secret detail")
                case "abort":
                    await context.abort(grpc.StatusCode.ALREADY_EXISTS, "said before")
                case "race" if calls.count("race") == 1:
                    raise ConcurrencyError("said")
                case "slow":
                    await asyncio.sleep(1)
            uow.execute(said.insert().values(value=request.value))
            return messages.Text(value=request.value.upper())

    return System("toy", [service]), calls


@pytest.fixture
async def runtime(echo: ModuleType, tmp_path: Path) -> AsyncIterator[Runtime]:
    system, _ = echo_system(echo)
    async with Runtime(system, tmp_path) as running:
        yield running


def stub(runtime: Runtime, echo: ModuleType) -> Any:
    return runtime.transport.channels.stub("echo", echo.EchoStub)


def text(echo: ModuleType, value: str) -> Any:
    return importlib.import_module(echo.__name__.removesuffix("_grpc")).Text(value=value)


async def test_a_method_gets_a_unit_of_work_committed_after_it_answers(runtime: Runtime, echo: ModuleType) -> None:
    answer = await stub(runtime, echo).Say(text(echo, "hello"), timeout=5)
    assert answer.value == "HELLO"
    table = runtime.system.service("echo").metadata.tables["said"]
    assert [r["value"] for r in await runtime.service("echo").store.fetch_all(select(table))] == ["hello"]
    assert runtime.grpc.addresses["echo"].startswith("127.0.0.1:")


@pytest.mark.parametrize(("value", "code", "details"), [
    ("invalid", grpc.StatusCode.INVALID_ARGUMENT, "say something"),
    ("missing", grpc.StatusCode.NOT_FOUND, "nothing to say"),
    ("boom", grpc.StatusCode.INTERNAL, "internal error"),  # logged, never sent
    ("abort", grpc.StatusCode.ALREADY_EXISTS, "said before"),
])
async def test_errors_are_status_codes_and_write_nothing(runtime: Runtime, echo: ModuleType, value: str,
                                                          code: grpc.StatusCode, details: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub(runtime, echo).Say(text(echo, value), timeout=5)
    assert (failed.value.code(), failed.value.details()) == (code, details)
    table = runtime.system.service("echo").metadata.tables["said"]
    assert await runtime.service("echo").store.fetch_all(select(table)) == []


async def test_a_lost_race_runs_the_method_again(echo: ModuleType, tmp_path: Path) -> None:
    system, calls = echo_system(echo)
    async with Runtime(system, tmp_path) as running:
        assert (await stub(running, echo).Say(text(echo, "race"), timeout=5)).value == "RACE"
    assert calls == ["race", "race"]


async def test_a_client_call_carries_its_deadline(runtime: Runtime, echo: ModuleType) -> None:
    client = GrpcClient("echo", echo.EchoStub, deadline=0.1)
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await client(runtime.service("echo").uow()).Say(text(echo, "slow"))
    assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    answer = await client(runtime.service("echo").uow()).Say(text(echo, "fast"), timeout=5)  # its own deadline
    assert answer.value == "FAST"


async def test_a_busy_port_is_refused_by_name(runtime: Runtime, echo: ModuleType, tmp_path: Path) -> None:
    port = int(runtime.grpc.addresses["echo"].rsplit(":", 1)[1])
    system, _ = echo_system(echo, port=port)
    second = Runtime(system, tmp_path / "second")
    with pytest.raises(OSError, match=f"echo: gRPC port {port} on 127.0.0.1 is in use"):
        await second.start()
    await second.stop()


async def test_a_peer_is_called_where_the_configuration_says(runtime: Runtime, echo: ModuleType,
                                                               tmp_path: Path) -> None:
    """A process that does not host echo reaches it at its peer address (another process, here the runtime)."""
    system, _ = echo_system(echo)
    caller = Service("caller", worker=2)
    elsewhere = Runtime(System("toy", [*system.services, caller]), tmp_path / "caller", only=["caller"],
                        grpc=GrpcConfig(peers={"echo": runtime.grpc.addresses["echo"]}))
    async with elsewhere:
        assert elsewhere.grpc.addresses == {}
        answer = await GrpcClient("echo", echo.EchoStub)(elsewhere.service("caller").uow()).Say(text(echo, "hi"))
        assert answer.value == "HI"


def test_ports_and_peers_from_the_configuration(echo: ModuleType, tmp_path: Path) -> None:
    system, _ = echo_system(echo, port=50070)
    declared = GrpcConfig.from_config(system.services, Config())
    assert (declared.ports, declared.peers) == ({}, {"echo": "127.0.0.1:50070"})
    env = {"JUNCTION_ECHO_GRPC_PORT": "6001", "JUNCTION_ECHO_URL": "http://10.1.2.3:5001/echo",
           "JUNCTION_HOST": "0.0.0.0"}
    configured = GrpcConfig.from_config(system.services, Config(env=env))
    assert (configured.host, configured.ports) == ("0.0.0.0", {"echo": 6001})
    assert configured.peers == {"echo": "10.1.2.3:6001"}
    with pytest.raises(ConfigError, match="JUNCTION_ECHO_GRPC_PORT"):
        Config(env={"JUNCTION_ECHO_GRPC_PORT": "many"}).grpc_port("echo")
    file = tmp_path / "junction.toml"
    file.write_text("[echo]\ngrpc_port = 7000\n")
    from junction.config import load

    assert load(file, env={}).grpc_port("echo") == 7000
    file.write_text("ecoh_grpc_port = 7000\n")
    with pytest.raises(ConfigError, match="names no service"):
        load(file, env={}).check_services(["echo"])
