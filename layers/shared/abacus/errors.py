"""Errors the API answers with a 4xx. Each names what was wrong and, where it can, the field."""

from abacus.documents import ErrorBody, ErrorDetail


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
    status, code = 422, "invalid"


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
