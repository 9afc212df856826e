"""Item uploads never alter text: a lone surrogate or NUL anywhere in a row is the same clear
422 with its row number, in a JSON array and in JSONL, for the prompt as for a response."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Actor
from tests.items.test_import import item_count
from tests.rawjson import BIG_FLOAT, INF, NAN, NUL, SURROGATE, raw

ProjectFactory = Callable[..., dict[str, Any]]


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}]}
    row.update(changes)
    return row


ROWS: list[tuple[dict[str, Any], str, str]] = [
    # row, words the detail must contain, what the problem is called
    (_row(prompt=SURROGATE), "prompt", "surrogate"),
    (_row(prompt=NUL), "prompt", "NUL"),
    (_row(responses=[{"text": SURROGATE}, {"text": "b"}]), "responses.0.text", "surrogate"),
    (_row(responses=[{"text": "a"}, {"text": NUL}]), "responses.1.text", "NUL"),
    (_row(external_id=SURROGATE), "external_id", "surrogate"),
    (_row(metadata={"k": SURROGATE}), "metadata", "surrogate"),
    (_row(metadata={SURROGATE: 1}), "metadata", "surrogate"),
    (_row(metadata={"k": NAN}), "metadata", "NaN"),
    (_row(metadata={"k": INF}), "metadata", "NaN"),
    (_row(metadata={"k": BIG_FLOAT}), "metadata", "NaN"),
    (_row(priority=NAN), "priority", ""),
    (_row(priority=2**70), "priority", ""),
]


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
@pytest.mark.parametrize(("row", "field", "problem"), ROWS)
def test_unstorable_rows_are_422_with_the_row_number(
    researcher: Actor,
    project_factory: ProjectFactory,
    fmt: str,
    row: dict[str, Any],
    field: str,
    problem: str,
) -> None:
    p = project_factory("pairwise", items=0)
    good = raw(_row(external_id="good"))
    bad = raw(row)
    body = b"[" + good + b"," + bad + b"]" if fmt == "json" else good + b"\n" + bad + b"\n"
    r = researcher.client.post(
        f"/api/v1/projects/{p['id']}/items", content=body, params={"format": fmt}
    )
    assert r.status_code == 422, r.text
    if fmt == "json" and problem == "NaN":
        problem = "malformed"  # yajl reads NaN, Infinity and 1e400 as JSON they are not
    detail = r.json()["detail"]
    assert detail.startswith("row 2: ") and field in detail and problem in detail, detail
    assert r.json()["row"] == 2
    assert r.json()["error"] == "invalid"
    assert item_count(p["id"]) == 0
