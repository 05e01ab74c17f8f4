"""Errors the API answers with a 4xx. Each names what was wrong and, where it can, the field; a
422 lists every field at fault, pydantic's validation errors translated into words."""

import re
from collections.abc import Mapping, Sequence
from typing import Any

from abacus.core.answers import ErrorBody, ErrorDetail, FieldError
from abacus.core.keys import PATTERN_WORDS

# More than any real request gets wrong; a body of thousands of bad values lists these first.
MAX_FIELD_ERRORS = 50


class AbacusError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def headers(self) -> dict[str, str]:
        return {}

    def to_body(self) -> ErrorBody:
        error: ErrorDetail = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return {"error": error}


class BadRequest(AbacusError):
    status, code = 400, "bad_request"


class Unauthorized(AbacusError):
    status, code = 401, "unauthorized"


class Forbidden(AbacusError):
    status, code = 403, "forbidden"


class NotFound(AbacusError):
    status, code = 404, "not_found"


class Conflict(AbacusError):
    status, code = 409, "conflict"


class TooLarge(AbacusError):
    status, code = 413, "too_large"


class Invalid(AbacusError):
    """Fields that are invalid: `errors` lists each with what is wrong; `field` is the first."""

    status, code = 422, "invalid"

    def __init__(self, message: str, field: str | None = None, errors: list[FieldError] | None = None):
        super().__init__(message, field)
        self.errors = errors or [{"field": field or "body", "message": message.removeprefix(f"{field}: ")}]

    @classmethod
    def of(cls, errors: list[FieldError]) -> "Invalid":
        """Every field at fault (at least one), each in the message as well, for clients that read only it."""
        listed = errors[:MAX_FIELD_ERRORS]
        message = "; ".join(f"{error['field']}: {error['message']}" for error in listed)
        if len(errors) > len(listed):
            message += f"; and {len(errors) - len(listed)} more"
        return cls(message, field=listed[0]["field"], errors=listed)

    def to_body(self) -> ErrorBody:
        body = super().to_body()
        body["error"]["errors"] = self.errors
        return body


class InvalidInvocation(AbacusError):
    """A direct invocation (`aws lambda invoke`, an EventBridge rule) with a payload the function
    does not take: raised, so that Lambda answers it as the function's error (errorType
    InvalidInvocation, errorMessage naming what was expected or the field that is wrong)."""

    status, code = 400, "invalid_invocation"


class StorageUnavailable(AbacusError):
    """DynamoDB refused after every retry (botocore's, with backoff): the request did nothing it
    could not do again, so the client sends it again (Retry-After)."""

    status, code = 503, "storage_unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


type Location = tuple[str | int, ...]
# What pydantic puts in an error's location for a member of a union: a type, not a field.
_UNION_MEMBER = re.compile(r"^(bool|int|float|str|none|[a-z-]+\[.*\])$")


def field_errors(errors: Sequence[Mapping[str, Any]], whole: str = "body") -> list[FieldError]:
    """pydantic's validation errors as one entry per field at fault, in the order found (`whole`
    names the value itself), each saying in words what to fix."""
    found: dict[str, list[str]] = {}
    for location, message in _located(errors):
        messages = found.setdefault(field_path(location) or whole, [])
        if message not in messages:
            messages.append(message)
    return [{"field": field, "message": "; ".join(messages)} for field, messages in found.items()]


def field_path(location: Location) -> str:
    """A location as a client writes it: `variants[1].key`."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


def _located(errors: Sequence[Mapping[str, Any]]) -> list[tuple[Location, str]]:
    """(location, message) of each error, in order; a union's errors (one or more per member
    type) come where its first did, reduced by _union."""
    unions: dict[Location, list[Mapping[str, Any]]] = {}
    for error in errors:
        if (split := _split_at_union(error)) is not None:
            unions.setdefault(split[0], []).append(split[1])
    located: list[tuple[Location, str]] = []
    for error in errors:
        split = _split_at_union(error)
        if split is None:
            located.append((tuple(error.get("loc", ())), _message(error)))
        elif split[0] in unions:
            located += _union(split[0], unions.pop(split[0]))
    return located


def _split_at_union(error: Mapping[str, Any]) -> tuple[Location, dict[str, Any]] | None:
    """For an error of a union's member: the union's location, and the error with the member's
    type taken out of its location and kept as `member`."""
    location = tuple(error.get("loc", ()))
    for index, part in enumerate(location):
        if isinstance(part, str) and _UNION_MEMBER.match(part):
            return location[:index], {**error, "loc": location[:index] + location[index + 1 :], "member": part}
    return None


def _union(location: Location, errors: list[Mapping[str, Any]]) -> list[tuple[Location, str]]:
    """The errors of the first member type the value had (it broke a rule within it: a list too
    long, an item of the wrong type); else one error naming every type the value could be."""
    for member in dict.fromkeys(error["member"] for error in errors):
        own = [error for error in errors if error["member"] == member]
        if any(len(error["loc"]) > len(location) or not error.get("type", "").endswith("_type") for error in own):
            return _located(own)
    kinds = list(dict.fromkeys(str(error.get("msg", "")).removeprefix("Input should be ") for error in errors))
    either = kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} or {kinds[-1]}"
    return [(location, f"Input should be {either}")]


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "missing":
        return "is required"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "should be an object"
    if kind == "extra_forbidden":
        return "is not a field here: remove it, or check its spelling"
    if kind == "string_pattern_mismatch" and (words := PATTERN_WORDS.get(error.get("ctx", {}).get("pattern"))):
        return f"should be {words}"
    # A check of ours raised ValueError: its text is the message (pydantic prefixes "Value error, ").
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")
