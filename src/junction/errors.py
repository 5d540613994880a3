"""The platform's exception tree.

    JunctionError
    ├── ConcurrencyError        an append or a unique write lost a race; the unit of work may retry
    ├── ConditionFailed         a guarded write (``UnitOfWork.require``) changed too few rows; nothing was written
    ├── StoreError              the store could not do what was asked (closed, corrupt, misconfigured)
    ├── ConfigError             a setting (flag, JUNCTION_* variable, config file) is malformed or unknown
    └── HttpError               a handler's answer with a status and a message, e.g. 404 "vehicle not found"
        ├── NotFound            404
        ├── Conflict            409 (or the status the contract documents)
        ├── BadRequest          400
        ├── Unauthorized        401
        └── Forbidden           403
"""

from __future__ import annotations


class JunctionError(Exception):
    """Base of the platform's errors."""


class ConcurrencyError(JunctionError):
    """Optimistic concurrency failed: someone else wrote first."""

    def __init__(self, what: str) -> None:
        super().__init__(f"concurrent write to {what}")
        self.what = what


class ConditionFailed(JunctionError):
    """A guarded write's condition did not hold (e.g. too little stock): the whole batch was rolled back."""


class StoreError(JunctionError):
    """The store cannot serve the request."""


class ConfigError(JunctionError):
    """The configuration cannot be used; the message names the file or variable and the setting."""


class HttpError(JunctionError):
    """An error a route handler answers with: status and ``{"error": message}``."""

    status = 500

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.code = code


class BadRequest(HttpError):
    """400: the request cannot be served as asked."""

    status = 400


class NotFound(HttpError):
    """404: the thing named does not exist."""

    status = 404


class Conflict(HttpError):
    """409: the request conflicts with the current state."""

    status = 409


class Unauthorized(HttpError):
    """401: the caller is not who it must be (bad credentials, no session)."""

    status = 401


class Forbidden(HttpError):
    """403: the caller may not do this."""

    status = 403
