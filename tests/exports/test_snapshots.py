"""Snapshot exports: the job, manifest, dataset card, downloads, byte-identical repeats, access."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from typing import Any

import pyarrow.parquet as pq
import pytest

from app.config import get_settings
from app.exports import writers
from app.jobs import runner
from tests.exports.helpers import (
    annotate,
    download,
    export_bytes,
    pairwise_choice,
    read,
    snapshot,
)
from tests.helpers import Actor

ProjectFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def project(project_factory: ProjectFactory, make_user: Callable[..., Actor]) -> dict[str, Any]:
    annotators = [make_user("annotator") for _ in range(2)]
    p = project_factory("pairwise", items=6, members=tuple(annotators), overlap=2)
    for n, actor in enumerate(annotators):
        # Annotator 0 always prefers response 0; annotator 1 too, except on odd items.
        annotate(
            actor,
            p["id"],
            lambda t, n=n: pairwise_choice(t, n * (int(t["item"]["external_id"][2:]) % 2)),
        )
    return p


def test_snapshot_writes_data_manifest_and_card(researcher: Actor, project: dict[str, Any]) -> None:
    pid = project["id"]
    done = snapshot(researcher, pid, schema="preference", format="jsonl")
    assert done["status"] == "succeeded" and done["error"] is None
    data = download(researcher, pid, done["id"])
    assert hashlib.sha256(data).hexdigest() == done["sha256"]
    assert len(data) == done["bytes"]
    assert done["rows"] == 3 == len(read(data))  # the 3 odd items are 1-1 ties

    manifest = done["manifest"]
    assert manifest["file"] == {
        "name": "preference.jsonl",
        "bytes": len(data),
        "sha256": done["sha256"],
    }
    assert manifest["schema"] == "preference" and manifest["format"] == "jsonl"
    assert manifest["options"]["source"] == "all" and manifest["options"]["gold"] == "exclude"
    assert manifest["counts"]["excluded"] == {"tie": 3}
    assert manifest["project"] == {"id": pid, "name": "pairwise project", "kind": "pairwise"}
    snap = manifest["snapshot"]
    ids = [v["annotation_id"] for row in read(data) for v in row["votes"]]
    assert snap["highest_annotation_id"] == max(ids)
    assert snap["project_highest_annotation_id"] == 12
    assert snap["taken_at"].endswith("Z") and ":" in snap["pg_snapshot"]

    r = researcher.client.get(f"/api/v1/projects/{pid}/exports/{done['id']}/manifest")
    assert r.status_code == 200 and r.json() == manifest
    card = researcher.client.get(f"/api/v1/projects/{pid}/exports/{done['id']}/card")
    assert card.status_code == 200
    text = card.text
    assert text.startswith("---\npretty_name:")
    assert "data_files: preference.jsonl" in text
    assert "| rows | 3 |" in text and "| left out: tie | 3 |" in text
    assert "| human annotators | 2 |" in text
    assert "| chosen | string |" in text and "Borda" in text
    assert done["sha256"] in text

    folder = get_settings().data_dir / "exports" / f"{done['id']}-1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "annotation_ids.txt",
        "manifest.json",
        "preference.jsonl",
    ]
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    # The labels file: exactly the votes behind the rows (the tied items' votes made none).
    listed_ids = [int(x) for x in (folder / "annotation_ids.txt").read_text().split()]
    assert listed_ids == sorted(ids) and manifest["labels"]["count"] == len(ids) == 6

    listed = researcher.client.get(f"/api/v1/projects/{pid}/exports")
    assert [e["id"] for e in listed.json()["items"]] == [done["id"]]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_same_snapshot_exports_byte_identical_files(
    researcher: Actor, project: dict[str, Any], fmt: str
) -> None:
    pid = project["id"]
    first = snapshot(researcher, pid, schema="raw", format=fmt)
    second = snapshot(researcher, pid, schema="raw", format=fmt)
    assert first["sha256"] == second["sha256"]
    assert first["manifest"]["created_at"] <= second["manifest"]["created_at"]
    streamed = export_bytes(researcher, pid, schema="raw", format=fmt)
    assert hashlib.sha256(streamed).hexdigest() == first["sha256"]
    assert download(researcher, pid, first["id"]) == download(researcher, pid, second["id"])


def test_parquet_is_written_in_row_groups(
    researcher: Actor, project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writers, "ROW_GROUP_ROWS", 2)
    pid = project["id"]
    done = snapshot(researcher, pid, schema="raw", format="parquet")
    data = download(researcher, pid, done["id"])
    f = pq.ParquetFile(io.BytesIO(data))
    assert f.metadata.num_rows == 12 and f.metadata.num_row_groups == 6
    assert f.schema_arrow.metadata[b"tandem.schema"] == b"raw"
    assert read(data, "parquet") == read(export_bytes(researcher, pid, schema="raw"))


def test_exports_need_a_researcher_who_is_a_member(
    researcher: Actor, project: dict[str, Any], make_user: Callable[..., Actor]
) -> None:
    pid = project["id"]
    annotator = make_user("annotator")
    researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": annotator.id})
    outsider = make_user("researcher")
    done = snapshot(researcher, pid)
    urls = [
        f"/api/v1/projects/{pid}/export",
        f"/api/v1/projects/{pid}/exports",
        f"/api/v1/projects/{pid}/exports/{done['id']}",
        f"/api/v1/projects/{pid}/exports/{done['id']}/download",
        f"/api/v1/projects/{pid}/exports/{done['id']}/card",
    ]
    for url in urls:
        assert annotator.client.get(url).status_code == 403, url
        assert outsider.client.get(url).status_code == 404, url
    assert annotator.client.post(f"/api/v1/projects/{pid}/exports", json={}).status_code == 403
    assert outsider.client.post(f"/api/v1/projects/{pid}/exports", json={}).status_code == 404
    other = researcher.client.post("/api/v1/projects", json={"name": "o", "kind": "pairwise"})
    wrong = f"/api/v1/projects/{other.json()['id']}/exports/{done['id']}"
    assert researcher.client.get(wrong).status_code == 404


def test_download_before_the_job_ran_is_409(researcher: Actor, project: dict[str, Any]) -> None:
    pid = project["id"]
    r = researcher.client.post(f"/api/v1/projects/{pid}/exports", json={"format": "parquet"})
    queued = r.json()
    got = researcher.client.get(f"/api/v1/projects/{pid}/exports/{queued['export_id']}")
    assert got.json()["status"] == "queued" and got.json()["manifest"] is None
    url = f"/api/v1/projects/{pid}/exports/{queued['export_id']}/download"
    assert researcher.client.get(url).status_code == 409
    assert runner.run_job(queued["job_id"]) == "done"
    assert researcher.client.get(url).status_code == 200
    job = researcher.client.get(f"/api/v1/jobs/{queued['job_id']}").json()
    assert job["status"] == "succeeded" and job["result"]["export_id"] == queued["export_id"]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_project_without_annotations_exports_an_empty_file(
    researcher: Actor, project_factory: ProjectFactory, fmt: str
) -> None:
    pid = project_factory("ranking", items=2)["id"]
    done = snapshot(researcher, pid, schema="ranking", format=fmt)
    data = download(researcher, pid, done["id"])
    assert done["rows"] == 0 and read(data, fmt) == []
    assert done["manifest"]["snapshot"]["highest_annotation_id"] is None
    card = researcher.client.get(f"/api/v1/projects/{pid}/exports/{done['id']}/card")
    assert "| rows | 0 |" in card.text


def test_a_failed_snapshot_leaves_no_files(
    researcher: Actor, project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.exports import build

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(build, "iter_items", broken)
    pid = project["id"]
    r = researcher.client.post(f"/api/v1/projects/{pid}/exports", json={})
    queued = r.json()
    exports_dir = get_settings().data_dir / "exports"
    # An unexpected error is retried (3 attempts for this kind); no attempt leaves files.
    assert runner.run_job(queued["job_id"]) == "retrying"
    got = researcher.client.get(f"/api/v1/projects/{pid}/exports/{queued['export_id']}").json()
    assert got["status"] == "queued" and "the database went away" in got["error"]
    assert runner.run_job(queued["job_id"]) == "retrying"
    assert runner.run_job(queued["job_id"]) == "failed"
    got = researcher.client.get(f"/api/v1/projects/{pid}/exports/{queued['export_id']}").json()
    assert got["status"] == "failed" and "the database went away" in got["error"]
    assert "attempt 3 of 3" in got["error"]
    for attempt in (1, 2, 3):
        assert not (exports_dir / f"{queued['export_id']}-{attempt}").exists()
