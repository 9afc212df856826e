"""Lineage through labels: which annotations trained a model version, and which checkpoints
generated what a label judged.

A version's training inputs are found by walking the registry: the version's own training run
and its export snapshot, the reward model that run used (whose own run has a snapshot), and the
parent it was trained from, recursively. Each snapshot lists the annotation ids of every vote
that made one of its rows (`annotation_ids.txt`, written by the snapshot job; see
app/exports/jobs.py), so the labels are exactly those, never "whatever the project has now".
Snapshots written before that file existed are read back through their stored filters instead
(`exact: false`): the same filters up to the snapshot's highest annotation id.

The other direction is stored on the responses: generation sets `responses.model_version_id`,
so a label's item names the checkpoint(s) that wrote what it judged.
"""

from __future__ import annotations

import bisect
import heapq
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.annotations.models import Annotation
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.config import get_settings
from app.errors import NotFound
from app.exports.models import Export
from app.items.models import Item, Response
from app.pagination import Keyset, Page
from app.projects.service import get_project
from app.registry.models import ModelVersion
from app.registry.schemas import (
    ItemLineage,
    LabelOut,
    LabelSummary,
    ModelLineage,
    ResponseOrigin,
    TrainingInput,
)
from app.training.runs.models import TrainingRun

LABELS_FILE = "annotation_ids.txt"  # app.exports.jobs.LABELS (not imported: jobs is worker code)
MAX_INPUTS = 1000  # versions walked per lineage: the graph is acyclic; this only bounds a bug


@dataclass(frozen=True, slots=True)
class _Input:
    model: ModelVersion
    relation: str
    run: TrainingRun
    export: Export


def _walk(session: Session, principal: Principal, version: ModelVersion) -> list[_Input]:
    """The training runs behind a version: its own, its reward model's, its parent's, ...
    (breadth first, each version once). Runs on projects the caller may not see are left out:
    their labels are that project's."""
    out: list[_Input] = []
    queue: list[tuple[ModelVersion, str]] = [(version, "itself")]
    seen = {version.id}
    while queue and len(seen) < MAX_INPUTS:
        current, relation = queue.pop(0)
        run = session.scalars(
            select(TrainingRun).where(TrainingRun.model_version_id == current.id)
        ).one_or_none()
        nexts: list[tuple[int | None, str]] = []
        if run is not None and _sees(session, principal, run.project_id):
            export = session.get_one(Export, run.export_id)
            out.append(_Input(current, relation, run, export))
            nexts += [(run.reward_model_id, "reward model"), (run.base_model_id, "parent")]
        nexts.append((current.parent_id, "parent"))
        for model_id, how in nexts:
            if model_id is None or model_id in seen:
                continue
            seen.add(model_id)
            label = how if relation == "itself" else f"{how} of {current.name} ({current.id})"
            queue.append((session.get_one(ModelVersion, model_id), label))
    return out


def _sees(session: Session, principal: Principal, project_id: int) -> bool:
    try:
        get_project(session, principal, project_id)
    except NotFound:
        return False
    return True


def _labels_path(export: Export) -> Path | None:
    if export.path is None:
        return None
    path = get_settings().data_dir / export.path / LABELS_FILE
    return path if path.is_file() else None


@lru_cache(maxsize=16)
def _read_ids(path: str, sha256: str) -> array[int]:
    """A labels file's ids, 8 bytes each (cached by path and digest: a snapshot's files never
    change)."""
    with Path(path).open("rb") as f:
        return array("q", (int(line) for line in f))


