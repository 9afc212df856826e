"""Helpers for export tests: annotate through the API, add AI votes, export and read back."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pyarrow.parquet as pq

from app.jobs import runner
from tests.helpers import Actor, sql

Task = dict[str, Any]
Row = dict[str, Any]


def items_of(project_id: int) -> dict[str, tuple[int, list[int]]]:
    """external_id -> (item id, response ids in import order)."""
    rows = sql(
        "SELECT i.external_id, i.id, array_agg(r.id ORDER BY r.position) FROM items i"
        " JOIN responses r ON r.item_id = i.id WHERE i.project_id = %s GROUP BY i.id",
        project_id,
    )
    return {ext: (iid, list(rids)) for ext, iid, rids in rows}


def position_of(task: Task, j: int) -> int:
    """Where response j (import order, recognisable by its text) was shown in this task."""
    texts = [r["text"] for r in task["item"]["responses"]]
    marker = texts[0].split(" ")[1].split(".")[0]  # "response {i}.{j} ..." -> i
    for n, t in enumerate(texts):
        if t.startswith(f"response {marker}.{j} "):
            return n
    raise AssertionError(f"response {j} not in {texts}")


def pairwise_choice(task: Task, want: int | str) -> dict[str, Any]:
    """want: the import position (0/1) of the preferred response, or "tie"."""
    if want == "tie":
        return {"choice": "tie"}
    assert isinstance(want, int)
    return {"choice": "a" if position_of(task, want) == 0 else "b"}


def annotate(
    actor: Actor, project_id: int, decide: Callable[[Task], dict[str, Any]], limit: int = 10_000
) -> list[int]:
    """Take tasks until none are left (or `limit`), answering each with decide(task)."""
    done: list[int] = []
    while len(done) < limit:
        r = actor.client.post(f"/api/v1/projects/{project_id}/tasks/next")
        if r.status_code == 204:
            break
        assert r.status_code == 200, r.text
        task = r.json()
        s = actor.client.post(
            f"/api/v1/assignments/{task['assignment_id']}/submit",
            json={"payload": decide(task), "time_spent_ms": 1234},
        )
        assert s.status_code == 201, s.text
        done.append(s.json()["annotation_id"])
    return done


def add_ai_vote(
    project_id: int, item_id: int, judge_id: int, payload: dict[str, Any], shown: list[int]
) -> int:
    """An AI judge's annotation, stored the way routing will store them (response ids)."""
    from tests.factories import ensure_judge

    ensure_judge(judge_id)
    row = sql(
        "INSERT INTO annotations (project_id, item_id, source, judge_id, payload, schema_version,"
        " shown_order) VALUES (%s, %s, 'ai', %s, %s::jsonb, 1, %s) RETURNING id",
        project_id,
        item_id,
        judge_id,
        json.dumps(payload),
        shown,
    )
    return int(row[0][0])


def pairwise_payload(preferred: int | None, other: int | None) -> dict[str, Any]:
    return {
        "preferred": preferred,
        "rejected": other if preferred is not None else None,
        "tie": preferred is None,
        "strength": None,
        "rationale": None,
        "aspects": {},
    }


def read(content: bytes, fmt: str = "jsonl") -> list[Row]:
    if fmt == "parquet":
        rows: list[Row] = pq.read_table(io.BytesIO(content)).to_pylist()
        return rows
    return [json.loads(line) for line in content.splitlines()]


def export(actor: Actor, project_id: int, **params: Any) -> list[Row]:
    r = actor.client.get(f"/api/v1/projects/{project_id}/export", params=params)
    assert r.status_code == 200, r.text
    return read(r.content, params.get("format", "jsonl"))


def export_bytes(actor: Actor, project_id: int, **params: Any) -> bytes:
    r = actor.client.get(f"/api/v1/projects/{project_id}/export", params=params)
    assert r.status_code == 200, r.text
    return r.content


def snapshot(actor: Actor, project_id: int, **body: Any) -> dict[str, Any]:
    """POST a snapshot, run its job here, and return the export as the API reports it."""
    r = actor.client.post(f"/api/v1/projects/{project_id}/exports", json=body)
    assert r.status_code == 202, r.text
    queued = r.json()
    assert runner.run_job(queued["job_id"]) == "done"
    got = actor.client.get(f"/api/v1/projects/{project_id}/exports/{queued['export_id']}")
    assert got.status_code == 200, got.text
    out: dict[str, Any] = got.json()
    return out


def download(actor: Actor, project_id: int, export_id: int) -> bytes:
    r = actor.client.get(f"/api/v1/projects/{project_id}/exports/{export_id}/download")
    assert r.status_code == 200, r.text
    return r.content
