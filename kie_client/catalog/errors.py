"""Typed catalog errors: every message names the field and, where useful, the allowed values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class CatalogError(ValueError):
    """Base for everything the catalog rejects; `.field` names the offending input field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class UnknownModelError(CatalogError):
    def __init__(self, key: str, known: Sequence[str] = ()) -> None:
        hint = f"; known models: {', '.join(known)}" if known else ""
        super().__init__(f"unknown model {key!r}{hint}", field="model")
        self.key = key


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class InvalidOptionError(CatalogError):
    """A value outside the allowed set, an unknown option name, or a wrong type."""

    def __init__(
        self,
        field: str,
        value: Any,
        allowed: Sequence[Any] = (),
        *,
        message: str | None = None,
    ) -> None:
        self.value = value
        self.allowed = tuple(allowed)
        if message is None:
            shown = ", ".join(_show(a) for a in self.allowed)
            message = f"{field} must be one of {shown} (got {value!r})"
        super().__init__(message, field=field)


class MissingFieldError(InvalidOptionError):
    """A required KIE input field is absent; the message mirrors KIE's live "<field> is required"."""

    def __init__(self, field: str, allowed: Sequence[Any] = ()) -> None:
        super().__init__(field, None, allowed, message=f"{field} is required")


class InvalidPromptError(CatalogError):
    def __init__(self, min: int, max: int, length: int, *, message: str | None = None) -> None:
        self.min = min
        self.max = max
        self.length = length
        if message is None:
            if length == 0:
                message = "prompt must not be blank"
            elif length < min:
                message = f"prompt is too short: {length} characters, at least {min} needed"
            else:
                message = f"prompt is too long: {length} characters, at most {max} allowed"
        super().__init__(message, field="prompt")


class PromptCharactersError(InvalidPromptError):
    """The prompt's length is fine but its characters are not: `problem` is "control" (a control
    character such as U+0000, which Postgres cannot store and no model reads, or a lone
    surrogate) or "invisible" (nothing but spaces and zero-width characters)."""

    def __init__(self, min: int, max: int, length: int, *, problem: str) -> None:
        self.problem = problem
        message = ("prompt contains control characters" if problem == "control"
                   else "prompt has no visible character")
        super().__init__(min, max, length, message=message)


class ImageInputError(CatalogError):
    """Missing, surplus or unacceptable input images (count, URL form, type or size)."""

    def __init__(self, message: str, *, field: str = "image") -> None:
        super().__init__(message, field=field)
