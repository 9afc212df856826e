"""Reading the fields of the pages' HTML forms into API bodies, and pydantic's complaint about
a body as one line for the form's error banner."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.errors import Invalid


def text(form: FormData, name: str) -> str:
    """The field's text, stripped; "" when absent or an upload."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def json_field(form: FormData, name: str, label: str) -> Any:
    """The field parsed as JSON (None when empty); a 422 naming `label` when it is not JSON."""
    raw = text(form, name)
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"{label} is not valid JSON: {exc}.") from None


def validation_message(err: ValidationError) -> str:
    """The first error, as `where: what.`"""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}." if where else f"{msg}."
