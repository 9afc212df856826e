"""The bad-input corpus against every write route: always a 4xx, and nothing stored.

Every leaf of a valid body is replaced in turn by each hostile value (NaN, Infinity, 1e400,
NUL, lone surrogates, 2^63, 2^70, deep nesting; Unicode digits where a number belongs), a key
that PostgreSQL cannot store is added to every object, and whole bodies are spoiled (repeated
keys, runaway nesting, huge, invalid UTF-8, wrong content types, the wrong JSON type). Path
ids get the same treatment. After each request the content of every table must be unchanged;
at the end the valid request itself must succeed, which shows the world could have accepted
it. Pages get their forms spoiled the same way.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.rawjson import BIG_FLOAT, INF, NAN, raw
from tests.routes import API, PAGES, UPLOAD, Page, Rule, credentials, path_of
from tests.world import World, build_world

pytestmark = pytest.mark.badinput

Leaf = tuple[Any, ...]


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


BAD_VALUES: list[tuple[str, Any]] = [
    ("NaN", NAN),
    ("Infinity", INF),
    ("-Infinity", -INF),
    ("1e400", BIG_FLOAT),
    ("NUL", "a\x00b"),
    ("lone high surrogate", "a\ud800b"),
    ("lone low surrogate", "\udc00"),
    ("2^63", 2**63),
    ("2^70", 2**70),
    ("-2^63-1", -(2**63) - 1),
    ("nested 100 deep", _deep(100)),
]
# Where the valid value is a number, text made of digits is wrong too.
NUMBER_ONLY: list[tuple[str, Any]] = [
    ("superscript two", "²"),
    ("Arabic-Indic digits", "١٢٣"),
    ("fullwidth digits", "\uff11\uff12"),
]
BAD_KEYS = ["\x00", "\ud800"]
BAD_IDS = ["²", "١٢", str(2**63), str(2**70), "-1", "0", "%00", "1e3"]

# Bodies with more fields than the authorization matrix needs, so that more leaves are spoiled.
FULL_BODIES: dict[str, Callable[[World], Any]] = {
    "POST /api/v1/projects": lambda w: {
        "name": "p",
        "kind": "pairwise",
        "guidelines": "g",
        "overlap": 2,
        "aspects": ["tone"],
        "allow_tie": True,
        "lease_seconds": 60,
    },
    "PATCH /api/v1/projects/{project_id}": lambda w: {
        "name": "renamed",
        "guidelines": "g",
        "overlap": 3,
        "allow_tie": False,
        "lease_seconds": 120,
        "aspects": ["tone"],
    },
    "POST /api/v1/users": lambda w: {
        "email": "fresh@example.org",
        "password": "long enough",
        "role": "annotator",
    },
    "POST /api/v1/projects/{project_id}/items": lambda w: [
        {
            "external_id": "e-1",
            "prompt": "p",
            "responses": [{"id": "r1", "text": "a", "model": "m"}, {"text": "b"}],
            "metadata": {"k": "v"},
            "priority": 1,
        }
    ],
    "POST /api/v1/assignments/{assignment_id}/submit": lambda w: {
        "payload": {"choice": "a", "strength": 2, "rationale": "r"},
        "time_spent_ms": 5,
        "client_submission_id": "c-1",
    },
    "PUT /api/v1/assignments/{assignment_id}/draft": lambda w: {"draft": {"note": "x"}},
    "POST /api/v1/projects/{project_id}/exports": lambda w: {
        "schema": "preference",
        "format": "parquet",
        "min_agreement": 0.5,
        "min_votes": 1,
        "annotator_ids": [w.people["annotator_member"].id],
        "max_annotation_id": 10,
        "metadata": {"k": "v"},
    },
}
# Routes that take any content type (the upload sniffs JSON, JSONL or Parquet).
SNIFFS = {"POST /api/v1/projects/{project_id}/items"}
# Routes whose body may be left out.
OPTIONAL_BODY = {"POST /api/v1/assignments/{assignment_id}/skip"}
SUCCESS_CALLERS = ("researcher_member", "annotator_member", "admin", "anonymous")
# Deletions the world's still-queued export job refuses (409 jobs_running, as routes.py
# declares): their valid request is that refusal, and nothing may change either way.
REFUSED_IN_WORLD = {
    "DELETE /api/v1/projects/{project_id}",
    "DELETE /api/v1/projects/{project_id}/exports/{export_id}",
    "POST /projects/{project_id}/delete",
    "POST /projects/{project_id}/exports/{export_id}/delete",
}


def _caller(key: str, rule: Rule | Page) -> str:
    method = key.split(" ", 1)[0]
    for caller in SUCCESS_CALLERS:
        status = rule.expected(caller, method)
        if status < 400 or (key in REFUSED_IN_WORLD and status == 409):
            return caller
    raise AssertionError(f"{key}: no caller may use it")


def _leaves(value: Any, path: Leaf = ()) -> Iterator[tuple[Leaf, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list) and value:
        for n, v in enumerate(value):
            yield from _leaves(v, (*path, n))
    else:
        yield path, value


def _replaced(body: Any, path: Leaf, new: Any) -> Any:
    out = copy.deepcopy(body)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = new
    return out


def _with_bad_keys(body: Any, key: str) -> Any:
    if isinstance(body, dict):
        return {**{k: _with_bad_keys(v, key) for k, v in body.items()}, key: 1}
    if isinstance(body, list):
        return [_with_bad_keys(v, key) for v in body]
    return body


def _spoiled_json(body: Any) -> Iterator[tuple[str, bytes]]:
    for path, value in _leaves(body):
        where = ".".join(map(str, path)) or "body"
        bad = BAD_VALUES + (NUMBER_ONLY if isinstance(value, int | float) else [])
        for name, new in bad:
            yield f"{where} = {name}", raw(_replaced(body, path, new) if path else new)
    for key in BAD_KEYS:
        yield f"key {key!r} in every object", raw(_with_bad_keys(body, key))
    text_body = json.dumps(body)
    if isinstance(body, dict) and body:
        first = next(iter(body))
        again = json.dumps({first: body[first]})[1:-1]
        yield "repeated key", (text_body[:-1] + ", " + again + "}").encode()
    elif isinstance(body, list) and body and isinstance(body[0], dict):
        row = json.dumps(body[0])
        first = next(iter(body[0]))
        yield (
            "repeated key in a row",
            ("[" + row[:-1] + ", " + json.dumps({first: body[0][first]})[1:-1] + "}]").encode(),
        )
    yield "nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000
    yield "invalid UTF-8", text_body.encode()[:-1] + b'\xff\xfe"' + text_body.encode()[-1:]
    yield "truncated", text_body.encode()[: max(1, len(text_body) // 2)]
    yield "a string instead", b'"just text"'
    yield "a number instead", b"12"


def _content_types() -> list[tuple[str, str]]:
    return [
        ("text/plain", "text/plain"),
        ("a form", "application/x-www-form-urlencoded"),
        ("multipart without a boundary", "multipart/form-data"),
        ("XML", "application/xml"),
    ]


def _state() -> dict[str, str]:
    """A fingerprint of every table's content: a rejected request must leave it unchanged."""
    from app.db import session_scope
    from app.models import Base

    out = {}
    with session_scope() as s:
        for table in sorted(Base.metadata.tables):
            out[table] = s.execute(
                text(
                    f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
                )
            ).scalar_one()
    return out


