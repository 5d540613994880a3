"""Turns a service's routes into a Starlette app with the platform's HTTP conventions.

* The body is validated by the handler's pydantic parameter: undecodable JSON answers 400
  ``{"error": "invalid request body"}``, a failed validation 422 ``{"error": "validation failed"}``.
* Path parameters are passed by name; ``uow: UnitOfWork`` and ``request: Request`` are injected.
* The handler's unit of work is committed after it returns; a lost race runs it again.
* ``HttpError`` answers ``{"error": message}`` with its status; anything else is logged and
  answers 500 ``{"error": "internal server error"}``, never a stack trace.
* Results: a pydantic model or plain JSON data, always 200 (``null`` for None); a Response as it is.
* A route may name the answer to an invalid body (``Service.route(invalid=...)``), and a service may
  answer its errors in the shape its public contract documents (``Service(errors=...)``,
  ``junction.http_errors``).
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from typing import Any

import structlog
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from junction.errors import ConcurrencyError, HttpError
from junction.http_errors import ErrorFormat, json_errors
from junction.service import RouteSpec
from junction.uow import UnitOfWork, run_with_retries

log = structlog.get_logger()
MAX_BODY = 1 << 20


def to_jsonable(value: Any) -> Any:
    """Pydantic models (by alias) and containers of them as JSON data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes | None:
    """The request's body, or None as soon as it is known to be longer than ``limit`` (never read in whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint(spec: RouteSpec, make_uow: Callable[[], UnitOfWork]) -> Callable[[Request], Any]:
    hints = typing.get_type_hints(spec.handler)
    params = list(inspect.signature(spec.handler).parameters)
    body_param = next(
        (p for p in params if isinstance(hints.get(p), type) and issubclass(hints[p], BaseModel)), None
    )
    body_adapter = TypeAdapter(hints[body_param]) if body_param else None
    wants_uow = "uow" in params
    wants_request = "request" in params
    async def endpoint(request: Request) -> Response:
        def answer(status: int, message: str, **extra: Any) -> Response:
            return spec.errors(request, status, message, **extra)

        kwargs: dict[str, Any] = dict(request.path_params)
        if wants_request:
            kwargs["request"] = request
        if body_adapter is not None and body_param is not None:
            raw = await read_body(request)
            if raw is None:
                return answer(413, "request body too large")
            try:
                decoded = json.loads(raw or b"null")
            except ValueError:
                return answer(400, "invalid request body")
            try:
                kwargs[body_param] = body_adapter.validate_python(decoded)
            except ValidationError as invalid:
                if spec.invalid is not None:
                    return answer(spec.invalid.status, spec.invalid.message)
                details = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                           for e in invalid.errors()]
                return answer(422, "validation failed", details=details)
        try:
            if wants_uow:
                async def work(uow: UnitOfWork) -> Any:
                    return await spec.handler(**kwargs, uow=uow)

                result = await run_with_retries(make_uow, work)
            else:
                result = await spec.handler(**kwargs)
        except HttpError as failure:
            return answer(failure.status, failure.message)
        except ConcurrencyError:
            return answer(409, "conflict: too many concurrent changes, try again")
        except Exception:
            log.exception("handler failed", route=f"{spec.method} {spec.path}")
            return answer(500, "internal server error")
        if isinstance(result, Response):
            return result
        return JSONResponse(to_jsonable(result))

    return endpoint


def build_app(routes: list[RouteSpec], make_uow: Callable[[], UnitOfWork],
              extra: list[Route] | None = None, errors: ErrorFormat = json_errors) -> Starlette:
    """A Starlette app serving the routes; ``errors`` shapes its answers to unknown paths and methods."""
    starlette_routes = [Route(r.path, _endpoint(r, make_uow), methods=[r.method]) for r in routes]

    async def not_found(request: Request, exc: Exception) -> Response:
        return errors(request, 404, "not found")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return errors(request, 405, "method not allowed")

    return Starlette(routes=[*starlette_routes, *(extra or [])],
                     exception_handlers={404: not_found, 405: not_allowed})
