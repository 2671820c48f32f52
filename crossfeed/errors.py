"""Domain errors raised by services; the API and the views turn them into responses.

Services never know about HTTP; these classes carry what a person needs to fix the problem.
"""

from __future__ import annotations


class CrossfeedError(Exception):
    """Base class: `message` is for people, `field` says where (a field name, or a line in a file)."""

    status_code = 400

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        errors: list[dict] | None = None,
        field_errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.errors = errors or []
        self.field_errors = field_errors or {}

    def as_dict(self) -> dict:
        if self.field_errors:
            return dict(self.field_errors)
        if self.errors:
            return {"detail": self.message, "errors": self.errors}
        if self.field:
            return {self.field: [self.message]}
        return {"detail": self.message}


class InvalidInput(CrossfeedError):
    status_code = 400


class NotFound(CrossfeedError):
    status_code = 404


class PermissionDenied(CrossfeedError):
    status_code = 403


class Conflict(CrossfeedError):
    status_code = 409
