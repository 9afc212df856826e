"""Export filters out of range are a 422 before anything starts: no half-sent stream, no export
row, no job that later fails with "bigint out of range"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Actor
from tests.exports.helpers import sql
from tests.rawjson import BIG_FLOAT, BIGINT_MAX, JSON, NAN, NUL, SURROGATE, raw

ProjectFactory = Callable[..., dict[str, Any]]


@pytest.mark.parametrize(
    "params",
    [
        {"annotator_ids": str(10**23)},
        {"annotator_ids": f"1,{BIGINT_MAX + 1}"},
        {"judge_ids": str(2**70)},
        {"max_annotation_id": str(2**70)},
        {"annotator_ids": "²"},
        {"max_annotation_id": "١٢"},
        {"metadata": "k=a\x00b"},
        {"metadata": "a\x00b=1"},
        {"min_agreement": "NaN"},
        {"rating_threshold": "Infinity", "schema": "unpaired"},
        {"min_votes": "1e400"},
        {"aspect": "a\x00b"},
    ],
)
def test_out_of_range_stream_filters_are_422_before_streaming(
    researcher: Actor, project_factory: ProjectFactory, params: dict[str, str]
) -> None:
    p = project_factory("pairwise", items=2)
    r = researcher.client.get(f"/api/v1/projects/{p['id']}/export", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"] in ("validation_error", "invalid")
    field = next(iter(params)) if "schema" not in params else "rating_threshold"
    assert field in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"annotator_ids": [2**70]}, "annotator_ids"),
        ({"annotator_ids": [BIGINT_MAX + 1]}, "annotator_ids"),
        ({"judge_ids": [10**23]}, "judge_ids"),
        ({"max_annotation_id": 2**70}, "max_annotation_id"),
        ({"max_annotation_id": BIG_FLOAT}, "max_annotation_id"),
        ({"metadata": {"k": NUL}}, "metadata"),
        ({"metadata": {NUL: "v"}}, "metadata"),
        ({"metadata": {"k": SURROGATE}}, "metadata"),
        ({"metadata": {"k": NAN}}, "metadata"),
        ({"metadata": {"k": {"deep": [BIG_FLOAT]}}}, "metadata"),
        ({"min_agreement": NAN}, "min_agreement"),
        ({"aspect": SURROGATE}, "aspect"),
    ],
)
def test_out_of_range_snapshot_filters_are_422_and_start_nothing(
    researcher: Actor, project_factory: ProjectFactory, body: dict[str, Any], field: str
) -> None:
    p = project_factory("pairwise", items=2)
    r = researcher.client.post(
        f"/api/v1/projects/{p['id']}/exports", content=raw(body), headers=JSON
    )
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    assert sql("SELECT count(*) FROM exports")[0][0] == 0
    assert sql("SELECT count(*) FROM jobs")[0][0] == 0


@pytest.mark.parametrize("export_id", [str(BIGINT_MAX + 1), str(2**70)])
@pytest.mark.parametrize("suffix", ["", "/download", "/manifest", "/card"])
def test_out_of_range_export_ids_are_404_or_422(
    researcher: Actor, project_factory: ProjectFactory, export_id: str, suffix: str
) -> None:
    p = project_factory("pairwise", items=0)
    r = researcher.client.get(f"/api/v1/projects/{p['id']}/exports/{export_id}{suffix}")
    assert r.status_code in (404, 422), r.text
    assert r.json()["error"] in ("not_found", "validation_error")
