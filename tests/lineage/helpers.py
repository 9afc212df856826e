"""Helpers for lineage tests: a project labelled in two rounds with a snapshot after each, a
reward model trained on the first and a policy on the second (by expert iteration with it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from app.db import session_scope
from app.exports.models import Export
from app.training.runs.service import snapshot_record
from tests.exports.helpers import annotate, pairwise_choice, snapshot
from tests.helpers import Actor, sql, sql_value
from tests.training.runs_helpers import register
from tests.world import model_folder

ProjectFactory = Callable[..., dict[str, Any]]


def finish_run(researcher: Actor, body: dict[str, Any], name: str, kind: str) -> int:
    """Queue a run through the API, then record its outcome as the training job does (a
    registered version pointed at by the run): lineage reads only these rows."""
    r = researcher.client.post("/api/v1/training-runs", json=body)
    assert r.status_code == 202, r.text
    run = r.json()
    with session_scope() as session:
        # What the training job keeps of its snapshot, by the job's own function.
        snap = snapshot_record(session.get_one(Export, run["export_id"]))
    version = sql_value(
        "INSERT INTO model_versions (name, kind, parent_id, project_id, snapshot, artifact_path,"
        " artifact_sha256) VALUES (%s, %s, %s, %s, %s, %s, 'x') RETURNING id",
        name,
        kind,
        body["base_model_id"],
        sql_value("SELECT project_id FROM exports WHERE id = %s", run["export_id"]),
        json.dumps(snap),
        f"runs/{run['id']}-1",
    )
    sql("UPDATE training_runs SET model_version_id = %s WHERE id = %s", version, run["id"])
    return int(version)


def labels(actor: Actor, model_id: int, limit: int = 3) -> list[dict[str, Any]]:
    """Every label of the version, page by page (small pages: the cursor is exercised)."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        r = actor.client.get(f"/api/v1/models/{model_id}/lineage/labels", params=params)
        assert r.status_code == 200, r.text
        out += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return out


def build_world(
    researcher: Actor,
    admin: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
) -> dict[str, Any]:
    a1, a2, other = make_user("annotator"), make_user("annotator"), make_user("annotator")
    project = project_factory("pairwise", items=4, members=(a1,), overlap=2)
    pid = project["id"]
    first = annotate(a1, pid, lambda t: pairwise_choice(t, 0))  # 4 labels
    s1 = snapshot(researcher, pid, schema="preference")
    # Later labels: a second annotator joins after the first snapshot.
    assert researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": a2.id})
    second = annotate(a2, pid, lambda t: pairwise_choice(t, 0))
    s2 = snapshot(researcher, pid, schema="preference")
    # Labels after both snapshots, and another project's labels: in no lineage.
    more = project_factory("pairwise", items=2, members=(other,), overlap=1)
    elsewhere = annotate(other, more["id"], lambda t: pairwise_choice(t, 1))
    base = register(admin, model_folder(), "base")["id"]
    rm = finish_run(
        researcher,
        {"kind": "reward_model", "export_id": s1["id"], "base_model_id": base},
        "rm",
        "reward_model",
    )
    policy = finish_run(
        researcher,
        {
            "kind": "expert_iteration",
            "export_id": s2["id"],
            "base_model_id": base,
            "reward_model_id": rm,
        },
        "policy",
        "policy",
    )
    return {
        "pid": pid,
        "first": first,
        "second": second,
        "elsewhere": elsewhere,
        "s1": s1,
        "s2": s2,
        "base": base,
        "rm": rm,
        "policy": policy,
        "a1": a1,
        "a2": a2,
    }
