"""User-facing errors raised by the domain layer.

Each carries the HTTP-ish status the web layer should answer with, so routers
never need to guess; the CLI prints ``str(err)`` on one line and exits 2.
"""

from __future__ import annotations

from typing import Any


class InspectError(Exception):
    """A precise, user-facing error: bad input, not a bug."""

    status: int = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        # Extra JSON fields for the API answer (e.g. field=, rule=, tensor=).
        self.extra: dict[str, Any] = extra

    def to_dict(self) -> dict[str, Any]:
        return {"detail": self.message, **self.extra}


class NotFound(InspectError):
    """An unknown model id, tensor name, checkpoint id..."""

    status = 404


class InvalidRequest(InspectError):
    """Well-formed request whose values make no sense (bad argument, wrong shape)."""

    status = 422


class NoValues(InspectError):
    """The tensor exists but has no values to read (meta device, uninitialized lazy)."""

    status = 409


class TooLarge(InspectError):
    """An upload over the configured limit."""

    status = 413


class ModelSpecError(InspectError):
    """A model SPEC that cannot be loaded (bad module, attribute, kwargs, factory raised)."""

    status = 400
