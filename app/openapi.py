"""The OpenAPI document, with the error body every route really answers with.

FastAPI documents its own 422 shape (`{"detail": [...]}`); Tandem answers every error as
`{"detail": sentence, "error": code, ...}` (see app/http_errors.py), so each operation's 422 and
its `default` response are rewritten to that schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

ERROR_REF = "#/components/schemas/ErrorBody"


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error answer. Some carry more: `errors` (422), `row` (uploads)."""

    detail: str = Field(description="A sentence for people.")
    error: str = Field(description="A code for programs; README lists them.")
    errors: list[ErrorItem] | None = Field(None, description="Each problem of a 422.")
    row: int | None = Field(None, description="The row of an upload that was refused.")


def _error_content(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (ErrorItem, ErrorBody):
            components[model.__name__] = model.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses["422"] = _error_content("The request does not validate.")
                responses["default"] = _error_content("An error: {detail, error, ...}.")
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
