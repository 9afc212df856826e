"""A world into a project through the service layer: files, import, idempotent rebuilds."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from app.db import session_scope
from app.errors import Conflict, Forbidden, NotFound
from app.simulate.service import build_world, find_owner, read_manifest
from app.simulate.truth import load_truth
from app.simulate.world import WorldConfig, generate_world
from tests.conftest import Actor
from tests.simulate.helpers import build, principal, sql


def test_a_world_lands_in_a_new_project_with_its_truth_beside_the_manifest(
    researcher: Actor, tmp_path: Path
) -> None:
    world, built = build(researcher, tmp_path, overlap=2, size=200, seed=1, gold_fraction=0.1)
    pid = built.project.id
    assert built.imported.created == 200 and built.imported.skipped == 0
    assert sql("SELECT kind, overlap, created_by FROM projects WHERE id = %s", pid) == [
        ("pairwise", 2, researcher.id)
    ]
    stored = sql(
        "SELECT i.external_id, i.metadata, i.is_gold, i.remaining,"
        " array_agg(r.external_id ORDER BY r.position), array_agg(r.model ORDER BY r.position)"
        " FROM items i JOIN responses r ON r.item_id = i.id WHERE i.project_id = %s"
        " GROUP BY i.id ORDER BY i.id",
        pid,
    )
    truths = load_truth(tmp_path / "truth.jsonl")
    assert [row[0] for row in stored] == [t.external_id for t in world.truths] == list(truths)
    for ext, metadata, _, remaining, response_ids, models in stored:
        truth = truths[ext]
        assert sorted(response_ids) == sorted(truth.order)
        assert models == [r.model for r in truth.responses]
        assert metadata == dict(truth.categories)
        assert remaining == 2
    assert sum(row[2] for row in stored) == world.stats()["gold_items"] > 0

    manifest = read_manifest(tmp_path)
    assert manifest is not None
    assert manifest["world_id"] == world.world_id and manifest["project"]["id"] == pid
    assert manifest["stats"]["items"] == 200 and manifest["config"]["seed"] == 1
    assert set(manifest["models"]) == {r["model"] for i in world.items for r in i["responses"]}
    lines = (tmp_path / "items.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == world.items


def test_building_again_changes_nothing_and_a_bigger_world_adds_the_rest(
    researcher: Actor, tmp_path: Path
) -> None:
    _, first = build(researcher, tmp_path, size=50, seed=2)
    _, again = build(researcher, tmp_path, size=50, seed=2)
    assert again.project.id == first.project.id
    assert (again.imported.created, again.imported.skipped) == (0, 50)
    _, bigger = build(researcher, tmp_path, size=80, seed=2)
    assert bigger.project.id == first.project.id
    assert (bigger.imported.created, bigger.imported.skipped) == (30, 50)
    assert sql("SELECT count(*) FROM items") == [(80,)]
    assert len(load_truth(tmp_path / "truth.jsonl")) == 80
    # Without the manifest (a build that died before writing it) the project is found by name.
    (tmp_path / "world.json").unlink()
    _, found = build(researcher, tmp_path, size=80, seed=2)
    assert found.project.id == first.project.id and found.imported.created == 0
    assert sql("SELECT count(*) FROM projects") == [(1,)]


def test_a_folder_holding_another_world_or_more_of_it_is_refused(
    researcher: Actor, tmp_path: Path
) -> None:
    build(researcher, tmp_path, size=40, seed=3)
    with pytest.raises(Conflict, match="holds world"):
        build(researcher, tmp_path, size=40, seed=4)
    with pytest.raises(Conflict, match="already holds 40 items of this world"):
        build(researcher, tmp_path, size=30, seed=3)
    assert sql("SELECT count(*) FROM items") == [(40,)]


def test_a_world_into_a_given_project_must_match_its_kind(
    researcher: Actor, make_user: object, tmp_path: Path
) -> None:
    r = researcher.client.post("/api/v1/projects", json={"name": "mine", "kind": "ranking"})
    pid = r.json()["id"]
    world = generate_world(WorldConfig(size=5, seed=1))
    with session_scope() as session, pytest.raises(Conflict, match="is a ranking project"):
        build_world(session, principal(researcher), world, tmp_path, config={}, project_id=pid)
    ranking = generate_world(WorldConfig(kind="ranking", responses=3, size=5, seed=1))
    with session_scope() as session:
        built = build_world(
            session, principal(researcher), ranking, tmp_path, config={}, project_id=pid
        )
    assert built.project.id == pid and built.imported.created == 5


def test_the_owner_is_the_named_researcher_or_the_first_admin(
    researcher: Actor, admin: Actor, make_user: object
) -> None:
    with session_scope() as session:
        assert find_owner(session, researcher.email.upper()).id == researcher.id
        assert find_owner(session, None).id == admin.id
        with pytest.raises(NotFound, match=r"No user has the email nobody@x\.org"):
            find_owner(session, "nobody@x.org")
    annotator = make_user("annotator")  # type: ignore[operator]
    with session_scope() as session, pytest.raises(Forbidden, match="needs the researcher role"):
        find_owner(session, annotator.email)


def test_without_an_admin_the_owner_must_be_named() -> None:
    with session_scope() as session, pytest.raises(NotFound, match="pass --owner EMAIL"):
        find_owner(session, None)
