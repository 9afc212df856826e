"""Registry rules: register a base model, list and read versions with lineage, delete unused ones.

Who sees what: base models are lab-wide (every researcher); a trained version belongs to the
project whose labels trained it, and only that project's researchers (and admins) see it, as
with the project's exports. Registering a base model reads the server's file system, so it is
an admin's action; deleting is for the version's creator or an admin.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import ColumnElement, exists, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.config import get_settings
from app.errors import Forbidden, Invalid, NotFound
from app.items.models import Response
from app.loops.models import Loop, LoopIteration
from app.pagination import Keyset
from app.projects.models import ProjectMember
from app.registry.errors import ModelInUse
from app.registry.models import ModelKind, ModelVersion
from app.registry.schemas import BaseModelCreate, LineageStep, ModelOut
from app.training.runs.models import TrainingRun

PACKAGE_PREFIX = "package:"
# Weight formats that can carry a pickle: a folder holding one is refused (safetensors only).
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})
MAX_LINEAGE = 1000  # a parent chain is acyclic by construction; this only bounds a bug


def visible_to(principal: Principal) -> ColumnElement[bool]:
    if principal.is_admin:
        return true()
    member = exists().where(
        ProjectMember.project_id == ModelVersion.project_id,
        ProjectMember.user_id == principal.id,
    )
    return or_(ModelVersion.project_id.is_(None), member)


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def files_digest(files: dict[str, Any]) -> str:
    """One sha256 for a folder: over its sorted file list with each file's size and sha256."""
    return hashlib.sha256(orjson.dumps(files, option=orjson.OPT_SORT_KEYS)).hexdigest()


def resolve_path(path: str) -> Path:
    """The local file or folder a registered path names (`package:` paths included)."""
    if path.startswith(PACKAGE_PREFIX):
        from app.inference.base import BackendError
        from app.inference.paths import resolve

        try:
            return Path(resolve(path).path)
        except BackendError as exc:
            raise Invalid(str(exc), field="path") from None
    return Path(path).expanduser()


def model_location(version: ModelVersion) -> str:
    """The path a worker loads the version from."""
    if version.kind is ModelKind.base:
        return str(resolve_path(version.artifact_path))
    return str(get_settings().data_dir / version.artifact_path)


