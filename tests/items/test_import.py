"""Item import: JSON, JSONL and Parquet, idempotent on external_id, all-or-nothing, size limits."""

from __future__ import annotations

import io
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from app.config import get_settings
from tests.helpers import Actor, make_items, sql

Project = dict[str, Any]
ProjectFactory = Callable[..., Project]


def item_count(project_id: int) -> int:
    n: int = sql("SELECT count(*) FROM items WHERE project_id = %s", project_id)[0][0]
    return n


def nothing_written(project_id: int) -> bool:
    return item_count(project_id) == 0 and sql("SELECT count(*) FROM responses") == [(0,)]


def url(project: Project) -> str:
    return f"/api/v1/projects/{project['id']}/items"


def jsonl(rows: list[Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def parquet(rows: list[dict[str, Any]], schema: pa.Schema | None = None) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
    return buf.getvalue()


def stored_items(project_id: int) -> list[dict[str, Any]]:
    """Items as stored, in import order, with their responses in position order."""
    items = sql(
        "SELECT id, external_id, prompt, metadata, priority, is_gold, gold_answer, remaining"
        " FROM items WHERE project_id = %s ORDER BY id",
        project_id,
    )
    out = []
    for iid, ext, prompt, meta, priority, is_gold, gold, remaining in items:
        responses = sql(
            "SELECT position, external_id, text, model FROM responses WHERE item_id = %s"
            " ORDER BY position",
            iid,
        )
        out.append(
            {
                "external_id": ext,
                "prompt": prompt,
                "metadata": meta,
                "priority": priority,
                "is_gold": is_gold,
                "gold_answer": gold,
                "remaining": remaining,
                "responses": [(pos, rid, text, model) for pos, rid, text, model in responses],
            }
        )
    return out


ROWS = [
    {
        "external_id": "q1",
        "prompt": "Explain RLHF in one line.",
        "responses": [
            {"id": "r-a", "text": "Learning from preferences 🙂", "model": "m-small"},
            {"id": "r-b", "text": "日本語の回答", "model": "m-large"},
        ],
        "metadata": {"topic": "ml", "difficulty": 3, "tags": ["x", "y"]},
    },
    {
        "prompt": "Second prompt",
        "responses": [{"text": "first"}, {"text": "second"}],
        "priority": 5,
    },
]


def check_rows_stored(project_id: int) -> None:
    stored = stored_items(project_id)
    assert len(stored) == 2
    first, second = stored
    assert first["external_id"] == "q1"
    assert first["prompt"] == "Explain RLHF in one line."
    assert first["metadata"] == {"topic": "ml", "difficulty": 3, "tags": ["x", "y"]}
    assert first["responses"] == [
        (0, "r-a", "Learning from preferences 🙂", "m-small"),
        (1, "r-b", "日本語の回答", "m-large"),
    ]
    assert (first["is_gold"], first["gold_answer"], first["remaining"]) == (False, None, 1)
    assert second["external_id"] is None
    assert second["metadata"] == {}
    assert second["priority"] == 5
    assert second["responses"] == [(0, None, "first", None), (1, None, "second", None)]


# -- formats ---------------------------------------------------------------------------------


def test_json_array_import(researcher: Actor, project_factory: ProjectFactory) -> None:
    p = project_factory(items=0)
    r = researcher.client.post(url(p), json=ROWS)
    assert r.status_code == 201, r.text
    assert r.json() == {"created": 2, "skipped": 0}
    check_rows_stored(p["id"])


def test_jsonl_import_ignores_blank_lines(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    body = b"\n" + json.dumps(ROWS[0]).encode() + b"\n\n   \r\n" + json.dumps(ROWS[1]).encode()
    r = researcher.client.post(
        url(p), content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"created": 2, "skipped": 0}
    check_rows_stored(p["id"])


def test_jsonl_row_numbers_are_line_numbers(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    body = jsonl(ROWS) + b"\n\n" + jsonl([{"prompt": "p", "responses": [{"text": "only one"}]}])
    r = researcher.client.post(url(p), content=body)
    assert r.status_code == 422
    assert "row 5" in r.json()["detail"]
    assert nothing_written(p["id"])


def parquet_rows(metadata_as: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for row in ROWS:
        # from_pylist takes its columns from the first row: give every row every column.
        row = {
            "external_id": None,
            "priority": None,
            **row,
            "responses": [{"id": None, "model": None, **x} for x in row["responses"]],
        }
        meta = row.get("metadata", {})
        if metadata_as == "json":
            row["metadata"] = json.dumps(meta)
        rows.append(row)
    return rows


def test_parquet_import_with_json_string_metadata(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    data = parquet(parquet_rows("json"))
    r = researcher.client.post(
        url(p), content=data, headers={"Content-Type": "application/vnd.apache.parquet"}
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"created": 2, "skipped": 0}
    check_rows_stored(p["id"])


def test_parquet_import_with_struct_metadata(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    rows = [
        {
            "external_id": "s1",
            "prompt": "p1",
            "responses": [{"text": "a", "model": "m1"}, {"text": "b", "model": "m2"}],
            "metadata": {"topic": "math", "score": 0.5},
        },
        {
            "external_id": "s2",
            "prompt": "p2",
            "responses": [{"text": "c", "model": "m1"}, {"text": "d", "model": None}],
            "metadata": {"topic": "code", "score": 1.5},
        },
    ]
    schema = pa.schema(
        [
            ("external_id", pa.string()),
            ("prompt", pa.string()),
            ("responses", pa.list_(pa.struct([("text", pa.string()), ("model", pa.string())]))),
            ("metadata", pa.struct([("topic", pa.string()), ("score", pa.float64())])),
        ]
    )
    r = researcher.client.post(url(p), content=parquet(rows, schema))
    assert r.status_code == 201, r.text
    stored = stored_items(p["id"])
    assert [s["metadata"] for s in stored] == [r["metadata"] for r in rows]
    assert stored[1]["responses"] == [(0, None, "c", "m1"), (1, None, "d", None)]


def test_parquet_import_with_map_metadata(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    schema = pa.schema(
        [
            ("prompt", pa.string()),
            ("responses", pa.list_(pa.struct([("text", pa.string())]))),
            ("metadata", pa.map_(pa.string(), pa.string())),
        ]
    )
    rows = [{"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}], "metadata": [("k", "v")]}]
    r = researcher.client.post(url(p), content=parquet(rows, schema))
    assert r.status_code == 201, r.text
    assert stored_items(p["id"])[0]["metadata"] == {"k": "v"}


def test_parquet_timestamps_in_metadata_become_iso_strings(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    when = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
    rows = [{**GOOD_ROW, "metadata": {"at": when, "day": when.date()}}]
    r = researcher.client.post(url(p), content=parquet(rows))
    assert r.status_code == 201, r.text
    assert stored_items(p["id"])[0]["metadata"] == {
        "at": "2025-03-01T12:30:00+00:00",
        "day": "2025-03-01",
    }


@pytest.mark.parametrize("value", [Decimal("1.5"), b"\x00\x01"], ids=["decimal", "binary"])
def test_parquet_metadata_that_is_not_json_is_rejected(
    researcher: Actor, project_factory: ProjectFactory, value: object
) -> None:
    p = project_factory(items=0)
    rows = [{**GOOD_ROW, "metadata": {"v": value}}, {**GOOD_ROW, "metadata": {"v": value}}]
    r = researcher.client.post(url(p), content=parquet(rows))
    assert r.status_code == 422, r.text
    assert "row 1: metadata" in r.json()["detail"]
    assert nothing_written(p["id"])


BODIES: dict[str, Callable[[], bytes]] = {
    "json": lambda: json.dumps(ROWS).encode(),
    "jsonl": lambda: jsonl(ROWS),
    "parquet": lambda: parquet(parquet_rows("json")),
}


@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet"])
def test_multipart_upload_of_each_format(
    researcher: Actor, project_factory: ProjectFactory, fmt: str
) -> None:
    p = project_factory(items=0)
    files = {"file": (f"items.{fmt}", BODIES[fmt](), "application/octet-stream")}
    r = researcher.client.post(url(p), files=files)
    assert r.status_code == 201, r.text
    assert r.json() == {"created": 2, "skipped": 0}
    check_rows_stored(p["id"])


@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet"])
def test_format_parameter_is_used_as_given(
    researcher: Actor, project_factory: ProjectFactory, fmt: str
) -> None:
    p = project_factory(items=0)
    r = researcher.client.post(url(p), params={"format": fmt}, content=BODIES[fmt]())
    assert r.status_code == 201, r.text
    check_rows_stored(p["id"])


def test_format_parameter_overrides_sniffing(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    # JSONL content read as a JSON array, and a JSON array read as JSONL, both fail on row 1.
    r = researcher.client.post(url(p), params={"format": "json"}, content=jsonl(ROWS))
    assert r.status_code == 422, r.text
    r = researcher.client.post(url(p), params={"format": "jsonl"}, content=parquet(ROWS[:1]))
    assert r.status_code == 422, r.text
    assert "row 1" in r.json()["detail"]
    files = {"file": ("x.bin", jsonl(ROWS), "application/octet-stream")}
    r = researcher.client.post(url(p), params={"format": "parquet"}, files=files)
    assert r.status_code == 422
    assert "Parquet" in r.json()["detail"]
    r = researcher.client.post(url(p), params={"format": "csv"}, content=jsonl(ROWS))
    assert r.status_code == 422
    assert "format" in r.json()["detail"]
    assert nothing_written(p["id"])


def test_multipart_without_a_file_field_is_rejected(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    r = researcher.client.post(url(p), files={"upload": ("x.jsonl", jsonl(ROWS), "text/plain")})
    assert r.status_code == 422
    assert "'file'" in r.json()["detail"]


# -- idempotency -----------------------------------------------------------------------------


def test_reimport_with_same_external_ids_is_a_noop(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    rows = make_items("pairwise", 30)
    assert researcher.client.post(url(p), json=rows).json() == {"created": 30, "skipped": 0}
    before = stored_items(p["id"])
    changed = [{**r, "prompt": "changed"} for r in rows]
    assert researcher.client.post(url(p), json=changed).json() == {"created": 0, "skipped": 30}
    assert stored_items(p["id"]) == before
    # A mix of old and new ids creates only the new ones.
    mixed = make_items("pairwise", 35)
    assert researcher.client.post(url(p), json=mixed).json() == {"created": 5, "skipped": 30}
    assert item_count(p["id"]) == 35


def test_duplicates_inside_one_file_keep_the_first(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    rows = make_items("pairwise", 3)
    dup = {**rows[0], "prompt": "later copy"}
    body = jsonl([rows[0], rows[1], dup, rows[2], dup])
    r = researcher.client.post(url(p), content=body)
    assert r.json() == {"created": 3, "skipped": 2}
    assert [s["prompt"] for s in stored_items(p["id"])] == ["prompt 0", "prompt 1", "prompt 2"]


def test_duplicates_across_batches_are_skipped(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory("critique", items=0)
    rows = make_items("critique", 2500)
    rows.append({**rows[10], "prompt": "copy"})
    r = researcher.client.post(url(p), content=jsonl(rows))
    assert r.json() == {"created": 2500, "skipped": 1}


def test_items_without_external_id_are_always_created(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    rows = [{"prompt": "same", "responses": [{"text": "a"}, {"text": "b"}]}] * 3
    assert researcher.client.post(url(p), json=rows).json() == {"created": 3, "skipped": 0}
    assert researcher.client.post(url(p), json=rows).json() == {"created": 3, "skipped": 0}
    assert item_count(p["id"]) == 6


def test_same_external_id_in_two_projects_is_two_items(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    a, b = project_factory(items=0), project_factory(items=0)
    rows = make_items("pairwise", 4)
    assert researcher.client.post(url(a), json=rows).json()["created"] == 4
    assert researcher.client.post(url(b), json=rows).json()["created"] == 4


def test_new_items_get_the_project_overlap(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0, overlap=3)
    researcher.client.post(url(p), json=make_items("pairwise", 2))
    assert {s["remaining"] for s in stored_items(p["id"])} == {3}


def test_import_is_recorded_in_the_audit_log(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    researcher.client.post(url(p), content=jsonl(make_items("pairwise", 3)))
    rows = sql("SELECT actor_id, target_id, details FROM audit_log WHERE action = 'items.import'")
    assert rows == [(researcher.id, str(p["id"]), {"format": "jsonl", "created": 3, "skipped": 0})]


# -- validation ------------------------------------------------------------------------------


def row_with(n_responses: int, **extra: Any) -> dict[str, Any]:
    return {
        "prompt": "p",
        "responses": [{"text": f"response {i}"} for i in range(n_responses)],
        **extra,
    }


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("pairwise", [2], [1, 3]),
        ("ranking", [2, 3, 16], [1, 17]),
        ("span", [1], [2]),
        ("critique", [1], [2]),
    ],
)
def test_response_count_rules_per_kind(
    researcher: Actor, project_factory: ProjectFactory, kind: str, good: list[int], bad: list[int]
) -> None:
    p = project_factory(kind, items=0)
    for n in bad:
        rows = [row_with(good[0]), row_with(n)]
        r = researcher.client.post(url(p), json=rows)
        assert r.status_code == 422, (n, r.text)
        assert "row 2" in r.json()["detail"]
        assert "responses" in r.json()["detail"]
        assert nothing_written(p["id"])
    for n in good:
        r = researcher.client.post(url(p), json=[row_with(n)])
        assert r.status_code == 201, (n, r.text)
    assert item_count(p["id"]) == len(good)
    r = researcher.client.post(url(p), json=[row_with(0)])
    assert r.status_code == 422
    assert "row 1" in r.json()["detail"]


@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet"])
def test_a_bad_row_late_in_the_file_leaves_zero_items(
    researcher: Actor, project_factory: ProjectFactory, fmt: str
) -> None:
    p = project_factory(items=0)
    rows = make_items("pairwise", 2000)
    rows[1499]["responses"] = rows[1499]["responses"][:1]  # type: ignore[index]
    body = {
        "json": lambda: json.dumps(rows).encode(),
        "jsonl": lambda: jsonl(rows),
        "parquet": lambda: parquet(rows),
    }[fmt]()
    r = researcher.client.post(url(p), content=body)
    assert r.status_code == 422, r.text
    assert "row 1500" in r.json()["detail"]
    assert r.json()["row"] == 1500
    assert nothing_written(p["id"])
    assert sql("SELECT count(*) FROM audit_log WHERE action = 'items.import'") == [(0,)]


GOOD_ROW = {"prompt": "ok", "responses": [{"text": "a"}, {"text": "b"}]}


@pytest.mark.parametrize(
    ("body", "fmt", "status", "words"),
    [
        (
            b'[{"prompt": "ok", "responses": [{"text": "a"}, {"text": "b"}]}, {"prompt": ',
            None,
            422,
            ["row 2", "malformed"],
        ),
        (
            json.dumps(GOOD_ROW).encode() + b'\n{"prompt": "x", responses}\n',
            None,
            422,
            ["row 2", "not valid JSON"],
        ),
        (json.dumps([GOOD_ROW, [1, 2]]).encode(), None, 422, ["row 2", "object"]),
        (json.dumps([GOOD_ROW, "text"]).encode(), None, 422, ["row 2", "object"]),
        (jsonl([GOOD_ROW, 7]), "jsonl", 422, ["row 2", "object"]),
        (
            json.dumps([GOOD_ROW, {**GOOD_ROW, "colour": "red"}]).encode(),
            None,
            422,
            ["row 2", "colour", "field of an item"],
        ),
        (
            json.dumps(
                [{**GOOD_ROW, "responses": [{"text": "a", "score": 1}, {"text": "b"}]}]
            ).encode(),
            None,
            422,
            ["row 1", "responses.0.score", "field of a response"],
        ),
        (
            json.dumps([{**GOOD_ROW, "responses": [{"text": ""}, {"text": "b"}]}]).encode(),
            None,
            422,
            ["row 1", "responses.0.text"],
        ),
        (json.dumps([{**GOOD_ROW, "prompt": ""}]).encode(), None, 422, ["row 1", "prompt"]),
        (
            json.dumps([{"responses": GOOD_ROW["responses"]}]).encode(),
            None,
            422,
            ["row 1", "prompt"],
        ),
        (json.dumps([{**GOOD_ROW, "prompt": 12}]).encode(), None, 422, ["row 1", "prompt"]),
        (json.dumps([{**GOOD_ROW, "metadata": [1]}]).encode(), None, 422, ["row 1", "metadata"]),
        (
            json.dumps([{**GOOD_ROW, "external_id": ""}]).encode(),
            None,
            422,
            ["row 1", "external_id"],
        ),
        (
            json.dumps(
                [{**GOOD_ROW, "responses": [{"id": "x", "text": "a"}, {"id": "x", "text": "b"}]}]
            ).encode(),
            None,
            422,
            ["row 1", "unique"],
        ),
        (json.dumps([GOOD_ROW]).encode() + b" trailing", None, 422, ["row 2", "malformed"]),
        (json.dumps([GOOD_ROW]).encode() + b"[]", None, 422, ["row 2", "malformed"]),
        (json.dumps([GOOD_ROW, GOOD_ROW]).encode()[:-1], None, 422, ["row 3"]),
        (b"not json at all", None, 422, ["format"]),
        (b"PAR1 but not really parquet", "parquet", 422, ["Parquet"]),
        (jsonl([GOOD_ROW]), "parquet", 422, ["Parquet"]),
        (b"", None, 422, ["empty"]),
        (b"  \n\n ", None, 422, ["empty"]),
        (b"", "jsonl", 422, ["empty"]),
        (b"", "parquet", 422, ["empty"]),
    ],
)
def test_bad_input_is_rejected_naming_the_problem(
    researcher: Actor,
    project_factory: ProjectFactory,
    body: bytes,
    fmt: str | None,
    status: int,
    words: list[str],
) -> None:
    p = project_factory(items=0)
    params = {"format": fmt} if fmt else {}
    r = researcher.client.post(url(p), content=body, params=params)
    assert r.status_code == status, r.text
    for word in words:
        assert word in r.json()["detail"], (word, r.json())
    assert nothing_written(p["id"])


@pytest.mark.parametrize(
    "row",
    [
        {**GOOD_ROW, "prompt": "nul \u0000 byte"},
        {**GOOD_ROW, "responses": [{"text": "a\u0000"}, {"text": "b"}]},
        {**GOOD_ROW, "metadata": {"k": "v\u0000"}},
        {**GOOD_ROW, "metadata": {"k\u0000": "v"}},
        {**GOOD_ROW, "external_id": "id\u0000"},
    ],
)
def test_nul_characters_are_rejected_not_a_server_error(
    researcher: Actor, project_factory: ProjectFactory, row: dict[str, Any]
) -> None:
    # PostgreSQL text and jsonb cannot hold U+0000.
    p = project_factory(items=0)
    r = researcher.client.post(url(p), content=jsonl([GOOD_ROW, row]))
    assert r.status_code == 422, r.text
    assert "row 2" in r.json()["detail"]
    assert nothing_written(p["id"])


@pytest.mark.parametrize(
    "line",
    [
        b'{"prompt": "lone \\ud800 surrogate", "responses": [{"text": "a"}, {"text": "b"}]}',
        b'{"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}], "metadata": {"x": NaN}}',
        b'{"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}], "metadata": {"x": 1e999}}',
        b'{"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}], "metadata": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}",
        b'{"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}], "metadata": {"x": '
        + b'{"y": ' * 80
        + b"1"
        + b"}" * 80
        + b"}}",
        b'{"prompt": "p", "responses": [{"text": "\xff\xfe"}, {"text": "b"}]}',
    ],
    ids=["surrogate", "nan", "infinity", "very-deep", "deep", "latin1"],
)
@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_values_postgres_cannot_store_are_rejected(
    researcher: Actor, project_factory: ProjectFactory, line: bytes, fmt: str
) -> None:
    p = project_factory(items=0)
    if fmt == "json":
        body = b"[" + json.dumps(GOOD_ROW).encode() + b",\n" + line + b"]"
    else:
        body = jsonl([GOOD_ROW]) + line + b"\n"
    r = researcher.client.post(url(p), content=body)
    assert r.status_code == 422, r.text
    assert "row 2" in r.json()["detail"]
    if b"ud800" in line:
        # The same sentence from both parsers (yajl alone would store "?" in its place).
        assert r.json()["detail"] == (
            "row 2: prompt: contains a lone surrogate, which is not valid Unicode."
        )
    assert nothing_written(p["id"])


def test_leading_blank_lines_do_not_hide_the_format(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    r = researcher.client.post(url(p), content=b"\n" * 500 + jsonl(ROWS))
    assert r.status_code == 201, r.text
    assert r.json() == {"created": 2, "skipped": 0}


def test_json_array_with_a_byte_order_mark_imports(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    for body in (b"\xef\xbb\xbf" + json.dumps(ROWS).encode(), b"\xef\xbb\xbf" + jsonl(ROWS)):
        r = researcher.client.post(url(p), content=body)
        assert r.status_code == 201, r.text
    assert item_count(p["id"]) == 3  # the second file's q1 was already there


def test_a_json_object_instead_of_an_array_is_rejected(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    r = researcher.client.post(url(p), params={"format": "json"}, json={"items": ROWS})
    assert r.status_code == 422, r.text
    assert "array" in r.json()["detail"]


def test_parquet_with_an_unknown_column_is_rejected(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    rows = [{**GOOD_ROW, "score": 1.0}, {**GOOD_ROW, "score": 2.0}]
    r = researcher.client.post(url(p), content=parquet(rows))
    assert r.status_code == 422
    assert "row 1" in r.json()["detail"]
    assert "score" in r.json()["detail"]


def test_parquet_metadata_string_that_is_not_json_is_rejected(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    rows = [{**GOOD_ROW, "metadata": "{}"}, {**GOOD_ROW, "metadata": "{oops"}]
    r = researcher.client.post(url(p), content=parquet(rows))
    assert r.status_code == 422
    assert "row 2" in r.json()["detail"]
    assert "metadata" in r.json()["detail"]
    assert nothing_written(p["id"])


# -- gold items ------------------------------------------------------------------------------

GOLD_OK = [
    ("pairwise", {"choice": "a"}, {"preferred": 0, "rejected": 1, "tie": False}),
    ("pairwise", {"choice": "b", "strength": 2}, {"preferred": 1, "rejected": 0, "strength": 2}),
    ("pairwise", {"choice": "tie"}, {"preferred": None, "tie": True}),
    ("ranking", {"order": [3, 0, 2, 1]}, {"order": [3, 0, 2, 1]}),
    (
        "span",
        {"spans": [{"start": 0, "end": 3, "label": "bad"}]},
        {"response_id": 0, "spans": [{"start": 0, "end": 3, "label": "bad"}]},
    ),
    ("span", {"spans": []}, {"spans": []}),
    ("critique", {"rating": 5}, {"rating": 5}),
]


@pytest.mark.parametrize(("kind", "answer", "stored"), GOLD_OK)
def test_gold_items_are_validated_and_stored(
    researcher: Actor,
    project_factory: ProjectFactory,
    kind: str,
    answer: dict[str, Any],
    stored: dict[str, Any],
) -> None:
    p = project_factory(kind, items=0)
    rows = make_items(kind, 2)
    rows[1]["gold_answer"] = answer
    r = researcher.client.post(url(p), json=rows)
    assert r.status_code == 201, r.text
    items = stored_items(p["id"])
    assert [i["is_gold"] for i in items] == [False, True]
    assert items[0]["gold_answer"] is None
    gold = items[1]["gold_answer"]
    assert gold.items() >= stored.items(), gold


def test_gold_answer_as_json_string_in_parquet(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    rows: list[dict[str, Any]] = [dict(r) for r in make_items("pairwise", 2)]
    rows[0]["gold_answer"] = json.dumps({"choice": "b"})
    rows[1]["gold_answer"] = None
    r = researcher.client.post(url(p), content=parquet(rows))
    assert r.status_code == 201, r.text
    items = stored_items(p["id"])
    assert items[0]["is_gold"] and items[0]["gold_answer"]["preferred"] == 1
    assert not items[1]["is_gold"]


GOLD_BAD = [
    ("pairwise", {"choice": "c"}, {}),
    ("pairwise", {"choice": "tie"}, {"allow_tie": False}),
    ("pairwise", {"choice": "a", "aspects": {"tone": "a"}}, {}),
    ("pairwise", {"choice": "a", "extra": 1}, {}),
    ("pairwise", {"kind": "ranking", "order": [0, 1]}, {}),
    ("ranking", {"order": [0, 0, 1, 2]}, {}),
    ("ranking", {"order": [0, 1, 2]}, {}),
    ("ranking", {"order": [0, 1, 2, 4]}, {}),
    ("span", {"spans": [{"start": 0, "end": 999, "label": "bad"}]}, {}),
    ("span", {"spans": [{"start": 2, "end": 2, "label": "bad"}]}, {}),
    ("span", {"spans": [{"start": 0, "end": 1, "label": "nope"}]}, {}),
    ("critique", {"rating": 9}, {}),
    ("critique", {"rating": "5"}, {}),
    ("critique", {"critique": "fine"}, {}),
]


@pytest.mark.parametrize(("kind", "answer", "settings"), GOLD_BAD)
def test_bad_gold_answers_are_422_with_the_row(
    researcher: Actor,
    project_factory: ProjectFactory,
    kind: str,
    answer: dict[str, Any],
    settings: dict[str, Any],
) -> None:
    p = project_factory(kind, items=0, **settings)
    rows = make_items(kind, 3)
    rows[2]["gold_answer"] = answer
    r = researcher.client.post(url(p), json=rows)
    assert r.status_code == 422, r.text
    assert "row 3" in r.json()["detail"]
    assert "gold_answer" in r.json()["detail"]
    assert nothing_written(p["id"])


@pytest.mark.parametrize(
    "row",
    [
        {**GOOD_ROW, "is_gold": True},
        {**GOOD_ROW, "is_gold": False, "gold_answer": {"choice": "a"}},
        {**GOOD_ROW, "gold_answer": "a"},
    ],
)
def test_inconsistent_gold_flags_are_rejected(
    researcher: Actor, project_factory: ProjectFactory, row: dict[str, Any]
) -> None:
    p = project_factory(items=0)
    r = researcher.client.post(url(p), json=[GOOD_ROW, row])
    assert r.status_code == 422, r.text
    assert "row 2" in r.json()["detail"]
    assert "gold" in r.json()["detail"]
    assert nothing_written(p["id"])


# -- who may import --------------------------------------------------------------------------


def test_annotators_cannot_import(
    project_factory: ProjectFactory, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    p = project_factory(items=0, members=(annotator,))
    r = annotator.client.post(url(p), json=make_items("pairwise", 2))
    assert r.status_code == 403
    assert nothing_written(p["id"])


def test_non_member_researcher_gets_404_and_writes_nothing(
    project_factory: ProjectFactory, make_user: Callable[..., Actor]
) -> None:
    p = project_factory(items=0)
    outsider = make_user("researcher")
    for kw in ({"json": make_items("pairwise", 2)}, {"files": {"file": ("a", jsonl(ROWS))}}):
        r = outsider.client.post(url(p), **kw)  # type: ignore[arg-type]
        assert r.status_code == 404
    assert nothing_written(p["id"])


# -- size ------------------------------------------------------------------------------------


@pytest.fixture
def small_limit_client(researcher: Actor, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """An app created while uploads are limited to 2000 bytes (create_app reads the limit)."""
    from app.main import create_app

    monkeypatch.setattr(get_settings(), "max_upload_bytes", 2000)
    with TestClient(create_app()) as client:
        client.headers.update(researcher.headers)
        yield client


def test_upload_over_the_size_limit_is_413_and_writes_nothing(
    small_limit_client: TestClient, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    rows = make_items("pairwise", 30)
    body = jsonl(rows)
    assert len(body) > 2000

    r = small_limit_client.post(url(p), content=body)
    assert r.status_code == 413
    assert "2000" in r.json()["detail"]

    # Without a Content-Length the limit is enforced while the body streams in.
    def chunks() -> Iterator[bytes]:
        for row in rows:
            yield json.dumps(row).encode() + b"\n"

    r = small_limit_client.post(url(p), content=chunks())
    assert r.status_code == 413, r.text
    r = small_limit_client.post(url(p), files={"file": ("big.jsonl", body)})
    assert r.status_code == 413, r.text
    assert nothing_written(p["id"])

    # Under the limit the same app imports.
    r = small_limit_client.post(url(p), content=jsonl(rows[:5]))
    assert r.status_code == 201, r.text
    assert item_count(p["id"]) == 5


def test_other_routes_keep_the_small_json_limit(researcher: Actor) -> None:
    big = {"name": "p", "kind": "pairwise", "guidelines": "x" * (5 * 1024 * 1024)}
    r = researcher.client.post("/api/v1/projects", json=big)
    assert r.status_code == 413
    assert sql("SELECT count(*) FROM projects") == [(0,)]


# -- scale -----------------------------------------------------------------------------------

BIG_ROWS = 100_000


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples the process's resident memory in a thread (tracemalloc slows the import 10x)."""

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def test_100k_row_jsonl_import_streams(
    researcher: Actor, project_factory: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "async_import_bytes", 1 << 30)  # keep it inline
    p = project_factory(items=0)
    with tempfile.TemporaryFile() as f:
        for i in range(BIG_ROWS):
            row = {
                "external_id": f"big-{i}",
                "prompt": f"prompt number {i}",
                "responses": [
                    {"text": f"answer {i} a", "model": "m1"},
                    {"text": f"answer {i} b", "model": "m2"},
                ],
                "metadata": {"i": i},
            }
            f.write(json.dumps(row).encode() + b"\n")
        size = f.tell()
        f.seek(0)
        with PeakRss() as memory:
            started = time.perf_counter()
            r = researcher.client.post(url(p), content=f)
            elapsed = time.perf_counter() - started
    assert r.status_code == 201, r.text
    assert r.json() == {"created": BIG_ROWS, "skipped": 0}
    assert item_count(p["id"]) == BIG_ROWS
    assert sql("SELECT count(*) FROM responses") == [(2 * BIG_ROWS,)]
    print(
        f"\n100k-row JSONL import: {size / 1e6:.1f} MB in {elapsed:.1f} s "
        f"({BIG_ROWS / elapsed:,.0f} rows/s), resident memory grew {memory.growth / 1e6:.0f} MB"
    )
    # The test client holds the whole body in memory; the importer adds a batch at a time.
    assert memory.growth < 100e6


def test_import_during_an_overlap_change_gets_the_new_overlap(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    from app.auth.models import Role
    from app.auth.service import Principal
    from app.db import session_scope
    from app.projects import service
    from app.projects.schemas import ProjectPatch

    p = project_factory(items=0, overlap=1)
    researcher.client.post(url(p), json=make_items("pairwise", 3, prefix="before"))
    principal = Principal(researcher.id, researcher.email, Role.researcher, researcher.token)
    results: list[int] = []

    def import_more() -> None:
        r = researcher.client.post(url(p), json=make_items("pairwise", 3, prefix="during"))
        results.append(r.status_code)

    with session_scope() as session:
        # The PATCH has shifted the existing items but not committed yet.
        service.update_project(session, principal, p["id"], ProjectPatch(overlap=3))
        importer = threading.Thread(target=import_more)
        importer.start()
        importer.join(1.0)
        assert importer.is_alive(), "the import did not wait for the overlap change"
    importer.join(10)
    assert results == [201]
    assert {s["external_id"]: s["remaining"] for s in stored_items(p["id"])} == {
        **{f"before-{i}": 3 for i in range(3)},
        **{f"during-{i}": 3 for i in range(3)},
    }


def test_a_jsonl_syntax_error_names_the_line_and_column_not_the_file_offset(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    body = jsonl(ROWS[:1]).rstrip(b"\n") + b'\n{"prompt": "p", "responses": [}\n'
    r = researcher.client.post(
        url(p), content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert r.status_code == 422 and r.json()["row"] == 2
    detail = r.json()["detail"]
    assert detail.startswith("row 2: line 2 is not valid JSON (") and "at column 31" in detail
    assert "char" not in detail and "line 1" not in detail
    assert nothing_written(p["id"])


def test_a_malformed_json_array_is_described_without_the_parsers_pointer(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    body = b'[{"prompt": "p", "responses": [{"text": "\xff"}]}]'
    r = researcher.client.post(url(p), content=body, params={"format": "json"})
    assert r.status_code == 422 and r.json()["row"] == 1
    detail = r.json()["detail"]
    assert "text that is not UTF-8" in detail
    assert "right here" not in detail and "b'" not in detail and "lexical error" not in detail
