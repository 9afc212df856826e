"""Every kind of malformed submission gets a 4xx naming the problem, and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from app.db import session_scope
from tests.helpers import Actor


def _state() -> tuple[int, list[tuple[int, str]]]:
    with session_scope() as s:
        n = s.execute(text("SELECT count(*) FROM annotations")).scalar_one()
        rows = s.execute(text("SELECT id, status FROM assignments ORDER BY id")).all()
    return n, [tuple(r) for r in rows]  # type: ignore[misc]


def _task(
    make_user: Callable[..., Actor],
    project_factory: Callable[..., dict[str, Any]],
    kind: str,
    **settings: Any,
) -> tuple[Actor, dict[str, Any]]:
    ann = make_user()
    p = project_factory(kind, items=1, members=(ann,), **settings)
    r = ann.client.post(f"/api/v1/projects/{p['id']}/tasks/next")
    assert r.status_code == 200
    return ann, r.json()


CASES: list[tuple[str, dict[str, Any], Any, int, str]] = [
    # kind, project settings, payload, status, words the detail must contain
    ("pairwise", {}, {"choice": "c"}, 422, "payload.choice"),
    ("pairwise", {}, {"choice": 1}, 422, "payload.choice"),
    ("pairwise", {}, {}, 422, "payload.choice"),
    ("pairwise", {"allow_tie": False}, {"choice": "tie"}, 422, "ties are not allowed"),
    ("pairwise", {}, {"choice": "a", "strength": 4}, 422, "payload.strength"),
    ("pairwise", {}, {"choice": "a", "strength": "2"}, 422, "payload.strength"),
    (
        "pairwise",
        {"aspects": ["style"]},
        {"choice": "a", "aspects": {"tone": "a"}},
        422,
        "unknown aspect 'tone'",
    ),
    ("pairwise", {}, {"choice": "a", "confidence": 3}, 422, "payload.confidence"),
    ("pairwise", {}, {"kind": "ranking", "order": [1, 2]}, 422, "this is a pairwise project"),
    ("pairwise", {}, ["a"], 422, "payload"),
    ("ranking", {}, {"order": []}, 422, "payload.order"),
    ("ranking", {}, {"order": [901, 902, 903, 904]}, 422, "exactly once"),
    ("ranking", {}, {"order": "1,2"}, 422, "payload.order"),
    ("span", {}, {"spans": [{"start": 5, "end": 2, "label": "bad"}]}, 422, "start < end"),
    ("span", {}, {"spans": [{"start": 0, "end": 10_000, "label": "bad"}]}, 422, "code points"),
    (
        "span",
        {},
        {"spans": [{"start": -1, "end": 2, "label": "bad"}]},
        422,
        "payload.spans.0.start",
    ),
    ("span", {}, {"spans": [{"start": 0, "end": 2, "label": "nope"}]}, 422, "'nope' is not one of"),
    ("span", {}, {"spans": [{"start": 0, "end": 2}]}, 422, "payload.spans.0.label"),
    ("span", {}, {"spans": [], "overall": 9}, 422, "payload.overall"),
    ("critique", {}, {"critique": "   "}, 422, "payload.critique"),
    ("critique", {}, {"rewrite": "x"}, 422, "payload.critique"),
    ("critique", {}, {"critique": "ok", "rating": 0}, 422, "payload.rating"),
    ("critique", {}, {"critique": ["list"]}, 422, "payload.critique"),
]


@pytest.mark.parametrize(("kind", "settings", "payload", "status", "words"), CASES)
def test_bad_payload_is_rejected_and_changes_nothing(
    make_user: Callable[..., Actor],
    project_factory: Callable[..., dict[str, Any]],
    kind: str,
    settings: dict[str, Any],
    payload: Any,
    status: int,
    words: str,
) -> None:
    ann, task = _task(make_user, project_factory, kind, **settings)
    before = _state()
    r = ann.client.post(
        f"/api/v1/assignments/{task['assignment_id']}/submit", json={"payload": payload}
    )
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert _state() == before


def test_ranking_with_a_repeated_response_names_it(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    ann, task = _task(make_user, project_factory, "ranking")
    ids = [r["id"] for r in task["item"]["responses"]]
    order = [ids[0], ids[0], ids[1], ids[2]]
    r = ann.client.post(
        f"/api/v1/assignments/{task['assignment_id']}/submit", json={"payload": {"order": order}}
    )
    assert r.status_code == 422
    assert (
        f"repeated [{ids[0]}]" in r.json()["detail"] and f"missing [{ids[3]}]" in r.json()["detail"]
    )


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b'{"payload": {"choice": "a"', 400, "not valid JSON"),
        (b"[]", 422, "body"),
        (b'{"payload": {"choice": "a"}, "time_spent_ms": -5}', 422, "time_spent_ms"),
        (b'{"payload": {"choice": "a"}, "time_spent_ms": "soon"}', 422, "time_spent_ms"),
        (b'{"payload": {"choice": "a"}, "extra": 1}', 422, "extra"),
        (b'{"choice": "a"}', 422, "payload"),
    ],
)
def test_malformed_request_bodies(
    make_user: Callable[..., Actor],
    project_factory: Callable[..., dict[str, Any]],
    body: bytes,
    status: int,
    words: str,
) -> None:
    ann, task = _task(make_user, project_factory, "pairwise")
    before = _state()
    r = ann.client.post(
        f"/api/v1/assignments/{task['assignment_id']}/submit",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert _state() == before


def test_oversize_body_gets_413_and_changes_nothing(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    ann, task = _task(make_user, project_factory, "pairwise")
    before = _state()
    huge = {"payload": {"choice": "a", "rationale": "x" * (5 * 1024 * 1024)}}
    r = ann.client.post(f"/api/v1/assignments/{task['assignment_id']}/submit", json=huge)
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert _state() == before


def test_oversize_chunked_body_gets_413(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    ann, task = _task(make_user, project_factory, "pairwise")

    def chunks() -> Any:
        yield b'{"payload": {"choice": "a", "rationale": "'
        for _ in range(6):
            yield b"x" * (1024 * 1024)
        yield b'"}}'

    r = ann.client.post(
        f"/api/v1/assignments/{task['assignment_id']}/submit",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert _state()[0] == 0


def test_unknown_assignment_is_404(make_user: Callable[..., Actor]) -> None:
    ann = make_user()
    r = ann.client.post("/api/v1/assignments/999999/submit", json={"payload": {"choice": "a"}})
    assert r.status_code == 404 and "999999" in r.json()["detail"]
