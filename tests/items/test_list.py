"""Listing items: keyset pages in import order, with responses, metadata and gold flags."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import Actor, make_items

ProjectFactory = Callable[..., dict[str, Any]]


def url(project: dict[str, Any]) -> str:
    return f"/api/v1/projects/{project['id']}/items"


def all_pages(actor: Actor, project: dict[str, Any], limit: int) -> list[list[dict[str, Any]]]:
    pages = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        r = actor.client.get(url(project), params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_items_come_back_in_import_order_with_everything(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory("ranking", items=0)
    rows: list[dict[str, Any]] = [
        {
            "external_id": "first",
            "prompt": "Rank these",
            "responses": [
                {"id": "r3", "text": "third 🙂", "model": "m3"},
                {"id": "r1", "text": "first", "model": "m1"},
                {"text": "日本", "model": None},
            ],
            "metadata": {"source": "eval", "nested": {"k": [1, 2]}},
            "priority": 7,
        },
        {
            "prompt": "Gold one",
            "responses": [{"text": "a"}, {"text": "b"}],
            "gold_answer": {"order": [1, 0]},
        },
    ]
    assert researcher.client.post(url(p), json=rows).status_code == 201
    items = researcher.client.get(url(p)).json()["items"]
    assert len(items) == 2
    first, gold = items
    assert first["id"] < gold["id"]
    assert first["external_id"] == "first"
    assert first["prompt"] == "Rank these"
    assert first["metadata"] == {"source": "eval", "nested": {"k": [1, 2]}}
    assert first["priority"] == 7
    assert (first["is_gold"], first["gold_answer"]) == (False, None)
    assert [(x["external_id"], x["text"], x["model"]) for x in first["responses"]] == [
        ("r3", "third 🙂", "m3"),
        ("r1", "first", "m1"),
        (None, "日本", None),
    ]
    assert all(isinstance(x["id"], int) for x in first["responses"])
    assert "created_at" in first

    assert gold["external_id"] is None
    assert gold["metadata"] == {}
    assert gold["is_gold"] is True
    assert gold["gold_answer"] == {"order": [1, 0]}
    assert [x["text"] for x in gold["responses"]] == ["a", "b"]


def test_items_are_keyset_paginated(researcher: Actor, project_factory: ProjectFactory) -> None:
    p = project_factory("pairwise", items=7)
    pages = all_pages(researcher, p, limit=3)
    assert [len(page) for page in pages] == [3, 3, 1]
    flat = [i for page in pages for i in page]
    assert [i["external_id"] for i in flat] == [f"x-{n}" for n in range(7)]
    assert [i["id"] for i in flat] == sorted(i["id"] for i in flat)
    for n, item in enumerate(flat):
        assert [r["text"] for r in item["responses"]] == [
            f"response {n}.0 🙂 日本",
            f"response {n}.1 🙂 日本",
        ]
        assert [r["model"] for r in item["responses"]] == ["m0", "m1"]

    # An exact multiple of the page size ends without an empty extra page.
    assert [len(page) for page in all_pages(researcher, p, limit=7)] == [7]
    # Default page size.
    assert len(researcher.client.get(url(p)).json()["items"]) == 7


def test_only_this_projects_items_are_listed(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    a = project_factory(items=3)
    b = project_factory(items=0)
    researcher.client.post(url(b), json=make_items("pairwise", 2, prefix="b"))
    assert [i["external_id"] for i in researcher.client.get(url(b)).json()["items"]] == [
        "b-0",
        "b-1",
    ]
    assert len(researcher.client.get(url(a)).json()["items"]) == 3


def test_empty_project_lists_nothing(researcher: Actor, project_factory: ProjectFactory) -> None:
    p = project_factory(items=0)
    assert researcher.client.get(url(p)).json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"cursor": "x1"}, {"limit": "a"}])
def test_bad_paging_parameters_are_422(
    researcher: Actor, project_factory: ProjectFactory, params: dict[str, Any]
) -> None:
    p = project_factory(items=1)
    r = researcher.client.get(url(p), params=params)
    assert r.status_code == 422
    assert next(iter(params)) in r.json()["detail"]


def test_annotators_get_403_even_as_members(
    project_factory: ProjectFactory, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    p = project_factory(items=2, members=(annotator,))
    r = annotator.client.get(url(p))
    assert r.status_code == 403
    assert "researcher" in r.json()["detail"]


def test_non_member_researcher_gets_404_and_admin_sees_all(
    project_factory: ProjectFactory, make_user: Callable[..., Actor], admin: Actor
) -> None:
    p = project_factory(items=2)
    assert make_user("researcher").client.get(url(p)).status_code == 404
    assert len(admin.client.get(url(p)).json()["items"]) == 2
