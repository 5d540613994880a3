"""How a service's HTTP errors look: the platform's JSON, or the shape its public contract documents.

    Service("inventory", worker=1, errors=text_errors)   # a plain-text contract (the shop)
    Service("user", worker=1, errors=spring_errors)      # a Spring Boot contract (social)

Every error a route answers (a handler's ``HttpError``, an invalid or oversized body, an unknown path or
method, an unexpected failure) goes through the service's format, so one contract speaks one shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response


class ErrorFormat(Protocol):
    """Renders one error answer."""

    def __call__(self, request: Request, status: int, message: str, **extra: Any) -> Response: ...


def json_errors(request: Request, status: int, message: str, **extra: Any) -> Response:
    """The platform's shape: ``{"error": message, ...details}``."""
    return JSONResponse({"error": message, **extra}, status_code=status)


def text_errors(request: Request, status: int, message: str, **extra: Any) -> Response:
    """The message alone, as plain text."""
    return PlainTextResponse(message, status_code=status)


def spring_errors(request: Request, status: int, message: str, **extra: Any) -> Response:
    """Spring Boot's default error body: ``{"timestamp", "status", "error", "message", "path"}``, for ports of
    Spring services whose clients parse it."""
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "+0000")
    return JSONResponse({"timestamp": stamp, "status": status, "error": reason, "message": message,
                         "path": request.url.path}, status_code=status)


__all__ = ["ErrorFormat", "json_errors", "spring_errors", "text_errors"]