def _filtered_ids(session: Session, export: Export) -> list[int]:
    """Labels of a snapshot without a labels file: its filters, up to its highest id."""
    from app.annotations.votes import read_votes, vote_kind
    from app.exports.query import vote_filter
    from app.exports.schemas import ExportOptions
    from app.projects.models import Project

    manifest = export.manifest or {}
    top = (manifest.get("snapshot") or {}).get("highest_annotation_id")
    if top is None:
        return []
    options = ExportOptions.model_validate(export.options)
    base = vote_filter(options)
    limit = top if base.max_annotation_id is None else min(top, base.max_annotation_id)
    kind = vote_kind(session.get_one(Project, export.project_id).rules().kind)
    limited = replace(base, max_annotation_id=limit)
    votes = read_votes(session.connection(), export.project_id, kind, limited)
    return [v.annotation_id for v in votes]


def snapshot_ids(session: Session, export: Export) -> tuple[Sequence[int], bool]:
    """(the snapshot's label ids ascending, whether they are exact)."""
    path = _labels_path(export)
    if path is not None:
        sha = ((export.manifest or {}).get("labels") or {}).get("sha256", "")
        return _read_ids(str(path), str(sha)), True
    return _filtered_ids(session, export), False


def model_lineage(session: Session, principal: Principal, version: ModelVersion) -> ModelLineage:
    return ModelLineage(
        model_id=version.id,
        inputs=training_inputs(session, principal, version),
        summary=label_summary(session, principal, version),
    )


def training_inputs(
    session: Session, principal: Principal, version: ModelVersion
) -> list[TrainingInput]:
    out = []
    for inp in _walk(session, principal, version):
        ids, exact = snapshot_ids(session, inp.export)
        snap = (inp.export.manifest or {}).get("snapshot") or {}
        out.append(
            TrainingInput(
                model_id=inp.model.id,
                model_name=inp.model.name,
                model_kind=inp.model.kind,
                relation=inp.relation,
                training_run_id=inp.run.id,
                run_kind=inp.run.kind,
                export_id=inp.export.id,
                project_id=inp.export.project_id,
                export_sha256=inp.export.sha256,
                highest_annotation_id=snap.get("highest_annotation_id"),
                labels=len(ids),
                exact=exact,
            )
        )
    return out


def _label_sets(
    session: Session, principal: Principal, version: ModelVersion
) -> list[tuple[_Input, Any]]:
    return [
        (inp, snapshot_ids(session, inp.export)[0]) for inp in _walk(session, principal, version)
    ]


def label_page(session: Session, principal: Principal, version: ModelVersion, page: Keyset) -> Page:
    """The labels that trained `version` (and its inputs), by annotation id, a page at a time;
    each names the snapshots and models it went into."""
    sets = _label_sets(session, principal, version)
    after = page.after_id or 0
    heads = []
    for _, ids in sets:
        start = bisect.bisect_right(ids, after)
        heads.append(ids[start : start + page.limit + 1])
    chosen = sorted(set(heapq.merge(*heads)))[: page.limit + 1]
    if not chosen:
        return page.page([])
    into: dict[int, list[_Input]] = {i: [] for i in chosen}
    for (inp, _), head in zip(sets, heads, strict=True):
        for i in head:
            if i in into:
                into[i].append(inp)
    rows = _label_rows(session, chosen)
    items = [
        LabelOut(
            **rows[i],
            export_ids=sorted({inp.export.id for inp in into[i]}),
            trained_models=sorted({inp.model.id for inp in into[i]}),
        )
        for i in chosen
        if i in rows  # a label deleted since (its item or project went) is no longer listed
    ]
    return page.page(items, key=lambda r: r.annotation_id)