def describe_files(path: Path) -> tuple[dict[str, Any], str]:
    """(files with bytes and sha256, the version's sha256) of a .gguf file or a model folder;
    Invalid naming the problem when the path is no loadable model."""
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise Invalid(
                f"{path} is a file but not a .gguf model; register a model folder"
                " (config.json and safetensors weights) or a .gguf file.",
                field="path",
            )
        sha = _sha256(path)
        return {path.name: {"bytes": path.stat().st_size, "sha256": sha}}, sha
    if not path.is_dir():
        raise Invalid(f"{path} does not exist on this server.", field="path")
    if not (path / "config.json").is_file():
        raise Invalid(f"{path} is a folder without config.json: not a saved model.", field="path")
    found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    pickles = [p.name for p in found if p.suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        raise Invalid(
            f"{path} holds {pickles[0]}, a format that can carry a pickle: only safetensors"
            " weights are registered (convert it with save_pretrained(safe_serialization=True)).",
            field="path",
        )
    if not any(p.suffix == ".safetensors" for p in found):
        raise Invalid(f"{path} holds no .safetensors weights.", field="path")
    files = {
        p.relative_to(path).as_posix(): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in found
    }
    return files, files_digest(files)


def register_base(session: Session, principal: Principal, body: BaseModelCreate) -> ModelVersion:
    require_role(principal, Role.admin)
    files, sha = describe_files(resolve_path(body.path))
    stored = body.path
    if not stored.startswith(PACKAGE_PREFIX):
        stored = str(Path(stored).expanduser().resolve())
    version = ModelVersion(
        name=body.name,
        kind=ModelKind.base,
        artifact_path=stored,
        artifact_sha256=sha,
        files=files,
        created_by=principal.id,
    )
    session.add(version)
    session.flush()
    record(session, principal.id, "models.register", "model", version.id, path=stored)
    return version


def get_version(session: Session, principal: Principal, model_id: int) -> ModelVersion:
    require_role(principal, Role.researcher)
    version = session.scalars(
        select(ModelVersion).where(ModelVersion.id == model_id, visible_to(principal))
    ).one_or_none()
    if version is None:
        raise NotFound(f"Model {model_id} does not exist or is not yours to see.")
    return version


def list_versions(
    session: Session, principal: Principal, page: Keyset, kind: ModelKind | None = None
) -> list[ModelVersion]:
    require_role(principal, Role.researcher)
    stmt = (
        select(ModelVersion)
        .where(visible_to(principal))
        .order_by(ModelVersion.id)
        .limit(page.limit + 1)
    )
    if page.after_id is not None:
        stmt = stmt.where(ModelVersion.id > page.after_id)
    if kind is not None:
        stmt = stmt.where(ModelVersion.kind == kind)
    return list(session.scalars(stmt))


def run_of(session: Session, version_id: int) -> int | None:
    return session.scalar(select(TrainingRun.id).where(TrainingRun.model_version_id == version_id))


def lineage(session: Session, version: ModelVersion) -> list[LineageStep]:
    """The ancestors, parent first (every ancestor is shown: lineage names no labels)."""
    out: list[LineageStep] = []
    parent_id = version.parent_id
    while parent_id is not None and len(out) < MAX_LINEAGE:
        parent = session.get_one(ModelVersion, parent_id)
        out.append(
            LineageStep(
                id=parent.id,
                name=parent.name,
                kind=parent.kind,
                training_run_id=run_of(session, parent.id),
                snapshot=parent.snapshot,
            )
        )
        parent_id = parent.parent_id
    return out


def generated_responses(session: Session, version_id: int) -> int:
    """How many responses (items generated through POST .../generate) name this version."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Response)
            .where(Response.model_version_id == version_id)
        )
        or 0
    )


def dependents(session: Session, version_id: int) -> tuple[list[int], list[int]]:
    """(child versions, runs that use it as base or reward model)."""
    children = list(
        session.scalars(
            select(ModelVersion.id)
            .where(ModelVersion.parent_id == version_id)
            .order_by(ModelVersion.id)
        )
    )
    runs = list(
        session.scalars(
            select(TrainingRun.id)
            .where(
                or_(
                    TrainingRun.base_model_id == version_id,
                    TrainingRun.reward_model_id == version_id,
                )
            )
            .order_by(TrainingRun.id)
        )
    )
    return children, runs


def loops_using(session: Session, version_id: int) -> list[int]:
    """Loops that start from this version, train their reward models from it, or sampled,
    scored or updated with it in an iteration: deleting it would break or orphan them."""
    key = str(version_id)
    in_config = or_(
        Loop.config["policy_model_id"].astext == key,
        Loop.config["reward_model"]["base_model_id"].astext == key,
    )
    in_iteration = exists().where(
        LoopIteration.loop_id == Loop.id,
        or_(
            LoopIteration.policy_model_id == version_id,
            LoopIteration.reward_model_id == version_id,
            LoopIteration.new_policy_model_id == version_id,
        ),
    )
    return list(
        session.scalars(select(Loop.id).where(or_(in_config, in_iteration)).order_by(Loop.id))
    )


def to_out(session: Session, version: ModelVersion) -> ModelOut:
    children, runs = dependents(session, version.id)
    return ModelOut(
        id=version.id,
        name=version.name,
        kind=version.kind,
        parent_id=version.parent_id,
        project_id=version.project_id,
        training_run_id=run_of(session, version.id),
        snapshot=version.snapshot,
        config=version.config,
        metrics=version.metrics,
        artifact_path=version.artifact_path,
        artifact_sha256=version.artifact_sha256,
        files=version.files,
        created_by=version.created_by,
        created_at=version.created_at,
        lineage=lineage(session, version),
        children=children,
        used_by_runs=runs,
        used_by_loops=loops_using(session, version.id),
        generated_responses=generated_responses(session, version.id),
    )


def delete_version(session: Session, principal: Principal, model_id: int) -> None:
    """Delete a version nothing depends on (its creator or an admin). A trained version's run
    keeps its artifacts folder; only the registry entry goes."""
    version = get_version(session, principal, model_id)
    if not principal.is_admin and version.created_by != principal.id:
        raise Forbidden(f"Only the creator of model {model_id} or an admin may delete it.")
    session.refresh(version, with_for_update=True)
    children, runs = dependents(session, version.id)
    generated = generated_responses(session, version.id)
    loops = loops_using(session, version.id)
    if children or runs or generated or loops:
        what = []
        if children:
            what.append(f"model{'s' if len(children) > 1 else ''} {_ids(children)}")
        if runs:
            what.append(f"training run{'s' if len(runs) > 1 else ''} {_ids(runs)}")
        if loops:
            what.append(f"loop{'s' if len(loops) > 1 else ''} {_ids(loops)}")
        if generated:
            what.append(f"{generated} generated response{'s' if generated > 1 else ''}")
        raise ModelInUse(
            f"Model {model_id} cannot be deleted: {' and '.join(what)} depend on it.",
            children=children,
            runs=runs,
            loops=loops,
            generated_responses=generated,
        )
    try:
        with session.begin_nested():
            session.delete(version)
    except IntegrityError:
        # A run or version that committed since the check now points at it (RESTRICT).
        raise ModelInUse(
            f"Model {model_id} cannot be deleted: something now depends on it."
        ) from None
    record(session, principal.id, "models.delete", "model", model_id, kind=version.kind.value)


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:10])
    return shown + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
