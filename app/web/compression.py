"""gzip for text responses when the client asks for it (pure ASGI, streaming-safe).

Left alone: clients that did not send `Accept-Encoding: gzip`, HEAD requests, bodies under
MIN_SIZE, responses already encoded (the precompressed static files), partial content, and
downloads (`Content-Disposition: attachment`: the exports, large and often binary already).
"""

from __future__ import annotations

import zlib

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIN_SIZE = 512
# Level 6: within a few percent of 9's size at a third of its CPU, for per-request bodies.
LEVEL = 6
_TEXT_TYPES = frozenset(
    {
        "application/javascript",
        "application/json",
        "application/manifest+json",
        "application/xml",
        "image/svg+xml",
    }
)


def compressible(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith("+json")


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (an explicit q=0 refuses it)."""
    wildcard = False
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        coding = coding.strip().lower()
        if coding in ("gzip", "x-gzip"):
            return q > 0
        if coding == "*":
            wildcard = q > 0
    return wildcard


def add_vary(headers: MutableHeaders) -> None:
    """Add Accept-Encoding to Vary: caches must keep the gzip and identity variants apart."""
    tokens = [t.strip() for t in headers.get("vary", "").split(",") if t.strip()]
    if not any(t.lower() in ("accept-encoding", "*") for t in tokens):
        headers["Vary"] = ", ".join([*tokens, "Accept-Encoding"])


def _weak(etag: str) -> str:
    return etag if etag.startswith("W/") else "W/" + etag


class Compression:
    def __init__(self, app: ASGIApp, minimum_size: int = MIN_SIZE, level: int = LEVEL) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.level = level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "HEAD":
            await self.app(scope, receive, send)
            return
        wanted = accepts_gzip(Headers(scope=scope).get("accept-encoding", ""))
        await self.app(scope, receive, _Responder(send, wanted, self.minimum_size, self.level))


def _eligible(status: int, headers: Headers) -> bool:
    if status < 200 or status in (204, 206, 304):
        return False
    if "content-encoding" in headers or "content-range" in headers:
        return False
    if headers.get("content-disposition", "").lower().startswith("attachment"):
        return False
    return compressible(headers.get("content-type", ""))


class _Responder:
    """Wraps send for one response: decides at the start, compresses the body as it comes."""

    def __init__(self, send: Send, wanted: bool, minimum_size: int, level: int) -> None:
        self.send = send
        self.wanted = wanted
        self.minimum_size = minimum_size
        self.level = level
        self.start: Message | None = None
        self.mode = "undecided"  # then "pass" or "gzip"
        self.compressor: zlib._Compress | None = None

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers = MutableHeaders(scope=message)
            if not _eligible(message["status"], Headers(raw=message["headers"])):
                self.mode = "pass"
                await self.send(message)
                return
            add_vary(headers)
            if not self.wanted:
                self.mode = "pass"
                await self.send(message)
                return
            self.start = message  # held until the first body part says how big it is
            return
        if kind != "http.response.body" or self.mode == "pass":
            await self.send(message)
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if self.mode == "undecided":
            assert self.start is not None
            start, self.start = self.start, None
            headers = MutableHeaders(scope=start)
            if not more and len(body) < self.minimum_size:
                self.mode = "pass"
                await self.send(start)
                await self.send(message)
                return
            self.mode = "gzip"
            headers["Content-Encoding"] = "gzip"
            if "etag" in headers:
                headers["ETag"] = _weak(headers["etag"])
            # gzip framing (wbits 16+): what browsers and curl expect from Content-Encoding: gzip.
            self.compressor = zlib.compressobj(self.level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            if not more:
                data = self.compressor.compress(body) + self.compressor.flush()
                headers["Content-Length"] = str(len(data))
                await self.send(start)
                await self.send({"type": "http.response.body", "body": data})
                return
            del headers["Content-Length"]
            await self.send(start)
        assert self.compressor is not None
        data = self.compressor.compress(body)
        # Each part goes out as it comes (a sync flush), so streamed pages stay streamed.
        data += self.compressor.flush(zlib.Z_SYNC_FLUSH if more else zlib.Z_FINISH)
        await self.send({"type": "http.response.body", "body": data, "more_body": more})