def _label_rows(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Who made each label, on which item, and the versions that generated that item's
    responses."""
    rows = session.execute(
        text(
            "SELECT a.id, a.item_id, a.project_id, a.source, a.user_id, a.judge_id, j.name,"
            " a.created_at, (SELECT coalesce(array_agg(DISTINCT r.model_version_id), '{}')"
            "  FROM responses r WHERE r.item_id = a.item_id AND r.model_version_id IS NOT NULL)"
            " FROM annotations a LEFT JOIN judges j ON j.id = a.judge_id"
            " WHERE a.id = ANY(CAST(:ids AS bigint[]))"
        ),
        {"ids": ids},
    )
    return {
        int(r[0]): {
            "annotation_id": int(r[0]),
            "item_id": int(r[1]),
            "project_id": int(r[2]),
            "source": r[3],
            "annotator_id": r[4],
            "judge_id": r[5],
            "judge_name": r[6],
            "created_at": r[7],
            "generated_by": sorted(int(v) for v in r[8]),
        }
        for r in rows
    }


def label_summary(session: Session, principal: Principal, version: ModelVersion) -> LabelSummary:
    """Counts over every label that trained the version: by source, annotator and judge."""
    sets = _label_sets(session, principal, version)
    ids = sorted(set().union(*(set(ids) for _, ids in sets)))
    summary = LabelSummary(labels=len(ids), human=0, ai=0, annotators={}, judges={})
    if not ids:
        return summary
    rows = session.execute(
        text(
            "SELECT a.source, a.user_id, a.judge_id, j.name, count(*) FROM annotations a"
            " LEFT JOIN judges j ON j.id = a.judge_id WHERE a.id = ANY(CAST(:ids AS bigint[]))"
            " GROUP BY a.source, a.user_id, a.judge_id, j.name"
        ),
        {"ids": ids},
    )
    for source, user_id, judge_id, judge_name, count in rows:
        if source == "ai":
            summary.ai += count
            key = f"{judge_name} ({judge_id})"
            summary.judges[key] = summary.judges.get(key, 0) + count
        else:
            summary.human += count
            key = str(user_id)
            summary.annotators[key] = summary.annotators.get(key, 0) + count
    return summary


def item_lineage(
    session: Session, principal: Principal, project_id: int, item_id: int
) -> ItemLineage:
    """An item's responses with the checkpoints that generated them, and its labels with the
    model versions (of this project) whose snapshots included each."""
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    item = session.scalars(
        select(Item).where(Item.id == item_id, Item.project_id == project.id)
    ).one_or_none()
    if item is None:
        raise NotFound(f"Item {item_id} does not exist in project {project.id}.")
    responses = session.execute(
        select(Response, ModelVersion)
        .outerjoin(ModelVersion, ModelVersion.id == Response.model_version_id)
        .where(Response.item_id == item.id)
        .order_by(Response.position)
    ).all()
    origins = [
        ResponseOrigin(
            response_id=r.id,
            position=r.position,
            model=r.model,
            model_version_id=r.model_version_id,
            model_version_name=v.name if v is not None else None,
            generation_job_id=(r.lineage or {}).get("job_id"),
        )
        for r, v in responses
    ]
    label_ids = list(
        session.scalars(
            select(Annotation.id).where(Annotation.item_id == item.id).order_by(Annotation.id)
        )
    )
    rows = _label_rows(session, label_ids)
    # Snapshots of the project that trained a registered version, and which labels they hold.
    trained = session.execute(
        select(TrainingRun.model_version_id, Export)
        .join(Export, Export.id == TrainingRun.export_id)
        .where(
            TrainingRun.project_id == project.id,
            TrainingRun.model_version_id.is_not(None),
        )
        .order_by(TrainingRun.id)
    ).all()
    into: dict[int, tuple[set[int], set[int]]] = {i: (set(), set()) for i in label_ids}
    for model_id, export in trained:
        if model_id is None:
            continue
        ids, _ = snapshot_ids(session, export)
        for i in label_ids:
            k = bisect.bisect_left(ids, i)
            if k < len(ids) and ids[k] == i:
                into[i][0].add(export.id)
                into[i][1].add(model_id)
    labels = [
        LabelOut(**rows[i], export_ids=sorted(into[i][0]), trained_models=sorted(into[i][1]))
        for i in label_ids
        if i in rows
    ]
    return ItemLineage(item_id=item.id, project_id=project.id, responses=origins, labels=labels)
