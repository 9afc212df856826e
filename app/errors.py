"""Domain errors shared by every domain, each with an HTTP status and a machine-readable code.

app/http_errors.py turns them into `{"detail": sentence, "error": code, ...}` in one place.
A domain adds a subclass (with its own `code`) where a client must tell that case apart; the
codes are listed in README ("Errors").
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError

from app.validation import json_safe


class DomainError(Exception):
    """An error a user can act on; `message` is the sentence they will read."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class Invalid(DomainError):
    """The request is well-formed but breaks a rule (a setting that does not fit the project,
    a span outside the response, a bad row in an upload)."""

    status_code = 422
    code = "invalid"


class ValidationFailed(Invalid):
    """A body that does not match its schema, found by a service rather than by the route
    (annotation payloads depend on the project's kind): the same answer as a route's 422."""

    code = "validation_error"

    @classmethod
    def from_pydantic(cls, err: ValidationError, prefix: str = "") -> ValidationFailed:
        errors = describe_errors(err.errors(include_url=False, include_input=False), prefix)
        return cls(sentence(errors), errors=errors)


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class CsrfFailed(Forbidden):
    """A cookie-authenticated write without this session's CSRF token: reload the page."""

    code = "csrf_failed"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class TooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    """The database or the broker cannot be reached right now; the same request may succeed
    after `retry_after` seconds."""

    status_code = 503
    code = "service_unavailable"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# Friendlier sentences than pydantic's for the problems the edge checks most often.
_MESSAGES = {
    "string_unicode": "contains a lone surrogate, which is not valid Unicode",
    "finite_number": "must be a finite number (not NaN or Infinity)",
}


def describe_errors(errors: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Pydantic errors as the API reports them: loc, msg, type, safe to encode as JSON."""
    out = []
    for e in errors:
        msg = _MESSAGES.get(e["type"], str(e["msg"]))
        msg = msg.removeprefix("Value error, ")
        loc = [prefix, *e["loc"]] if prefix else list(e["loc"])
        out.append({"loc": json_safe(loc), "msg": json_safe(msg), "type": e["type"]})
    return out


def sentence(errors: list[dict[str, Any]], skip: tuple[str, ...] = ()) -> str:
    """`field.path: what is wrong` for the first error, and how many more there are."""
    if not errors:
        return "The request is not valid."
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"] if p not in skip)
    more = len(errors) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    text = f"{where}: {first['msg']}" if where else str(first["msg"])
    return text + tail


class JobsRunning(Conflict):
    """A queued or running job still works on what the request would remove: wait for it to
    end (or cancel it) and try again."""

    code = "jobs_running"
