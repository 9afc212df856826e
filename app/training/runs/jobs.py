"""The training job: snapshot (when the run made none yet), train through the library, then
publish the artifacts and register the model version in the commit that marks the job done.

It prefers the `gpu` queue and falls back to `cpu-train` while no GPU worker is alive. No
transaction is held while it trains (external mode): progress carries step and loss, the
library checkpoints into the job's work dir and a re-delivered job resumes from there; a
cancel stops it at the end of a step. Nothing reaches the registry unless the whole run
succeeded: the version row, the run's metrics and artifact path, and `succeeded` are one commit.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import storage
from app.auth.models import Role
from app.jobs import queues
from app.jobs.specs import JobSpec, Mode
from app.training.runs.models import TrainingRun

if TYPE_CHECKING:
    from app.inference.base import Backend
    from app.jobs.context import JobContext
    from app.training.config import Sampling

# Artifacts folders: data_dir/runs/<run id>-<attempt>/, published through training_runs.path.
RUNS = storage.area("runs", TrainingRun)


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def open_backend(path: str, sampling: Sampling) -> Backend:
    """A sampling backend by name (`transformers` on a CPU worker, `vllm` on a GPU worker)."""
    from app.inference import registry

    return registry.create(sampling.backend, path, dict(sampling.options))


def run_training_run(ctx: JobContext) -> dict[str, Any]:
    from app.config import get_settings
    from app.exports.jobs import write_snapshot
    from app.exports.models import Export
    from app.registry.models import ModelVersion
    from app.registry.service import model_location
    from app.training.config import parse_config
    from app.training.run import run_training
    from app.training.runs.kinds import PRODUCES, RunKind
    from app.training.runs.service import (
        build_config,
        judge_id_of,
        judge_spec,
        snapshot_record,
    )

    run_id = int(ctx.params["run_id"])
    with ctx.transaction() as session:
        run = session.get_one(TrainingRun, run_id)
        kind = RunKind(run.kind)
        export = session.get_one(Export, run.export_id)
        export_id, export_path = export.id, export.path
        base = session.get_one(ModelVersion, run.base_model_id)
        base_id, base_name, base_path = base.id, base.name, model_location(base)
        reward = session.get(ModelVersion, run.reward_model_id) if run.reward_model_id else None
        reward_path = model_location(reward) if reward else None
        project_id, created_by, user_config = run.project_id, run.created_by, dict(run.config)
        judge_id = judge_id_of(user_config)
        source = session.get(TrainingRun, run.source_run_id) if run.source_run_id else None
        source_path = source.path if source is not None else None
        judge = judge_spec(session, judge_id, project_id) if judge_id is not None else None

    if export_path is None:
        ctx.progress(0.0, {"phase": "snapshot"})
        written = write_snapshot(ctx, export_id)
        try:
            with ctx.transaction() as session:
                published = written.publish(session, export_id)
                published.job_id = None  # a finished snapshot of its own from now on
        except BaseException:
            written.folder.discard()
            raise
        export_path = written.path

    config = parse_config(build_config(kind, user_config, base_path, reward_path, judge))
    folder = storage.AttemptFolder(RUNS, run_id, ctx.attempt)
    out = folder.path
    out.parent.mkdir(parents=True, exist_ok=True)
    # What a killed attempt left (a half-written `.partial` folder): only the attempt holding
    # the claim can publish, so earlier attempts' folders are garbage from now on.
    storage.discard_other_attempts(RUNS, run_id, keep=ctx.attempt)
    try:
        # SFT on samples reads the source run's artifacts folder (samples.parquet, run.json).
        input_dir = get_settings().data_dir / (source_path or export_path)
        result = run_training(config, input_dir, out, ctx, backends=open_backend)
    except BaseException:
        # Failed or cancelled: this attempt publishes nothing, so nothing of it stays behind
        # (a SIGKILL skips this; the next attempt or storage.cleanup removes that folder).
        storage.discard_attempts(RUNS, run_id, range(1, ctx.attempt + 1))
        raise
    try:
        storage.fsync_dir(out.parent)
        files = dict(result.files)
        record_sha = _sha256(out / "run.json")
        files["run.json"] = {"bytes": (out / "run.json").stat().st_size, "sha256": record_sha}
        produces = PRODUCES[kind]
        summary = {"run_id": run_id, "artifact": folder.relative, "sha256": record_sha}
        with ctx.complete(summary) as session:
            row = session.get_one(TrainingRun, run_id)
            row.metrics = result.metrics
            row.path = folder.relative
            row.files = files
            row.artifact_sha256 = record_sha
            row.finished_at = datetime.now(UTC)
            if produces is not None:
                snap = snapshot_record(session.get_one(Export, export_id))
                version = ModelVersion(
                    name=f"{kind.value} #{run_id} from {base_name}",
                    kind=produces,
                    parent_id=base_id,
                    project_id=project_id,
                    snapshot=snap,
                    config=config.model_dump(mode="json"),
                    metrics=result.metrics,
                    artifact_path=folder.relative,
                    artifact_sha256=record_sha,
                    files=files,
                    created_by=created_by,
                )
                session.add(version)
                session.flush()
                row.model_version_id = version.id
    except BaseException:
        # Never a folder that no run publishes.
        storage.discard_attempts(RUNS, run_id, range(ctx.attempt, ctx.attempt + 1))
        raise
    storage.discard_other_attempts(RUNS, run_id, keep=ctx.attempt)
    return summary


TRAIN = JobSpec(
    kind="training.run",
    mode=Mode.external,
    handler=run_training_run,
    queue=queues.gpu_else(queues.CPU_TRAIN),
    max_attempts=3,
    time_limit=timedelta(hours=24),
    retry_backoff=timedelta(seconds=15),
    visible_to=Role.researcher,
)
