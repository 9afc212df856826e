"""Refuse request bodies that parsers read differently, before any route sees them.

JSON: Python's json keeps the last of two equal keys where another parser (a proxy, a WAF,
the client's own) may keep the first, so `{"role": "annotator", "role": "admin"}` means
different things to different readers: such a body is a 400, as is one nested past the
parser's recursion limit. Forms: Starlette decodes a value that is not UTF-8 into U+FFFD (or
raw bytes as Latin-1), which would store altered text: such a form is a 400 too.
Well-formed bodies go on unchanged (buffered once; their size is already capped by
BodySizeLimit, which sits outside this middleware). Streamed uploads, which have parsers of
their own, are left alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http_errors import MALFORMED_FORM, MALFORMED_JSON, error_response

WRITE_METHODS = frozenset({b"POST", b"PUT", b"PATCH", b"DELETE"})


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads object_pairs_hook: a dict, unless a key repeats within one object."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return out


def ambiguity(body: bytes) -> str | None:
    """Why this JSON body must be refused, or None (also for plain malformed JSON, which
    FastAPI reports itself)."""
    try:
        json.loads(body, object_pairs_hook=reject_duplicates)
    except DuplicateKey as exc:
        return f"the key {exc.key!r} appears twice in one object"
    except RecursionError:
        return "it is nested too deeply"
    except ValueError:
        return None
    return None


def form_problem(body: bytes) -> str | None:
    """Why this urlencoded form must be refused, or None."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return "it holds bytes that are not percent-encoded"
    try:
        parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return "a value is not valid UTF-8"
    return None


def _kind(content_type: str) -> str | None:
    main = content_type.split(";", 1)[0].strip().lower()
    if main in ("", "application/json") or main.endswith("+json"):
        return "json"
    if main == "application/x-www-form-urlencoded":
        return "form"
    return None


class StrictBodies:
    """`streamed(path)` tells which paths take uploads this middleware must not buffer."""

    def __init__(self, app: ASGIApp, streamed: Callable[[str], bool]) -> None:
        self.app = app
        self.streamed = streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"].encode() not in WRITE_METHODS
            or self.streamed(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        content_type = ""
        for name, value in scope.get("headers", []):
            if name == b"content-type":
                content_type = value.decode("latin-1")
        kind = _kind(content_type)
        if kind is None:
            await self.app(scope, receive, send)
            return

        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if kind == "json":
            problem = ambiguity(body) if body.strip() else None
            what, code = "Request body is not valid JSON", MALFORMED_JSON
        else:
            problem = form_problem(body)
            what, code = "Form body is not readable", MALFORMED_FORM
        if problem is not None:
            await error_response(400, f"{what}: {problem}.", code)(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
