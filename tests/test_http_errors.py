"""Every error answer is JSON `{detail, error}`: unknown routes, wrong methods, malformed and
ambiguous bodies, unexpected failures (which also keep the connection open), and every code a
client can receive is documented in README."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import exc as sa_exc

from app.errors import DomainError
from app.http_errors import BODY_CODES, HTTP_CODES, UnexpectedErrors, install_error_handlers
from tests.conftest import Actor
from tests.projects.test_projects import sql
from tests.rawjson import JSON

ROOT = Path(__file__).resolve().parents[1]


def test_unknown_route_and_wrong_method_are_json(researcher: Actor) -> None:
    r = researcher.client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found" and "/api/v1/nothing-here" in r.json()["detail"]
    r = researcher.client.put("/api/v1/projects", json={})
    assert r.status_code == 405
    assert r.json()["error"] == "method_not_allowed"
    assert r.headers["allow"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"name": "a", "kind": "pairwise", "name": "b"}', "'name' appears twice"),
        (b'{"name": "a", "kind": "pairwise", "aspects": [], "aspects": ["x"]}', "'aspects'"),
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
        (b'{"name": "a", "kind": "pairwise"', "not valid JSON"),
    ],
)
def test_ambiguous_or_malformed_json_is_400(researcher: Actor, body: bytes, words: str) -> None:
    r = researcher.client.post("/api/v1/projects", content=body, headers=JSON)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "malformed_json"
    assert words in r.json()["detail"]
    assert sql("SELECT count(*) FROM projects") == [(0,)]


def test_repeated_keys_in_nested_objects_are_refused(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, object]]
) -> None:
    ann = make_user()
    p = project_factory("pairwise", items=1, members=(ann,))
    task = ann.client.post(f"/api/v1/projects/{p['id']}/tasks/next").json()
    body = b'{"payload": {"choice": "a", "choice": "b"}}'
    r = ann.client.post(
        f"/api/v1/assignments/{task['assignment_id']}/submit", content=body, headers=JSON
    )
    assert r.status_code == 400 and "'choice' appears twice" in r.json()["detail"]
    assert sql("SELECT count(*) FROM annotations") == [(0,)]


def test_validation_errors_list_each_problem(researcher: Actor) -> None:
    r = researcher.client.post("/api/v1/projects", json={"kind": "nope", "overlap": 0})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "validation_error"
    assert {tuple(e["loc"]) for e in body["errors"]} >= {("body", "name"), ("body", "kind")}
    assert body["detail"].endswith("more problems)")


def _boom_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(UnexpectedErrors)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/fine")
    def fine() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/broker-down")
    def broker_down() -> None:
        raise redis.ConnectionError("Connection refused")

    @app.get("/pool-exhausted")
    def pool_exhausted() -> None:
        raise sa_exc.TimeoutError("QueuePool limit reached")

    return app


@pytest.mark.parametrize(
    ("path", "what"), [("/broker-down", "broker"), ("/pool-exhausted", "database")]
)
def test_an_unreachable_broker_or_database_is_a_503_to_retry(path: str, what: str) -> None:
    with TestClient(_boom_app()) as client:
        r = client.get(path)
    assert r.status_code == 503
    assert r.json()["error"] == "service_unavailable" and what in r.json()["detail"]
    assert r.headers["retry-after"] == "1"


def test_an_unexpected_error_is_a_json_500() -> None:
    with TestClient(_boom_app()) as client:
        r = client.get("/boom")
    assert r.status_code == 500
    assert r.json()["error"] == "internal_error"
    assert "a bug" not in r.text  # internals stay in the log


@pytest.fixture
def boom_server() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(_boom_app(), port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(4096)
    return int(head.split()[1]), body


def test_the_connection_stays_open_after_a_500(boom_server: int) -> None:
    with socket.create_connection(("127.0.0.1", boom_server), timeout=5) as sock:
        for path, status in (("/boom", 500), ("/fine", 200), ("/boom", 500), ("/fine", 200)):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            got, body = _read_response(sock)
            assert got == status
            assert "error" in json.loads(body) or json.loads(body) == {"ok": "yes"}


def _documented_codes() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Error codes", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))


def _all_subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def test_every_error_code_is_documented_in_readme() -> None:
    # Every module of the app, worker-side ones too (the inference registry's errors reach the
    # API through judge and training configs): heavy libraries load only inside functions.
    import app

    for module in pkgutil.walk_packages(app.__path__, "app."):
        importlib.import_module(module.name)

    codes = {c.code for c in _all_subclasses(DomainError)} | set(HTTP_CODES.values())
    codes |= set(BODY_CODES)
    codes.add(DomainError.code)
    documented = _documented_codes()
    assert codes - documented == set(), "add these codes to README's error table"
    assert documented - codes == set(), "README lists codes nothing raises"