@pytest.fixture
def client() -> Iterator[TestClient]:
    from app.main import app

    with TestClient(app) as c:
        yield c


def _auth(client: TestClient, caller: str, w: World, page: bool) -> dict[str, str]:
    headers, cookies = credentials(caller, w, page)
    client.cookies.clear()
    for name, value in cookies.items():
        client.cookies.set(name, value)
    return headers


def _failures(
    cases: Iterator[tuple[str, Callable[[], httpx.Response]]], allow: Callable[[int], bool]
) -> list[str]:
    before = _state()
    wrong = []
    for name, send in cases:
        r = send()
        if not allow(r.status_code):
            wrong.append(f"{name}: {r.status_code} {r.text[:200]}")
        elif r.headers.get("content-type", "").startswith("application/json") and (
            "error" not in r.json()
        ):
            wrong.append(f"{name}: no error code in {r.text[:200]}")
        after = _state()
        if after != before:
            changed = [t for t in after if after[t] != before[t]]
            wrong.append(f"{name}: {r.status_code} but changed {changed}")
            before = after
    return wrong


def _is_4xx(status: int) -> bool:
    return 400 <= status < 500


WRITE_API = sorted(k for k in API if not k.startswith(("GET ", "HEAD ")))


@pytest.mark.parametrize("key", WRITE_API)
def test_api_write_route_refuses_the_corpus(
    key: str, password_hash: str, client: TestClient
) -> None:
    rule = API[key]
    method, template = key.split(" ", 1)
    w = build_world(password_hash)
    caller = _caller(key, rule)
    headers = _auth(client, caller, w, page=False)
    url = path_of(template, w)
    body_of = FULL_BODIES.get(key, rule.json)

    def send(content: bytes | None, content_type: str = "application/json", path: str = url):
        def go() -> httpx.Response:
            h = {**headers, "Content-Type": content_type} if content is not None else headers
            return client.request(method, path, content=content, headers=h)

        return go

    cases: list[tuple[str, Callable[[], httpx.Response]]] = []
    valid = raw(body_of(w)) if body_of else None
    if body_of is not None:
        body = body_of(w)
        cases += [(name, send(content)) for name, content in _spoiled_json(body)]
        if key not in SNIFFS:
            cases += [(f"as {name}", send(valid, ctype)) for name, ctype in _content_types()]
        if key not in OPTIONAL_BODY:
            cases.append(("empty body", send(b"")))
        limit = b" " * (4 * 1024 * 1024) if key not in SNIFFS else b""
        if limit:
            cases.append(("a body over 4 MiB", send(valid + limit)))  # type: ignore[operator]
    for param in ("project_id", "assignment_id", "export_id", "job_id", "user_id", "item_id"):
        if "{" + param + "}" in template:
            for bad in BAD_IDS:
                ids = {**w.ids(), param: bad}
                cases.append((f"{param} = {bad}", send(valid, path=template.format(**ids))))
    wrong = _failures(iter(cases), _is_4xx)
    assert not wrong, f"{key}:\n  " + "\n  ".join(wrong)
    # The untouched request is accepted: the refusals above were the corpus's doing.
    final = send(valid)()
    if key in REFUSED_IN_WORLD:
        assert final.status_code == 409, f"{key}: {final.status_code} {final.text[:300]}"
        return
    assert final.status_code < 300, f"{key} refused its valid body: {final.text[:300]}"


