"""gzip of text responses: pages and JSON when the client asks, never the streamed exports,
never when the client did not ask, and streamed text stays streamed."""

from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from app.web.compression import Compression, accepts_gzip
from tests.conftest import Actor
from tests.exports.helpers import annotate


def test_pages_and_json_are_gzipped_when_asked(client: httpx.Client) -> None:
    for path in ("/login", "/openapi.json"):
        packed = client.get(path, headers={"Accept-Encoding": "gzip"})
        plain = client.get(path, headers={"Accept-Encoding": "identity"})
        assert packed.headers["content-encoding"] == "gzip", path
        assert "content-encoding" not in plain.headers, path
        assert (
            "Accept-Encoding" in packed.headers["vary"]
            and "Accept-Encoding" in plain.headers["vary"]
        )
        assert int(packed.headers["content-length"]) < len(plain.content) / 2
        assert len(packed.content) == len(plain.content)  # decoded by httpx
    # The security headers still come along.
    assert "content-security-policy" in client.get("/login").headers


def test_small_bodies_and_head_requests_go_out_as_they_are(client: httpx.Client) -> None:
    small = client.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers
    head = client.head("/login", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in head.headers


@pytest.fixture
def client(app_client_factory: Callable[[], httpx.Client]) -> httpx.Client:
    return app_client_factory()


def test_streamed_exports_are_never_compressed(
    researcher: Actor,
    make_user: Callable[..., Actor],
    project_factory: Callable[..., dict[str, Any]],
) -> None:
    annotator = make_user("annotator")
    project = project_factory("pairwise", items=5, members=(annotator,))
    annotate(annotator, int(str(project["id"])), lambda t: {"choice": "a", "rationale": "x" * 300})
    r = researcher.client.get(
        f"/api/v1/projects/{project['id']}/export",
        params={"schema": "raw", "format": "jsonl"},
        headers={"Accept-Encoding": "gzip"},
    )
    assert r.status_code == 200 and len(r.content) > 2000
    assert "content-encoding" not in r.headers
    assert r.headers["content-disposition"].startswith("attachment")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("GZIP", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("", False),
        ("*", True),
        ("*;q=0", False),
        ("deflate, *;q=0.1", True),
        ("gzip;q=bogus", False),
    ],
)
def test_accept_encoding_is_read_with_its_quality_values(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def _call(app: Any, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}
    # In a thread of its own: the browser tests leave an event loop running in this one.
    worker = threading.Thread(target=asyncio.run, args=(app(scope, receive, send),))
    worker.start()
    worker.join()
    return sent


def test_streamed_text_is_compressed_part_by_part() -> None:
    parts = [b"line %d of a streamed page\n" % i * 40 for i in range(3)]

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        for i, part in enumerate(parts):
            await send({"type": "http.response.body", "body": part, "more_body": i < 2})

    sent = _call(Compression(streaming), [(b"accept-encoding", b"gzip")])
    start, bodies = sent[0], sent[1:]
    headers = dict(start["headers"])
    assert headers[b"content-encoding"] == b"gzip" and b"content-length" not in headers
    assert len(bodies) == 3 and all(b["body"] for b in bodies)  # nothing held back
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    # Each part decodes as soon as it arrives (sync flush), not only at the end.
    assert decoder.decompress(bodies[0]["body"]) == parts[0]
    rest = b"".join(decoder.decompress(b["body"]) for b in bodies[1:]) + decoder.flush()
    assert rest == parts[1] + parts[2]


@pytest.mark.parametrize(
    "extra",
    [
        [(b"content-disposition", b'attachment; filename="x.jsonl"')],
        [(b"content-encoding", b"br")],
        [(b"content-range", b"bytes 0-99/1000")],
    ],
)
def test_downloads_encoded_and_partial_bodies_pass_untouched(
    extra: list[tuple[bytes, bytes]],
) -> None:
    body = b"x" * 5000

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": body})

    sent = _call(Compression(app), [(b"accept-encoding", b"gzip")])
    assert sent[1]["body"] == body
    assert dict(sent[0]["headers"]).get(b"content-encoding") != b"gzip"
