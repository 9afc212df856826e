"""Static files: content-hashed URLs cached for good, ES module imports resolved through the
page's import map, gzip when asked, and nothing outside the static folder."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.web.assets import AssetStore
from app.web.templating import STATIC_DIR, assets
from tests.conftest import Actor
from tests.web.test_pages import _browser

IMPORT = re.compile(
    r"""\b(?:import|export)\b[^;"']*?["'](\.{1,2}/[^"']+)["']|\bimport\(\s*["'](\.{1,2}/[^"']+)["']"""
)


def _modules() -> list[Path]:
    return sorted(STATIC_DIR.rglob("*.js"))


@pytest.fixture
def client(app_client_factory: Callable[[], httpx.Client]) -> httpx.Client:
    return app_client_factory()


def test_hashed_urls_are_immutable_and_unhashed_ones_revalidate(client: httpx.Client) -> None:
    url = assets.url("app.css")
    assert re.fullmatch(r"/static/app\.[0-9a-f]{12}\.css", url)
    r = client.get(url)
    assert (
        r.status_code == 200 and r.headers["cache-control"] == "public, max-age=31536000, immutable"
    )
    assert r.headers["content-type"] == "text/css; charset=utf-8"
    assert r.content == (STATIC_DIR / "app.css").read_bytes()
    plain = client.get("/static/app.css")
    assert plain.headers["cache-control"] == "no-cache" and plain.content == r.content
    again = client.get("/static/app.css", headers={"If-None-Match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    # A page from before a deploy asks for an old hash: today's file, not cached for good.
    stale = client.get("/static/app.000000000000.css")
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"


def test_gzip_only_when_the_client_asks(client: httpx.Client) -> None:
    url = assets.url("annotate/workspace.js")
    raw = (STATIC_DIR / "annotate" / "workspace.js").read_bytes()
    packed = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert (
        packed.headers["content-encoding"] == "gzip" and packed.headers["vary"] == "Accept-Encoding"
    )
    assert int(packed.headers["content-length"]) < len(raw) / 2
    assert packed.content == raw  # httpx decodes; the bytes are the file's
    for refused in ("identity", "gzip;q=0", "br"):
        plain = client.get(url, headers={"Accept-Encoding": refused})
        assert "content-encoding" not in plain.headers and plain.content == raw, refused


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app/config.py",
        "/static/%2e%2e/app/config.py",
        "/static/..%2fapp%2fconfig.py",
        "/static/.hidden",
        "/static/annotate/",
        "/static/nope.js",
        "/static//etc/passwd",
    ],
)
def test_nothing_outside_the_static_folder_is_served(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_store_rereads_a_file_that_changed(tmp_path: Path) -> None:
    store = AssetStore(tmp_path)
    (tmp_path / "a.js").write_text("export const a = 1;\n")
    first = store.url("a.js")
    (tmp_path / "a.js").write_text("export const a = 22;\n")
    assert store.url("a.js") != first
    (tmp_path / "b.js").write_text('import { a } from "./missing.js";\n')
    with pytest.raises(LookupError):
        store.module_graph("b.js")


def test_every_module_import_resolves_to_a_served_hashed_file(client: httpx.Client) -> None:
    imports = assets.import_map()["imports"]
    assert sorted(imports) == sorted(
        f"/static/{p.relative_to(STATIC_DIR).as_posix()}" for p in _modules()
    )
    for module in _modules():
        source = module.read_text()
        assert "<script" not in source
        for static, dynamic in IMPORT.findall(source):
            target = (module.parent / (static or dynamic)).resolve()
            key = f"/static/{target.relative_to(STATIC_DIR).as_posix()}"
            assert key in imports, f"{module.name} imports {static or dynamic}: no such module"
            r = client.get(imports[key])
            assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
            assert r.headers["content-type"] == "text/javascript; charset=utf-8"


def test_annotate_page_maps_modules_and_preloads_only_its_own_kind(
    app_client_factory: Callable[[], httpx.Client],
    make_user: Callable[..., Actor],
    project_factory: Callable[..., dict[str, object]],
) -> None:
    annotator = make_user("annotator")
    project = project_factory("span", items=1, members=(annotator,))
    page = _browser(app_client_factory, annotator).get(f"/projects/{project['id']}/annotate")
    assert page.status_code == 200
    html = page.text
    found = re.search(r'<script type="importmap" nonce="[^"]+">(.*?)</script>', html, re.S)
    assert found and json.loads(found.group(1)) == assets.import_map()
    assert html.index('type="importmap"') < html.index('type="module"')
    # main.js alone is in the page; it preloads the rest, listed in the boot data.
    entry = re.findall(r'<script type="module" src="([^"]+)"', html)
    assert entry == [assets.url("annotate/main.js")]
    boot = re.search(
        r'<script type="application/json" id="boot" nonce="[^"]+">(.*?)</script>', html, re.S
    )
    assert boot
    modules = json.loads(boot.group(1))["modules"]
    names = {u.rsplit("/", 1)[-1].split(".")[0] for u in modules}
    assert {"workspace", "span", "api", "dom", "outbox", "drafts", "keyboard"} <= names
    assert not names & {"main", "pairwise", "ranking", "critique", "diff"}
    assert all(u in assets.import_map()["imports"].values() for u in modules)
    assert "?v=" not in html
