"""An export running while 20 clients submit sees one snapshot, and agrees with its manifest."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from app.exports import build
from tests.exports.helpers import download, read, snapshot
from tests.helpers import Actor, make_items, sql

CLIENTS = 20
ITEMS = 150


async def _submit_until_done(url: str, token: str, pid: int) -> int:
    done = 0
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        while True:
            r = await client.post(f"/api/v1/projects/{pid}/tasks/next")
            if r.status_code == 204:
                return done
            assert r.status_code == 200, r.text
            aid = r.json()["assignment_id"]
            choice = "ab"[aid % 2] if aid % 5 else "tie"
            s = await client.post(
                f"/api/v1/assignments/{aid}/submit", json={"payload": {"choice": choice}}
            )
            assert s.status_code == 201, s.text
            done += 1


def visible_in(pid: int, pg_snapshot: str) -> set[int]:
    """Ids of the project's annotations that the given PostgreSQL snapshot sees."""
    rows = sql(
        "SELECT id FROM annotations WHERE project_id = %s AND pg_visible_in_snapshot("
        " (((pg_current_xact_id()::text::bigint >> 32) << 32) | xmin::text::bigint)::text::xid8,"
        " %s::pg_snapshot)",
        pid,
        pg_snapshot,
    )
    return {r[0] for r in rows}


@pytest.fixture
def slow_export(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Small cursor batches and a pause per batch: each export spans many submissions."""
    real = build.iter_items

    def slow(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for batch in real(*args, **{**kwargs, "batch": 10}):
            time.sleep(0.03)
            yield batch

    monkeypatch.setattr(build, "iter_items", slow)
    yield


def test_export_during_20_submitting_clients_matches_its_snapshot(
    live_server: str,
    researcher: Actor,
    make_user: Callable[..., Actor],
    slow_export: None,
) -> None:
    annotators = [make_user("annotator") for _ in range(CLIENTS)]
    r = researcher.client.post(
        "/api/v1/projects", json={"name": "busy", "kind": "pairwise", "overlap": 2}
    )
    pid = r.json()["id"]
    assert (
        researcher.client.post(
            f"/api/v1/projects/{pid}/items", json=make_items("pairwise", ITEMS)
        ).status_code
        == 201
    )
    for a in annotators:
        researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": a.id})

    async def clients() -> list[int]:
        return await asyncio.gather(
            *(_submit_until_done(live_server, a.token, pid) for a in annotators)
        )

    results: list[list[int]] = []
    worker = threading.Thread(target=lambda: results.append(asyncio.run(clients())))
    worker.start()
    while not sql("SELECT 1 FROM annotations WHERE project_id = %s LIMIT 1", pid):
        time.sleep(0.01)

    exports: list[tuple[str, dict[str, Any], bytes]] = []
    while worker.is_alive() or len(exports) < 4:
        schema = ("raw", "preference")[len(exports) % 2]
        done = snapshot(researcher, pid, schema=schema)
        exports.append((schema, done, download(researcher, pid, done["id"])))
    worker.join()
    assert sum(results[0]) == ITEMS * 2

    raced = 0
    for schema, done, data in exports:
        manifest = done["manifest"]
        counts, snap = manifest["counts"], manifest["snapshot"]
        assert hashlib.sha256(data).hexdigest() == manifest["file"]["sha256"]
        rows = read(data)
        assert len(rows) == counts["rows"] == done["rows"]
        seen = visible_in(pid, snap["pg_snapshot"])
        if schema == "raw":
            assert {r["annotation_id"] for r in rows} == seen
            assert counts["votes"] == len(seen)
        else:
            # Every row holds exactly the snapshot's votes on its item: no half-counted item.
            by_item: dict[int, set[int]] = {}
            for aid, iid in sql("SELECT id, item_id FROM annotations WHERE project_id = %s", pid):
                if aid in seen:
                    by_item.setdefault(iid, set()).add(aid)
            for row in rows:
                assert {v["annotation_id"] for v in row["votes"]} == by_item[row["item_id"]]
            in_rows = sum(r["n_votes"] for r in rows)
            assert in_rows == counts["votes"]
            assert in_rows + sum(
                len(v) for iid, v in by_item.items() if iid not in {r["item_id"] for r in rows}
            ) == len(seen)
        included = [v["annotation_id"] for r in rows for v in r.get("votes", [])] or [
            r["annotation_id"] for r in rows
        ]
        assert snap["highest_annotation_id"] == max(included)
        assert snap["project_highest_annotation_id"] == max(seen)
        # Submissions that began after the snapshot, while this export read, were left out.
        later = {
            r[0]
            for r in sql(
                "SELECT id FROM annotations WHERE project_id = %s AND created_at > %s"
                " AND created_at < %s",
                pid,
                snap["taken_at"],
                done["finished_at"],
            )
        }
        assert not later & seen
        raced += len(later)
    assert raced > 0, "no submission happened while an export was running"
