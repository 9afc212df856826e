"""Static files under content-hashed names: the name -> hash manifest, the URLs pages use, the
import map that sends module imports to hashed names, and the route that serves them.

`/static/annotate/main.3f2a9c1be0d4.js` is `static/annotate/main.js` whose sha256 starts with
that hash: served with a year-long immutable cache, so an edit changes the URL. Unhashed names
are served too (`no-cache`, revalidated by ETag). ES modules import each other by relative,
unhashed paths; the page's import map (`import_map()`) resolves every one to its hashed URL,
and `module_preloads()` lists a page's module graph for `<link rel="modulepreload">` so the
browser fetches it in parallel instead of import by import.

Text files are gzipped once (level 9) when first read and kept in memory with their digest;
a file whose size or mtime changes is read again, so editing a file in development needs no
restart.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from app.web.compression import accepts_gzip, compressible

HASH_LENGTH = 12
PREFIX = "/static/"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_HASHED = re.compile(
    rf"^(?P<stem>.+)\.(?P<digest>[0-9a-f]{{{HASH_LENGTH}}})(?P<ext>\.[A-Za-z0-9]+)$"
)
# Static imports with a relative specifier: `import ... from "./x.js"`, `import "./x.js"`,
# `export ... from "./x.js"`. Dynamic `import("./x.js")` is not followed: a page loading a
# module on demand preloads only the one it needs.
_IMPORT = re.compile(
    r"""\b(?:import|export)\s*(?:[\w*{}\s,$]+?\s*from\s*)?["'](\.{1,2}/[^"'\s]+)["']"""
)
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css"}


@dataclass(frozen=True)
class Asset:
    """One file of the static folder as served."""

    name: str  # posix path relative to the folder, e.g. "annotate/core/api.js"
    digest: str
    body: bytes
    gzipped: bytes | None
    media_type: str
    stamp: tuple[int, int]  # (size, mtime_ns) it was read at

    @property
    def hashed_name(self) -> str:
        path = PurePosixPath(self.name)
        return str(path.with_name(f"{path.stem}.{self.digest}{path.suffix}"))

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


def _media_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    media = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{media}; charset=utf-8" if compressible(media) else media


class AssetStore:
    """The files of one static folder, by name, each read and hashed once per change."""

    def __init__(self, root: Path, prefix: str = PREFIX) -> None:
        self.root = root.resolve()
        self.prefix = prefix  # the URL path the folder is served under
        self._assets: dict[str, Asset] = {}
        self._imports_of: dict[str, tuple[str, list[str]]] = {}  # name -> (digest, imports)
        self._lock = threading.Lock()

    def _path(self, name: str) -> Path | None:
        parts = PurePosixPath(name).parts
        # No absolute paths, no way up, nothing hidden (dotfiles, editor swap files).
        if not parts or name.startswith("/") or any(p.startswith(".") for p in parts):
            return None
        path = self.root.joinpath(*parts)
        return path if path.is_file() and self.root in path.resolve().parents else None

    def get(self, name: str) -> Asset | None:
        """The asset called name (relative to the folder), or None."""
        path = self._path(name)
        if path is None:
            return None
        st = path.stat()
        stamp = (st.st_size, st.st_mtime_ns)
        asset = self._assets.get(name)
        if asset is not None and asset.stamp == stamp:
            return asset
        body = path.read_bytes()
        media_type = _media_type(name)
        packed = gzip.compress(body, compresslevel=9, mtime=0) if compressible(media_type) else None
        asset = Asset(
            name=name,
            digest=hashlib.sha256(body).hexdigest()[:HASH_LENGTH],
            body=body,
            gzipped=packed if packed is not None and len(packed) < len(body) else None,
            media_type=media_type,
            stamp=stamp,
        )
        with self._lock:
            self._assets[name] = asset
        return asset

    def require(self, name: str) -> Asset:
        asset = self.get(name)
        if asset is None:
            raise LookupError(f"no static file {name!r} under {self.root}")
        return asset

    def resolve(self, requested: str) -> tuple[Asset, bool] | None:
        """The asset a request path names, and whether it named the current hash."""
        asset = self.get(requested)
        if asset is not None:
            return asset, False
        match = _HASHED.match(requested)
        if match is None:
            return None
        asset = self.get(match["stem"] + match["ext"])
        if asset is None:
            return None
        return asset, asset.digest == match["digest"]

    def names(self, suffix: str = "") -> list[str]:
        """Every servable file name under the folder (ending in suffix), sorted."""
        out = []
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rel = Path(folder).relative_to(self.root)
            for file in files:
                if not file.startswith(".") and file.endswith(suffix):
                    out.append((rel / file).as_posix())
        return sorted(out)

    def url(self, name: str) -> str:
        return self.prefix + self.require(name).hashed_name

    def import_map(self) -> dict[str, dict[str, str]]:
        """An import map sending each module's unhashed URL to its hashed one (for `tojson`)."""
        return {"imports": {PREFIX + name: self.url(name) for name in self.names(".js")}}

    def module_graph(self, *entries: str) -> list[str]:
        """Names of entries and every module they import statically, each once, depth first:
        what a page should preload."""
        seen: list[str] = []

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.append(name)
            for dep in self._imports(name):
                visit(dep)

        for entry in entries:
            visit(entry)
        return seen

    def _imports(self, name: str) -> list[str]:
        asset = self.require(name)
        cached = self._imports_of.get(name)
        if cached is not None and cached[0] == asset.digest:
            return cached[1]
        base = PurePosixPath(name).parent
        deps = []
        for spec in _IMPORT.findall(asset.body.decode("utf-8")):
            target = os.path.normpath(str(base / spec)).replace(os.sep, "/")
            self.require(target)  # a missing module is a bug: fail the page, loudly
            deps.append(target)
        self._imports_of[name] = (asset.digest, deps)
        return deps

    def module_preloads(self, *entries: str) -> list[str]:
        return [self.url(name) for name in self.module_graph(*entries)]

    def response(self, request: Request, requested: str) -> Response:
        """Serve a static file: 200 (gzip when asked), 304 on a matching ETag, or 404."""
        found = self.resolve(requested)
        if found is None:
            return PlainTextResponse("Not Found", status_code=404)
        asset, current = found
        headers = {
            "ETag": asset.etag,
            # An old hash still gets today's file (a page from before a deploy), uncached.
            "Cache-Control": IMMUTABLE if current else REVALIDATE,
        }
        if asset.gzipped is not None:
            headers["Vary"] = "Accept-Encoding"
        if asset.etag in _etags(request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        body = asset.body
        if asset.gzipped is not None and accepts_gzip(request.headers.get("accept-encoding", "")):
            body = asset.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=asset.media_type, headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
