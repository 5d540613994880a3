"""The load generator of ``junction bench pipeline``, against a real uvicorn on loopback: an open constant
arrival rate over keep-alive connections, every answer counted, connections the server dropped replaced."""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from junction.kafka.broker import free_port
from pipeline.bench import Pool, constant_rate, request_head


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"size": len(body)}, status_code=201 if body else 400)


async def test_a_constant_rate_is_sent_and_every_answer_counted() -> None:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/x", echo, methods=["POST"])]), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="off", timeout_keep_alive=1))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        pool = Pool(port, size=8)
        head = request_head("POST", "/x", "key", "application/json")
        outcome = await constant_rate(pool, 200, 0.5, lambda i: (head, b"{}" if i % 10 else b""), 201)
        assert outcome.sent == 100 and outcome.ok == 90 and outcome.errors == 10 and outcome.statuses == {400: 10}
        assert len(outcome.latencies) == 100 and pool.opened <= 8
        figures = outcome.figures()
        assert figures["requests"] == 100 and figures["achieved_per_s"] > 0
        assert figures["p99_ms"] >= figures["mean_ms"] > 0
        await asyncio.sleep(1.5)  # the server drops the idle connections; the pool replaces them
        again = await constant_rate(pool, 100, 0.1, lambda i: (head, b"{}"), 201)
        assert again.ok == again.sent == 10
        pool.close()
    finally:
        server.should_exit = True
        await serving
