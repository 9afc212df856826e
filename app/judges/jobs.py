"""The judge run job: chunks of items through the judge's backend, stored exactly once.

Long work outside transactions (`external` mode): read a chunk of unjudged items, call the
backend with no transaction open, then store the chunk's outputs, votes, counters and the
checkpoint in one fenced transaction. Outputs are unique per (item, judge, template version)
and inserted with ON CONFLICT DO NOTHING, and the chunk query skips judged items, so a killed
worker's redelivered job resumes where it stopped and judges every item exactly once.

A backend failure (after the backend's own retries: 429, 5xx, timeouts, garbage) fails the
job with the reason; the chunk it was judging stores nothing, earlier chunks stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.jobs import queues
from app.jobs.specs import JobSpec, Mode
from app.judges.models import JudgeOutput, JudgeRun, OutputStatus

if TYPE_CHECKING:
    from app.jobs.context import JobContext
    from app.judges.judging import ItemView, Judged

_ITEMS = """
    SELECT i.id, i.external_id, i.prompt, i.metadata,
           array_agg(r.id ORDER BY r.position), array_agg(r.external_id ORDER BY r.position),
           array_agg(r.text ORDER BY r.position)
    FROM items i JOIN responses r ON r.item_id = i.id
    WHERE i.project_id = :pid AND i.id > :after {only}
      AND NOT EXISTS (SELECT 1 FROM judge_outputs o
                      WHERE o.item_id = i.id AND o.judge_id = :jid AND o.template_id = :tid)
    GROUP BY i.id ORDER BY i.id LIMIT :n
"""
_COUNT = """
    SELECT count(*), count(*) FILTER (WHERE EXISTS (
        SELECT 1 FROM judge_outputs o
        WHERE o.item_id = i.id AND o.judge_id = :jid AND o.template_id = :tid))
    FROM items i WHERE i.project_id = :pid {only}
