"""GraphQL at the edge: schema-first loading, a fast HTTP handler, subscriptions over WebSocket.

* The schema is SDL in ``.graphql`` files, bound to resolvers with Ariadne's bindables.
* ``POST application/json`` requests run on graphql-core directly. Validation is the expensive
  step of a Python GraphQL server (about 0.6 ms for a one-field query, 30 times the parse), so
  parsed and validated documents are cached per query text in a bounded LRU.
* Errors are ``{message, locations, path, extensions: {code}}`` with ``code`` one of ``CODES``;
  an upstream service's ``{"error": msg}`` keeps its text and gets the code of its status; anything
  unexpected is logged and answers "internal server error", never a trace.
* Subscriptions use the graphql-transport-ws protocol (Ariadne's handler) on the same path.
* Cross-site requests cannot act: only ``POST`` with ``Content-Type: application/json`` is
  executed (an HTML form cannot send that type), a present ``Origin`` must match the host, and the
  WebSocket handshake is checked the same way (browsers do not apply CORS to WebSockets).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from inspect import isawaitable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import structlog
from ariadne import load_schema_from_path, make_executable_schema
from ariadne.asgi import GraphQL as AriadneGraphQL
from ariadne.asgi.handlers import GraphQLTransportWSHandler
from ariadne.types import SchemaBindable
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from junction.errors import HttpError
from junction.gateway.resilience import CircuitOpen, RateLimited

log = structlog.get_logger()

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
BAD_USER_INPUT = "BAD_USER_INPUT"
CONFLICT = "CONFLICT"
INTERNAL = "INTERNAL"
CODES = (UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, BAD_USER_INPUT, CONFLICT, INTERNAL)

# The code of an upstream service's error answer, by its HTTP status.
STATUS_CODES: Mapping[int, str] = {400: BAD_USER_INPUT, 401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND,
                                   409: CONFLICT, 422: BAD_USER_INPUT}
INTERNAL_ERROR = "internal server error"
UNAVAILABLE = "service unavailable"
MAX_BODY = 1 << 20
MAX_TOKENS = 5_000  # a bound on parse work for hostile query texts


class ApiError(Exception):
    """An error a resolver answers with: the message clients see and its ``extensions.code``."""

    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.extensions = extensions


def describe(error: BaseException) -> tuple[str, dict[str, Any]]:
    """The message and extensions clients see for an exception raised while resolving."""
    match error:
        case ApiError():
            return error.message, {"code": error.code, **error.extensions}
        case HttpError() if error.status in STATUS_CODES:
            return error.message, {"code": STATUS_CODES[error.status]}
        case RateLimited():
            return "too many requests, try again later", {"code": BAD_USER_INPUT,
                                                          "retryAfter": round(error.retry_after, 1)}
        case CircuitOpen() | TimeoutError() | httpx.TransportError():
            log.warning("upstream unavailable", error=repr(error))
            return UNAVAILABLE, {"code": INTERNAL}
    log.error("unexpected error while resolving", exc_info=error)
    return INTERNAL_ERROR, {"code": INTERNAL}


def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    """``{message, locations, path, extensions: {code}}`` for any GraphQL error (Ariadne's signature)."""
    formatted: dict[str, Any] = dict(error.formatted)
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        # the request itself is wrong: syntax, validation, variable coercion
        formatted["extensions"] = {"code": BAD_USER_INPUT, **(error.extensions or {})}
        return formatted
    formatted["message"], formatted["extensions"] = describe(original)
    return formatted


def load_schema(path: Path | str, *bindables: SchemaBindable | Iterable[SchemaBindable]) -> GraphQLSchema:
    """An executable schema from the ``.graphql`` files under ``path`` and the resolvers' bindables."""
    return make_executable_schema(load_schema_from_path(str(path)), *bindables)  # type: ignore[arg-type]


# -- parsed and validated documents ----------------------------------------------------------------
@dataclass(frozen=True)
class Prepared:
    """A query text, parsed and validated once: its document or the errors that reject it."""

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...]

    def operation(self, name: str | None) -> OperationType | None:
        """The type of the operation to run (None when the name does not pick exactly one)."""
        if self.document is None:
            return None
        operation = get_operation_ast(self.document, name)
        return operation.operation if operation is not None else None


class DocumentCache:
    """Query text → Prepared, least recently used first out beyond ``max_size`` entries."""

    def __init__(self, schema: GraphQLSchema, max_size: int = 1000) -> None:
        self.schema = schema
        self.max_size = max_size
        self._entries: OrderedDict[str, Prepared] = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, query: str) -> Prepared:
        """The prepared document of ``query`` (parsed and validated on first sight)."""
        prepared = self._entries.get(query)
        if prepared is not None:
            self.hits += 1
            self._entries.move_to_end(query)
            return prepared
        self.misses += 1
        try:
            document = parse(query, max_tokens=MAX_TOKENS)
        except GraphQLError as error:
            prepared = Prepared(None, (error,))
        else:
            errors = validate(self.schema, document)
            prepared = Prepared(None if errors else document, tuple(errors))
        self._entries[query] = prepared
        if len(self._entries) > self.max_size:
            self._entries.popitem(last=False)
        return prepared

    def parse(self, context: Any, data: dict[str, Any]) -> DocumentNode:
        """Ariadne's ``query_parser`` hook: the cached document, or the first error raised."""
        prepared = self.get(data.get("query") or "")
        if prepared.document is None:
            raise prepared.errors[0]
        return prepared.document


