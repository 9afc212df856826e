"""Round trip: a `raw` export re-imported into a new project reproduces the same annotations."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import cli
from tests.exports.helpers import (
    add_ai_vote,
    annotate,
    export,
    export_bytes,
    items_of,
    pairwise_payload,
    read,
)
from tests.helpers import Actor, sql

ProjectFactory = Callable[..., dict[str, Any]]


def human_payload(kind: str, n: int, task: dict[str, Any]) -> dict[str, Any]:
    if kind == "pairwise":
        return {"choice": ["a", "b", "tie"][n % 3], "strength": 2, "rationale": "因为 🙂"}
    if kind == "ranking":
        return {"order": [r["id"] for r in reversed(task["item"]["responses"])]}
    if kind == "span":
        return {"spans": [{"start": 0, "end": 3 + n, "label": "bad", "comment": "ü"}], "overall": 3}
    return {"critique": f"critique {n} ✓", "rewrite": "better", "rating": 2 + n}


def ai_payload(kind: str, rids: list[int]) -> dict[str, Any]:
    if kind == "pairwise":
        return pairwise_payload(rids[1], rids[0])
    if kind == "ranking":
        return {"order": rids}
    if kind == "span":
        return {"response_id": rids[0], "spans": [], "overall": 4}
    return {"response_id": rids[0], "critique": "the judge's view", "rewrite": None, "rating": 5}


def normalized(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without the ids that differ between projects; response ids become positions."""
    out = []
    for r in rows:
        pos = {resp["id"]: n for n, resp in enumerate(r["responses"])}
        payload = json.loads(r["payload"])
        for key in ("preferred", "rejected", "response_id"):
            if payload.get(key) is not None:
                payload[key] = pos[payload[key]]
        if "order" in payload:
            payload["order"] = [pos[x] for x in payload["order"]]
        drop = {"annotation_id", "project_id", "item_id", "assignment_id"}
        out.append(
            {
                **{k: v for k, v in r.items() if k not in drop},
                "responses": [{k: v for k, v in x.items() if k != "id"} for x in r["responses"]],
                "payload": payload,
                "shown_order": [pos[x] for x in r["shown_order"]],
            }
        )
    return out


@pytest.mark.parametrize("kind", ["pairwise", "ranking", "span", "critique"])
def test_raw_export_reimported_reproduces_the_annotations(
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    kind: str,
    tmp_path: Path,
) -> None:
    annotators = [make_user("annotator") for _ in range(2)]
    source = project_factory(kind, items=3, members=tuple(annotators), overlap=2)
    for n, actor in enumerate(annotators):
        annotate(actor, source["id"], lambda t, n=n: human_payload(kind, n, t))
    iid, rids = items_of(source["id"])["x-1"]
    add_ai_vote(source["id"], iid, 3, ai_payload(kind, rids), rids)
    original = export(researcher, source["id"], schema="raw")
    assert len(original) == 7

    path = tmp_path / "raw.parquet"
    path.write_bytes(export_bytes(researcher, source["id"], schema="raw", format="parquet"))
    target = project_factory(kind, items=0, members=tuple(annotators), overlap=2)
    done = CliRunner().invoke(cli, ["import-raw", str(target["id"]), str(path)])
    assert done.exit_code == 0, done.output
    assert "7 annotations; items: 3 created, 0 reused" in done.output

    copy = export(researcher, target["id"], schema="raw")
    assert normalized(copy) == normalized(original)
    assert {r["project_id"] for r in copy} == {target["id"]}
    # The annotators have done these items in the new project too: nothing is served again,
    # and every item's open slots are overlap minus its human annotations.
    for actor in annotators:
        r = actor.client.post(f"/api/v1/projects/{target['id']}/tasks/next")
        assert r.status_code == 204, r.text
    assert sql("SELECT DISTINCT remaining FROM items WHERE project_id = %s", target["id"]) == [(0,)]


def test_reimport_refuses_another_kind_and_changes_nothing(
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> None:
    annotator = make_user("annotator")
    source = project_factory("critique", items=2, members=(annotator,))
    annotate(annotator, source["id"], lambda t: {"critique": "fine"})
    path = tmp_path / "raw.jsonl"
    path.write_bytes(export_bytes(researcher, source["id"], schema="raw"))
    target = project_factory("span", items=0)
    done = CliRunner().invoke(cli, ["import-raw", str(target["id"]), str(path)])
    assert done.exit_code == 1
    assert "row 1: a critique annotation cannot go into a span project" in done.output
    assert sql("SELECT count(*) FROM items WHERE project_id = %s", target["id"]) == [(0,)]


def test_reimport_refuses_an_unknown_source_and_changes_nothing(
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> None:
    annotator = make_user("annotator")
    source = project_factory("critique", items=2, members=(annotator,))
    annotate(annotator, source["id"], lambda t: {"critique": "fine"})
    rows = read(export_bytes(researcher, source["id"], schema="raw"))
    rows[1]["source"] = "robot"
    path = tmp_path / "raw.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    target = project_factory("critique", items=0)
    done = CliRunner().invoke(cli, ["import-raw", str(target["id"]), str(path)])
    assert done.exit_code == 1
    assert "row 2: source must be human or ai, not 'robot'" in done.output
    assert sql("SELECT count(*) FROM items WHERE project_id = %s", target["id"]) == [(0,)]


def test_cli_export_writes_the_same_file_as_the_api(
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> None:
    annotator = make_user("annotator")
    project = project_factory("pairwise", items=3, members=(annotator,))
    annotate(annotator, project["id"], lambda t: {"choice": "a"})
    out, manifest = tmp_path / "prefs.parquet", tmp_path / "manifest.json"
    args = ["export", str(project["id"]), "--schema", "preference", "--format", "parquet"]
    args += ["--style", "conversational", "-o", str(out), "--manifest", str(manifest)]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert "3 rows" in done.output
    api = export_bytes(
        researcher, project["id"], schema="preference", format="parquet", style="conversational"
    )
    assert out.read_bytes() == api
    assert read(api, "parquet")[0]["prompt"] == [{"role": "user", "content": "prompt 0"}]
    written = json.loads(manifest.read_text())
    assert written["counts"]["rows"] == 3 and written["file"]["name"] == "prefs.parquet"

    bad = CliRunner().invoke(cli, ["export", str(project["id"]), "-o", str(out), "--source", "x"])
    assert bad.exit_code == 2 and "source" in bad.output
    wrong = CliRunner().invoke(
        cli, ["export", str(project["id"]), "-o", str(out), "--schema", "spans"]
    )
    assert wrong.exit_code == 1 and "pairwise" in wrong.output
    missing = CliRunner().invoke(cli, ["export", "999999", "-o", str(tmp_path / "x.jsonl")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