"""


def _only(items: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(items, list):
        return "AND i.id = ANY(CAST(:ids AS bigint[]))", {"ids": items}
    return "", {}


def read_items(session: Session, run: Mapping[str, Any], after: int, limit: int) -> list[ItemView]:
    from app.judges.judging import ItemView

    only, extra = _only(run["items"])
    rows = session.execute(
        text(_ITEMS.format(only=only)),
        {
            "pid": run["project_id"],
            "after": after,
            "jid": run["judge_id"],
            "tid": run["template_id"],
            "n": limit,
            **extra,
        },
    ).all()
    return [
        ItemView(r[0], r[1], r[2], r[3] or {}, list(r[4]), list(r[5]), list(r[6])) for r in rows
    ]


def store(session: Session, run: Mapping[str, Any], results: list[Judged]) -> dict[str, int]:
    """Insert the outputs (once each) and votes for those that parsed; returns counter deltas."""
    from app.annotations.models import Annotation, AnnotationSource
    from app.annotations.payloads import SCHEMA_VERSION

    counts = {"done": 0, "unparsed": 0, "inconsistent": 0, "tokens_in": 0, "tokens_out": 0}
    cost = 0.0
    for r in results:
        output_id = session.execute(
            insert(JudgeOutput)
            .values(
                project_id=run["project_id"],
                item_id=r.item_id,
                judge_id=run["judge_id"],
                template_id=run["template_id"],
                run_id=run["id"],
                status=r.parsed.status,
                model=r.model,
                raw=r.raw,
                probability=r.parsed.probability,
                consistent=r.parsed.consistent,
                error=r.parsed.error,
                tokens_in=r.tokens_in,
                tokens_out=r.tokens_out,
                latency_s=r.latency_s,
                cost=r.cost,
            )
            .on_conflict_do_nothing(index_elements=["item_id", "judge_id", "template_id"])
            .returning(JudgeOutput.id)
        ).scalar_one_or_none()
        if output_id is None:
            continue  # judged already (by an earlier attempt or another run)
        counts["done"] += 1
        counts["tokens_in"] += r.tokens_in
        counts["tokens_out"] += r.tokens_out
        cost += r.cost
        if r.parsed.status == OutputStatus.unparsed:
            counts["unparsed"] += 1
        elif r.parsed.status == OutputStatus.inconsistent:
            counts["inconsistent"] += 1
        elif r.parsed.payload is not None:
            vote = Annotation(
                project_id=run["project_id"],
                item_id=r.item_id,
                source=AnnotationSource.ai,
                judge_id=run["judge_id"],
                payload=r.parsed.payload,
                schema_version=SCHEMA_VERSION,
                shown_order=r.shown_order,
            )
            session.add(vote)
            session.flush()
            session.execute(
                update(JudgeOutput).where(JudgeOutput.id == output_id).values(annotation_id=vote.id)
            )
    session.execute(
        update(JudgeRun)
        .where(JudgeRun.id == run["id"])
        .values(
            done=JudgeRun.done + counts["done"],
            unparsed=JudgeRun.unparsed + counts["unparsed"],
            inconsistent=JudgeRun.inconsistent + counts["inconsistent"],
            tokens_in=JudgeRun.tokens_in + counts["tokens_in"],
            tokens_out=JudgeRun.tokens_out + counts["tokens_out"],
            cost=JudgeRun.cost + cost,
        )
    )
    return counts


def run_judge(ctx: JobContext) -> dict[str, Any]:
    from app.inference import registry
    from app.inference.base import BackendError
    from app.jobs.context import JobFailed
    from app.judges import judging
    from app.judges.config import judge_config
    from app.judges.models import Judge, JudgeTemplate
    from app.projects.models import Project

    with ctx.transaction() as session:
        run_row = session.get_one(JudgeRun, ctx.params["run_id"])
        judge = session.get_one(Judge, run_row.judge_id)
        tpl = session.get_one(JudgeTemplate, run_row.template_id)
        project = session.get_one(Project, run_row.project_id)
        run = {
            "id": run_row.id,
            "project_id": run_row.project_id,
            "judge_id": run_row.judge_id,
            "template_id": run_row.template_id,
            "items": run_row.items,
        }
        rules = project.rules()
        guidelines = project.guidelines
        template = judging.TemplateView(tpl.id, tpl.version, tpl.system, tpl.user, tpl.inconsistent)
        backend_name, model = judge.backend, judge.model
        config = judge_config(judge.backend, judge.params)
        costs = judging.Costs.of(judge.costs)
        if run_row.total is None:
            only, extra = _only(run["items"])
            total, judged = session.execute(
                text(_COUNT.format(only=only)),
                {"pid": run["project_id"], "jid": judge.id, "tid": tpl.id, **extra},
            ).one()
            run_row.total, run_row.skipped = total - judged, judged
        total = run_row.total
    sampling = config.sampling_for(rules.kind.value)
    state = ctx.resume_state() or {}
    after = int(state.get("after", 0))
    done = int(state.get("done", 0))
    ctx.progress(done / total if total else 0.0, {"done": done, "total": total})
    try:
        backend = registry.create(backend_name, model, config.backend)
    except BackendError as exc:
        _fail(ctx, run["id"], 0, exc.message)
        raise JobFailed(exc.message) from None
    try:
        while True:
            with ctx.transaction() as session:
                chunk = read_items(session, run, after, config.chunk_size)
            if not chunk:
                break
            try:
                results = judging.judge_chunk(
                    backend, chunk, rules, guidelines, template, sampling, costs
                )
            except BackendError as exc:
                message = f"The {backend_name} backend failed: {exc.message}"
                _fail(ctx, run["id"], len(chunk), message)
                raise JobFailed(message) from None
            after = chunk[-1].id
            with ctx.transaction() as session:
                counts = store(session, run, results)
                done += counts["done"]
                ctx.checkpoint({"after": after, "done": done})
            ctx.progress(min(1.0, done / total) if total else 1.0, {"done": done, "total": total})
    finally:
        backend.close()
    with ctx.transaction() as session:
        session.execute(
            update(JudgeRun).where(JudgeRun.id == run["id"]).values(finished_at=func.now())
        )
        row = session.get_one(JudgeRun, run["id"])
        result = {
            "run_id": row.id,
            "done": row.done,
            "unparsed": row.unparsed,
            "inconsistent": row.inconsistent,
            "skipped": row.skipped,
            "cost": row.cost,
        }
    return result


def _fail(ctx: JobContext, run_id: int, failed: int, message: str) -> None:
    with ctx.transaction() as session:
        session.execute(
            update(JudgeRun)
            .where(JudgeRun.id == run_id)
            .values(failed=JudgeRun.failed + failed, error=message, finished_at=func.now())
        )


def _queue(params: Mapping[str, Any]) -> str:
    """vLLM runs in the GPU worker; local transformers prefer it; servers are called from any."""
    backend = params.get("backend")
    if backend == "vllm":
        return queues.GPU
    if backend == "transformers":
        return queues.gpu_else(queues.DEFAULT)(params)
    return queues.DEFAULT


RUN = JobSpec(
    kind="judges.run",
    mode=Mode.external,
    handler=run_judge,
    queue=_queue,
    max_attempts=3,
    time_limit=timedelta(hours=6),
    visible_to=Role.researcher,
)
