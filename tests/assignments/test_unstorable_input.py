"""NaN, Infinity, 1e400, NUL and lone surrogates in annotate requests: a 422 naming the field,
a body that can be sent as JSON, and nothing stored (each once gave a 500)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from app.db import session_scope
from tests.conftest import Actor
from tests.rawjson import BIG_FLOAT, BIGINT_MAX, INF, JSON, NAN, NUL, SURROGATE, raw


def _state() -> tuple[Any, ...]:
    with session_scope() as s:
        return (
            s.execute(text("SELECT count(*) FROM annotations")).scalar_one(),
            tuple(
                s.execute(
                    text("SELECT id, status, draft::text, skip_reason FROM assignments ORDER BY id")
                ).all()
            ),
        )


def _task(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]], kind: str
) -> tuple[Actor, dict[str, Any]]:
    ann = make_user()
    p = project_factory(
        kind, items=1, members=(ann,), aspects=["tone"] if kind == "pairwise" else None
    )
    r = ann.client.post(f"/api/v1/projects/{p['id']}/tasks/next")
    assert r.status_code == 200, r.text
    return ann, r.json()


def _send(actor: Actor, method: str, url: str, body: Any) -> Any:
    r = actor.client.request(method, url, content=raw(body), headers=JSON)
    assert r.headers["content-type"].startswith("application/json"), r.text
    return r


SUBMIT_CASES: list[tuple[str, Any, str]] = [
    # kind, submit body, the field the detail must name
    ("pairwise", {"payload": {"choice": "a", "strength": NAN}}, "payload.strength"),
    ("pairwise", {"payload": {"choice": "a", "strength": INF}}, "payload.strength"),
    ("pairwise", {"payload": {"choice": "a", "strength": BIG_FLOAT}}, "payload.strength"),
    ("pairwise", {"payload": {"choice": "a", "rationale": SURROGATE}}, "payload.rationale"),
    ("pairwise", {"payload": {"choice": "a", "rationale": NUL}}, "payload.rationale"),
    ("pairwise", {"payload": {"choice": "a", "aspects": {SURROGATE: "a"}}}, "payload.aspects"),
    ("pairwise", {"payload": {"choice": "a", "aspects": {NUL: "a"}}}, "payload.aspects"),
    ("pairwise", {"payload": {"choice": NUL}}, "payload.choice"),
    ("pairwise", {"payload": {"choice": "a"}, "client_submission_id": NUL}, "client_submission_id"),
    (
        "pairwise",
        {"payload": {"choice": "a"}, "client_submission_id": SURROGATE},
        "client_submission_id",
    ),
    ("pairwise", {"payload": {"choice": "a"}, "time_spent_ms": NAN}, "time_spent_ms"),
    ("pairwise", {"payload": {"choice": "a"}, "time_spent_ms": BIG_FLOAT}, "time_spent_ms"),
    ("pairwise", {"payload": {"choice": "a"}, "time_spent_ms": 2**70}, "time_spent_ms"),
    ("ranking", {"payload": {"order": [NAN, 1, 2, 3]}}, "payload.order"),
    ("ranking", {"payload": {"order": [2**63, 1, 2, 3]}}, "payload.order"),
    (
        "span",
        {"payload": {"spans": [{"start": 0, "end": 1, "label": NUL}]}},
        "payload.spans.0.label",
    ),
    (
        "span",
        {"payload": {"spans": [{"start": 0, "end": 1, "label": "bad", "comment": SURROGATE}]}},
        "payload.spans.0.comment",
    ),
    (
        "span",
        {"payload": {"spans": [{"start": INF, "end": 1, "label": "bad"}]}},
        "payload.spans.0.start",
    ),
    ("span", {"payload": {"spans": [], "overall": NAN}}, "payload.overall"),
    ("critique", {"payload": {"critique": NUL}}, "payload.critique"),
    ("critique", {"payload": {"critique": "fine", "rewrite": SURROGATE}}, "payload.rewrite"),
    ("critique", {"payload": {"critique": "fine", "rating": BIG_FLOAT}}, "payload.rating"),
]


@pytest.mark.parametrize(("kind", "body", "field"), SUBMIT_CASES)
def test_unstorable_submit_is_422_naming_the_field(
    make_user: Callable[..., Actor],
    project_factory: Callable[..., dict[str, Any]],
    kind: str,
    body: Any,
    field: str,
) -> None:
    ann, task = _task(make_user, project_factory, kind)
    before = _state()
    r = _send(ann, "POST", f"/api/v1/assignments/{task['assignment_id']}/submit", body)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    assert r.json()["error"] == "validation_error"
    assert _state() == before
    # The connection stays usable: the next request on it is served normally.
    assert ann.client.get("/api/v1/me").status_code == 200


@pytest.mark.parametrize(
    "draft",
    [{"note": NUL}, {"note": SURROGATE}, {"x": NAN}, {"x": INF}, {"x": BIG_FLOAT}, {SURROGATE: 1}],
)
def test_unstorable_draft_is_422(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]], draft: Any
) -> None:
    ann, task = _task(make_user, project_factory, "pairwise")
    before = _state()
    r = _send(ann, "PUT", f"/api/v1/assignments/{task['assignment_id']}/draft", {"draft": draft})
    assert r.status_code == 422, r.text
    assert "draft" in r.json()["detail"]
    assert _state() == before


def test_deeply_nested_draft_is_422(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    ann, task = _task(make_user, project_factory, "pairwise")
    draft: Any = {}
    for _ in range(200):
        draft = {"d": draft}
    r = _send(ann, "PUT", f"/api/v1/assignments/{task['assignment_id']}/draft", {"draft": draft})
    assert r.status_code == 422, r.text
    assert "draft" in r.json()["detail"]


@pytest.mark.parametrize("reason", [NUL, SURROGATE])
def test_unstorable_skip_reason_is_422(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]], reason: str
) -> None:
    ann, task = _task(make_user, project_factory, "pairwise")
    before = _state()
    r = _send(ann, "POST", f"/api/v1/assignments/{task['assignment_id']}/skip", {"reason": reason})
    assert r.status_code == 422, r.text
    assert "reason" in r.json()["detail"]
    assert _state() == before


@pytest.mark.parametrize("assignment_id", [str(BIGINT_MAX + 1), str(2**70), "-1", "0"])
@pytest.mark.parametrize("action", ["submit", "skip", "draft"])
def test_out_of_range_assignment_ids_are_404_or_422(
    make_user: Callable[..., Actor], assignment_id: str, action: str
) -> None:
    ann = make_user()
    body = {"submit": {"payload": {"choice": "a"}}, "skip": {}, "draft": {"draft": {}}}[action]
    method = "PUT" if action == "draft" else "POST"
    r = ann.client.request(method, f"/api/v1/assignments/{assignment_id}/{action}", json=body)
    assert r.status_code in (404, 422), r.text
    assert r.json()["error"] in ("not_found", "validation_error")


@pytest.mark.parametrize("project_id", [str(BIGINT_MAX + 1), str(2**70)])
def test_out_of_range_project_id_for_next_task_is_404_or_422(
    make_user: Callable[..., Actor], project_id: str
) -> None:
    ann = make_user()
    r = ann.client.post(f"/api/v1/projects/{project_id}/tasks/next")
    assert r.status_code in (404, 422), r.text
