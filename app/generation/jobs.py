"""The generation job: sample through an inference backend, add the samples as items.

Each batch of prompts becomes items in one fenced transaction together with the checkpoint
that records it, so a re-delivered job continues after the last committed batch and never adds
an item twice (external ids `gen-<job>-<prompt>-<j>` make the import idempotent as well).
Every response carries the generating version (`responses.model_version_id`, and the job and
sampling in `responses.lineage`), so a label can be traced to the checkpoint it judged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from app.auth.models import Role
from app.jobs import queues
from app.jobs.specs import JobSpec, Mode

if TYPE_CHECKING:
    from app.jobs.context import JobContext

BATCH_PROMPTS = 8


def run_generation(ctx: JobContext) -> dict[str, Any]:
    import orjson
    from sqlalchemy import text

    from app.inference import registry as backends
    from app.inference.base import ChatMessage, GenerationRequest
    from app.items.importer import import_rows
    from app.projects.models import Project
    from app.prompts.service import prompts_for
    from app.registry.models import ModelVersion
    from app.registry.service import model_location

    p = ctx.params
    n, k = int(p["n"]), int(p["responses_per_item"])
    set_id = p.get("prompt_set_id")
    with ctx.transaction() as session:
        prompts: list[str] = (
            list(p["prompts"])
            if set_id is None
            else prompts_for(session, int(set_id), p.get("prompt_indices"))
        )
        version = session.get_one(ModelVersion, p["model_version_id"])
        version_id, label, path = version.id, f"{version.name} (model {version.id})", ""
        path = model_location(version)
    sampling = backends.sampling_params({**p["sampling"], "n": n * k})
    backend = backends.create(p["backend"], path, p["backend_params"])
    state = ctx.resume_state() or {"done": 0, "created": 0, "skipped_empty": 0}
    origin = {"prompt_set_id": set_id} if set_id is not None else {}
    lineage = orjson.dumps(
        {"model_version_id": version_id, "job_id": ctx.job_id, "sampling": p["sampling"], **origin}
    ).decode()
    try:
        for start in range(int(state["done"]), len(prompts), BATCH_PROMPTS):
            batch = prompts[start : start + BATCH_PROMPTS]
            requests = [
                GenerationRequest(messages=(ChatMessage("user", q),), params=sampling)
                for q in batch
            ]
            rows: list[dict[str, Any]] = []
            empty = 0
            for i, (prompt, completions) in enumerate(
                zip(batch, backend.generate(requests), strict=True)
            ):
                texts = [c.text for c in completions]
                for j in range(n):
                    group = texts[j * k : (j + 1) * k]
                    if len(group) < k or any(not t for t in group):
                        empty += 1  # an item needs non-empty responses
                        continue
                    rows.append(
                        {
                            "external_id": f"gen-{ctx.job_id}-{start + i}-{j}",
                            "prompt": prompt,
                            "responses": [{"text": t, "model": label} for t in group],
                            "metadata": {
                                "generated_by": version_id,
                                "job_id": ctx.job_id,
                                **origin,
                            },
                        }
                    )
            with ctx.transaction() as session:
                project = session.get_one(Project, p["project_id"])
                result = import_rows(session, project, enumerate(rows, start=1))
                if rows:
                    session.execute(
                        text(
                            "UPDATE responses r SET model_version_id = :v,"
                            " lineage = CAST(:lineage AS jsonb) FROM items i"
                            " WHERE r.item_id = i.id AND i.project_id = :pid"
                            " AND i.external_id = ANY(CAST(:ids AS text[]))"
                        ),
                        {
                            "v": version_id,
                            "lineage": lineage,
                            "pid": project.id,
                            "ids": [r["external_id"] for r in rows],
                        },
                    )
                state = {
                    "done": start + len(batch),
                    "created": int(state["created"]) + result.created,
                    "skipped_empty": int(state["skipped_empty"]) + empty,
                }
                ctx.checkpoint(state)
            ctx.progress(state["done"] / len(prompts), state)
    finally:
        backend.close()
    return {"model_version_id": version_id, "items_created": state["created"], **state}


GENERATE = JobSpec(
    kind="generation.run",
    mode=Mode.external,
    handler=run_generation,
    queue=queues.gpu_else(queues.CPU_TRAIN),
    max_attempts=3,
    time_limit=timedelta(hours=12),
    visible_to=Role.researcher,
)
