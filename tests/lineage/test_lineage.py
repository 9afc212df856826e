"""Lineage through labels: a version's labels are exactly those its snapshots held (and its
reward model's and parent's), never later ones or another project's; an item names the
checkpoints that generated its responses and the versions each of its labels trained."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.config import get_settings
from tests.helpers import Actor, sql, sql_value
from tests.lineage.helpers import ProjectFactory, build_world, labels


@pytest.fixture
def world(
    researcher: Actor,
    admin: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
) -> dict[str, Any]:
    return build_world(researcher, admin, project_factory, make_user)


def test_a_version_lists_exactly_the_labels_of_its_snapshots(
    researcher: Actor, world: dict[str, Any]
) -> None:
    rm_labels = labels(researcher, world["rm"])
    assert [x["annotation_id"] for x in rm_labels] == sorted(world["first"])
    assert {x["annotator_id"] for x in rm_labels} == {world["a1"].id}
    assert all(x["export_ids"] == [world["s1"]["id"]] for x in rm_labels)
    assert all(x["trained_models"] == [world["rm"]] for x in rm_labels)

    # The policy: its own snapshot (every label so far) and its reward model's.
    got = labels(researcher, world["policy"])
    assert [x["annotation_id"] for x in got] == sorted(world["first"] + world["second"])
    by_id = {x["annotation_id"]: x for x in got}
    for i in world["first"]:
        assert by_id[i]["export_ids"] == sorted([world["s1"]["id"], world["s2"]["id"]])
        assert by_id[i]["trained_models"] == sorted([world["rm"], world["policy"]])
    for i in world["second"]:
        assert by_id[i]["export_ids"] == [world["s2"]["id"]]
    assert not set(by_id) & set(world["elsewhere"])

    # A label made after both snapshots trained nothing.
    sql(
        "INSERT INTO annotations (project_id, item_id, source, user_id, payload, schema_version,"
        " shown_order) SELECT project_id, item_id, source, user_id, payload, schema_version,"
        " shown_order FROM annotations WHERE id = %s",
        world["first"][0],
    )
    assert [x["annotation_id"] for x in labels(researcher, world["policy"])] == sorted(by_id)

    r = researcher.client.get(f"/api/v1/models/{world['policy']}/lineage")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [
        (i["model_id"], i["relation"], i["export_id"], i["labels"], i["exact"])
        for i in body["inputs"]
    ] == [
        (world["policy"], "itself", world["s2"]["id"], 8, True),
        (world["rm"], "reward model", world["s1"]["id"], 4, True),
    ]
    assert body["summary"]["labels"] == 8 and body["summary"]["human"] == 8
    assert body["summary"]["annotators"] == {str(world["a1"].id): 4, str(world["a2"].id): 4}

    # A base model was trained by no run: no labels.
    assert labels(researcher, world["base"]) == []


def test_a_snapshot_without_its_labels_file_is_read_through_its_filters(
    researcher: Actor, world: dict[str, Any]
) -> None:
    """Snapshots written before the labels file existed: the same filters up to the highest
    annotation id they held (marked inexact)."""
    path = sql_value("SELECT path FROM exports WHERE id = %s", world["s1"]["id"])
    (Path(get_settings().data_dir) / path / "annotation_ids.txt").unlink()
    got = labels(researcher, world["rm"], limit=50)
    assert [x["annotation_id"] for x in got] == sorted(world["first"])
    r = researcher.client.get(f"/api/v1/models/{world['rm']}/lineage")
    assert [i["exact"] for i in r.json()["inputs"]] == [False]


def test_an_item_names_the_checkpoints_behind_its_responses_and_what_its_labels_trained(
    researcher: Actor, world: dict[str, Any]
) -> None:
    item = sql_value("SELECT item_id FROM annotations WHERE id = %s", world["second"][0])
    # As generation records it: the responses carry the version that wrote them.
    sql("UPDATE responses SET model_version_id = %s WHERE item_id = %s", world["base"], item)
    r = researcher.client.get(f"/api/v1/projects/{world['pid']}/items/{item}/lineage")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [o["model_version_id"] for o in body["responses"]] == [world["base"]] * 2
    by_id = {x["annotation_id"]: x for x in body["labels"]}
    assert len(by_id) == 2
    for i, x in by_id.items():
        assert x["generated_by"] == [world["base"]]
        want = [world["policy"]] if i in world["second"] else sorted([world["rm"], world["policy"]])
        assert x["trained_models"] == want
    # The policy's label list names the checkpoint too.
    assert {x["annotation_id"]: x["generated_by"] for x in labels(researcher, world["policy"], 50)}[
        world["second"][0]
    ] == [world["base"]]


def test_lineage_of_another_projects_item_is_not_found(
    researcher: Actor, world: dict[str, Any], make_user: Callable[..., Actor]
) -> None:
    stranger = make_user("researcher")
    item = sql_value("SELECT item_id FROM annotations WHERE id = %s", world["first"][0])
    r = stranger.client.get(f"/api/v1/projects/{world['pid']}/items/{item}/lineage")
    assert r.status_code == 404
    r = researcher.client.get(f"/api/v1/projects/{world['pid']}/items/999999/lineage")
    assert r.status_code == 404 and "999999" in r.json()["detail"]
    r = stranger.client.get(f"/api/v1/models/{world['policy']}/lineage/labels")
    assert r.status_code == 404