# -- cross-site protection -------------------------------------------------------------------------
def same_origin(headers: Headers, allowed: Collection[str] = ()) -> bool:
    """True without an ``Origin`` header, or when it names this host (or an allowed origin)."""
    origin = headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-origin request (curl, server-side clients)
    if origin in allowed:
        return True
    host = headers.get("host", "")
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


def is_json(headers: Headers) -> bool:
    """True when the body is declared as ``application/json``."""
    return headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


# -- the endpoint ----------------------------------------------------------------------------------
class ResponseHook(Protocol):
    """A context that changes the HTTP answer (e.g. sets or clears a session cookie)."""

    def finish(self, response: Response) -> None: ...


ContextFactory = Callable[[Request | WebSocket, dict[str, Any] | None], Awaitable[Any]]


class SubscriptionsOnlyHandler(GraphQLTransportWSHandler):
    """graphql-transport-ws for subscriptions; queries and mutations go over HTTP (cookies, CSRF rules)."""

    async def handle_websocket_subscribe(self, websocket: Any, data: Any, operation_id: str,
                                         client_context: Any) -> None:
        """Refuse anything but a subscription, then subscribe as Ariadne does."""
        if isinstance(data, dict) and isinstance(data.get("query"), str) and self.query_parser is not None:
            try:
                document = self.query_parser(None, data)
            except GraphQLError:
                document = None
            operation = get_operation_ast(document, data.get("operationName")) if document else None
            if operation is not None and operation.operation is not OperationType.SUBSCRIPTION:
                error = GraphQLError("only subscriptions are served over WebSocket; use POST for the rest")
                await websocket.send_json({"type": self.GQL_ERROR, "id": operation_id,
                                           "payload": [format_error(error)]})
                return
        await super().handle_websocket_subscribe(websocket, data, operation_id, client_context)


class GraphQLEndpoint:
    """A schema served at one path: HTTP POST for queries and mutations, WebSocket for subscriptions."""

    def __init__(self, schema: GraphQLSchema, context: ContextFactory, *, cache_size: int = 1000,
                 allowed_origins: Collection[str] = ()) -> None:
        self.schema = schema
        self.context = context
        self.documents = DocumentCache(schema, cache_size)
        self.allowed_origins = frozenset(allowed_origins)

        async def on_connect(websocket: WebSocket, payload: Any) -> None:
            # connection_init's payload may carry credentials ({"Authorization": "Bearer ..."}).
            websocket.scope["connection_params"] = payload if isinstance(payload, dict) else {}

        self._ws = AriadneGraphQL(
            schema, context_value=self._ws_context, query_parser=self.documents.parse,
            error_formatter=format_error, logger=logging.getLogger("junction.gateway"),
            websocket_handler=SubscriptionsOnlyHandler(on_connect=on_connect),
        )

    def routes(self, path: str = "/graphql") -> list[BaseRoute]:
        """The HTTP and WebSocket routes of the endpoint."""
        return [Route(path, self.http, methods=["GET", "POST"]), WebSocketRoute(path, self.websocket)]

    async def execute(self, query: str, variables: dict[str, Any] | None = None,
                      operation_name: str | None = None, context: Any = None,
                      allow: Collection[OperationType] = (OperationType.QUERY, OperationType.MUTATION),
                      ) -> dict[str, Any]:
        """Run one operation; the JSON-ready result ``{data?, errors?}``."""
        prepared = self.documents.get(query)
        if prepared.document is None:
            return {"errors": [format_error(e) for e in prepared.errors]}
        operation = prepared.operation(operation_name)
        if operation is None:
            return _request_error("operationName must name one operation of the document")
        if operation not in allow:
            return _request_error(f"{operation.value} operations are not served here")
        result = execute(self.schema, prepared.document, context_value=context, variable_values=variables,
                         operation_name=operation_name)
        if isawaitable(result):
            result = await result
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [format_error(e) for e in result.errors]
        return answer

    async def http(self, request: Request) -> Response:
        """POST application/json ``{query, variables, operationName}``."""
        if request.method != "POST":
            return JSONResponse(_request_error("use POST with Content-Type: application/json"), status_code=405,
                                headers={"Allow": "POST"})
        if not same_origin(request.headers, self.allowed_origins):
            return JSONResponse(_request_error("cross-origin requests are not allowed"), status_code=403)
        if not is_json(request.headers):
            return JSONResponse(_request_error("Content-Type must be application/json"), status_code=415)
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse(_request_error("request body too large"), status_code=413)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str) \
                or not isinstance(payload.get("variables") or {}, dict) \
                or not isinstance(payload.get("operationName") or "", str):
            return JSONResponse(_request_error("body must be {query, variables?, operationName?}"), status_code=400)
        try:
            context = await self.context(request, payload)
        except Exception as error:  # e.g. the auth service is down: no answer can be right
            message, extensions = describe(error)
            return JSONResponse({"errors": [{"message": message, "extensions": extensions}]}, status_code=503)
        answer = await self.execute(payload["query"], payload.get("variables"), payload.get("operationName"),
                                    context)
        response = JSONResponse(answer)
        finish = getattr(context, "finish", None)
        if callable(finish):
            finish(response)
        return response

    async def websocket(self, websocket: WebSocket) -> None:
        """graphql-transport-ws subscriptions, after the same-origin check of the handshake."""
        if not same_origin(websocket.headers, self.allowed_origins):
            await websocket.close(code=1008)
            return
        await self._ws.handle_websocket(websocket)

    async def _ws_context(self, websocket: WebSocket, data: Any) -> Any:
        return await self.context(websocket, data if isinstance(data, dict) else None)


def _request_error(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": BAD_USER_INPUT}}]}