FULL_FORMS: dict[str, Callable[[World], dict[str, str]]] = {
    "POST /login": lambda w: {
        "email": w.people["annotator_member"].email,
        "password": "correct horse battery",
    },
    "POST /projects/new": lambda w: {
        "name": "n",
        "kind": "pairwise",
        "guidelines": "g",
        "overlap": "2",
        "lease_seconds": "60",
        "aspects": "tone\nstyle",
    },
    "POST /projects/{project_id}/settings": lambda w: {
        "name": "renamed",
        "guidelines": "g",
        "overlap": "2",
        "lease_seconds": "60",
    },
}
TEXT_VALUES = ["a\x00b", "x" * 300_000, "\udc00", "a\udc00b"]
NUMBER_VALUES = ["9" * 40, str(2**70), "²", "NaN", "1e400", "-1"]
NUMERIC_FIELDS = {"overlap", "lease_seconds"}


def _page_form(key: str, page: Page, w: World) -> dict[str, str]:
    if key in FULL_FORMS:
        return FULL_FORMS[key](w)
    return page.form(w) if page.form else {}


WRITE_PAGES = sorted(k for k in PAGES if k.startswith("POST ") and k != "POST /logout")


@pytest.mark.parametrize("key", WRITE_PAGES)
def test_page_form_refuses_the_corpus(key: str, password_hash: str, client: TestClient) -> None:
    page = PAGES[key]
    template = key.split(" ", 1)[1]
    w = build_world(password_hash)
    caller = _caller(key, page)
    headers = _auth(client, caller, w, page=True)
    url = path_of(template, w)
    form = _page_form(key, page, w)
    csrf = {"csrf_token": w.people[caller].csrf} if caller in w.people else {}
    if key == "POST /login":
        token = client.get("/login").cookies.get("tandem_login_csrf", "")
        client.cookies.set("tandem_login_csrf", token, path="/login")
        csrf = {"login_csrf": token}

    def post(data: dict[str, str], files: Any = None, path: str = url):
        def go() -> httpx.Response:
            if files is not None:
                return client.post(
                    path, data=data, files=files, headers=headers, follow_redirects=False
                )
            # Encoded by hand: a lone surrogate goes out as the invalid UTF-8 a client could send.
            body = urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in data.items()})
            form_headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
            return client.post(path, content=body, headers=form_headers, follow_redirects=False)

        return go

    cases: list[tuple[str, Callable[[], httpx.Response]]] = []
    for field in form:
        values = TEXT_VALUES + (NUMBER_VALUES if field in NUMERIC_FIELDS else [])
        for value in values:
            cases.append((f"{field} = {value[:12]!r}", post({**form, **csrf, field: value})))
    if page.files:
        for name, content in _spoiled_json(json.loads(UPLOAD)):
            files = {"file": ("rows.json", content)}
            cases.append((f"file: {name}", post({**form, **csrf}, files)))
    if page.form is None and key != "POST /login":  # a script's call: CSRF in a header
        bare = {k: v for k, v in headers.items() if k != "X-CSRF-Token"}
        cases.append(("no CSRF header", lambda: client.post(url, headers=bare)))
    elif key != "POST /login":
        cases.append(("no CSRF field", post(dict(form))))
        cases.append(
            ("JSON instead of a form", lambda: client.post(url, json=form, headers=headers))
        )
    for param in ("project_id", "user_id"):
        if "{" + param + "}" in template:
            for bad in BAD_IDS:
                path = template.format(**{**w.ids(), param: bad})
                cases.append((f"{param} = {bad}", post({**form, **csrf}, path=path)))
    wrong = _failures(iter(cases), _is_4xx)
    assert not wrong, f"{key}:\n  " + "\n  ".join(wrong)
