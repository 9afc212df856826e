"""The route job's work: read held items, (judge them,) decide, reserve, record and release.

No transaction is held while deciding. Each chunk of items, in the plan's priority order, is
one short fenced transaction that locks its held items (SKIP LOCKED: a concurrent route job
takes the others), reserves human units from the ledger, writes the decision rows and
releases human items to the assignment engine by adding the human overlap to `remaining`.
A re-delivered job simply finds fewer held items: what committed stays decided.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from app.db import get_engine
from app.jobs.context import JobContext, JobFailed
from app.jobs.models import Job
from app.projects.models import Project
from app.routing import core, signals
from app.routing.core import Plan, PolicySpec, Signals
from app.routing.models import (
    Decision,
    ProjectRouting,
    RoutingModel,
    RoutingPolicyVersion,
    Strategy,
)
from app.routing.schemas import LearnedParams, parse_params
from app.routing.service import SIGNAL_STRATEGIES, reconcile, reserve_items

CHUNK = 5000
EXAMPLES = 20
# Human-human agreement assumed before a project has any (the seeds' figure for real
# pairwise preference data); used only for the dry run's accuracy estimate.
DEFAULT_AGREEMENT = 0.66

_HELD = text(
    "SELECT id FROM items WHERE project_id = :pid AND routing = 'held' ORDER BY id LIMIT :limit"
)
_HELD_COUNT = text("SELECT count(*) FROM items WHERE project_id = :pid AND routing = 'held'")
_LOCK_HELD = text(
    "SELECT id FROM items WHERE id = ANY(:ids) AND routing = 'held' ORDER BY id"
    " FOR UPDATE SKIP LOCKED"
)
_INSERT_DECISIONS = text(
    """
    INSERT INTO routing_decisions (project_id, item_id, policy_version_id, job_id, decision,
        score, reason, predicted_gain, reserved_units, unit_cost)
    SELECT :pid, d.item_id, :version, :job, d.decision, d.score, d.reason, d.gain, d.units, :unit
    FROM unnest(CAST(:items AS bigint[]), CAST(:decisions AS text[]), CAST(:scores AS float8[]),
                CAST(:reasons AS text[]), CAST(:gains AS float8[]), CAST(:units AS int[]))
         AS d(item_id, decision, score, reason, gain, units)
    """
)
# Release: the human target goes from 0 to the overlap, so remaining = target - taken holds.
_RELEASE = text(
    """
    UPDATE items i SET routing = d.decision,
        remaining = i.remaining + CASE WHEN d.decision = 'ai' THEN 0 ELSE :target END
    FROM unnest(CAST(:items AS bigint[]), CAST(:decisions AS text[])) AS d(item_id, decision)
    WHERE i.id = d.item_id
    """
)
_HUMAN_MAJORITY = text(
    """
    SELECT i.id,
           count(*) FILTER (WHERE (a.payload->>'preferred')::bigint = r.id) AS first,
           count(*) FILTER (WHERE (a.payload->>'preferred')::bigint <> r.id) AS second,
           (array_agg(COALESCE(a.payload->>'preferred', 'tie') ORDER BY a.id))
               [1:CAST(:k AS int)] AS first_k
    FROM items i
    JOIN responses r ON r.item_id = i.id AND r.position = 0
    JOIN annotations a ON a.item_id = i.id AND a.source = 'human' AND NOT a.over_quota
    WHERE i.project_id = :pid AND i.routing IS NOT NULL AND i.routing <> 'held'
    GROUP BY i.id
    """
)


@dataclass(frozen=True, slots=True)
class Config:
    project_id: int
    kind: str
    version_id: int
    spec: PolicySpec
    human_cost: Decimal
    judge_ids: tuple[int, ...]
    min_train: int | None


def load_config(session: Session, project_id: int) -> Config:
    routing = session.get(ProjectRouting, project_id)
    if routing is None:
        raise JobFailed(f"Project {project_id} has no routing policy any more.")
    version = session.get_one(RoutingPolicyVersion, routing.policy_version_id)
    project = session.get_one(Project, project_id)
    strategy = Strategy(version.strategy)
    params = parse_params(strategy, version.params)
    return Config(
        project_id=project_id,
        kind=str(project.kind),
        version_id=version.id,
        spec=PolicySpec(
            strategy=strategy,
            params=version.params,
            human_overlap=version.human_overlap or project.overlap,
            audit_fraction=version.audit_fraction,
            min_human=version.min_human,
        ),
        human_cost=Decimal(version.human_cost),
        judge_ids=tuple(routing.judge_ids),
        min_train=params.min_train if isinstance(params, LearnedParams) else None,
    )


def human_majority_accuracy(conn: Connection, project_id: int, overlap: int) -> float:
    """P(the human majority of `overlap` votes is right), from the project's agreement."""
    pairs, agreeing = conn.execute(
        text(
            """
            WITH g AS (SELECT item_id, payload->>'preferred' AS p, count(*) AS t
                       FROM annotations WHERE project_id = :pid AND source = 'human'
                       GROUP BY item_id, payload->>'preferred'),
                 n AS (SELECT item_id, sum(t) AS n FROM g GROUP BY item_id)
            SELECT (SELECT sum(n * (n - 1)) FROM n), (SELECT sum(t * (t - 1)) FROM g)
            """
        ),
        {"pid": project_id},
    ).one()
    agreement = float(agreeing) / float(pairs) if pairs else DEFAULT_AGREEMENT
    return majority_accuracy(agreement, overlap)


def majority_accuracy(agreement: float, k: int) -> float:
    """Two annotators of accuracy q agree with p = q² + (1-q)²; their majority of k (ties
    broken by a coin) is right with this probability."""
    q = (1 + math.sqrt(max(0.0, 2 * agreement - 1))) / 2
    total = 0.0
    for right in range(k + 1):
        p = math.comb(k, right) * q**right * (1 - q) ** (k - right)
        if 2 * right > k:
            total += p
        elif 2 * right == k:
            total += p / 2
    return total


@dataclass(slots=True)
class TrainingSet:
    """Dual-labelled items (y: the AI label is wrong by the human majority), and items with
    `agreement_votes` human votes or more (agree: those first votes are all alike)."""

    sig: Signals
    texts: signals.ItemTexts
    y: np.ndarray[Any, np.dtype[np.int_]]
    agree_signals: Signals
    agree_texts: signals.ItemTexts
    agree: np.ndarray[Any, np.dtype[np.int_]]
    agreement_votes: int


def training_set(conn: Connection, cfg: Config) -> TrainingSet:
    majority: dict[int, bool] = {}
    pairs: dict[int, int] = {}
    # The agreement model learns whether the overlap's votes are unanimous (two at least).
    k = max(2, cfg.spec.human_overlap)
    rows = conn.execute(_HUMAN_MAJORITY, {"pid": cfg.project_id, "k": k})
    for item_id, first, second, first_k in rows:
        if first != second:
            majority[item_id] = first > second
        if len(first_k) == k:
            pairs[item_id] = int(len(set(first_k)) == 1)
    sig, texts = signals.read(conn, sorted(majority), cfg.judge_ids)
    keep = ~np.isnan(sig.prob_first)
    y = np.array(
        [
            # An AI tie (p = 0.5) gives no usable label: it counts as a disagreement.
            int(p == 0.5 or (p > 0.5) != majority[int(i)])
            for i, p in zip(sig.item_ids, sig.prob_first, strict=True)
        ],
        dtype=np.int_,
    )
    a_sig, a_texts = signals.read(conn, sorted(pairs), cfg.judge_ids)
    agree = np.array([pairs[int(i)] for i in a_sig.item_ids], dtype=np.int_)
    return TrainingSet(
        _subset(sig, keep), _subset_texts(texts, keep), y[keep], a_sig, a_texts, agree, k
    )


def _subset(s: Signals, keep: np.ndarray[Any, np.dtype[np.bool_]]) -> Signals:
    idx = np.flatnonzero(keep)
    return Signals(
        item_ids=s.item_ids[idx],
        metadata=[s.metadata[int(i)] for i in idx],
        prob_first=s.prob_first[idx],
        swap_inconsistent=s.swap_inconsistent[idx],
        disagreement=s.disagreement[idx],
    )


def _subset_texts(
    t: signals.ItemTexts, keep: np.ndarray[Any, np.dtype[np.bool_]]
) -> signals.ItemTexts:
    idx = np.flatnonzero(keep)
    return signals.ItemTexts(
        [t.external_ids[i] for i in idx], [t.prompts[i] for i in idx], [t.responses[i] for i in idx]
    )


def learned_gain(
    ctx: JobContext | None, cfg: Config, sig: Signals, texts: signals.ItemTexts
) -> tuple[np.ndarray[Any, np.dtype[np.float64]] | None, str, dict[str, Any] | None]:
    """The learned router's predicted gains, or None with the reason it fell back."""
    from app.routing import learned

    assert cfg.min_train is not None
    params = parse_params(cfg.spec.strategy, dict(cfg.spec.params))
    assert isinstance(params, LearnedParams)
    with get_engine().connect() as conn, conn.begin():
        ts = training_set(conn, cfg)
        last = conn.execute(
            select(
                RoutingModel.id, RoutingModel.n_train, RoutingModel.validation, RoutingModel.model
            )
            .where(
                RoutingModel.policy_version_id == cfg.version_id,
                RoutingModel.project_id == cfg.project_id,
            )
            .order_by(RoutingModel.id.desc())
            .limit(1)
        ).one_or_none()
    y = ts.y
    n = len(y)
    if n < cfg.min_train or len(set(y.tolist())) < 2:
        note = (
            f"learned: {n} dual-labelled items, fewer than min_train={cfg.min_train}"
            if n < cfg.min_train
            else "learned: the dual-labelled items all agree or all disagree"
        ) + "; fell back to uncertainty"
        return None, note, None
    fitted = None
    if last is not None and last.n_train == n:
        fitted = learned.loads(last.model, last.validation, n)
        model_id = last.id
        if fitted.base_features != learned.BASE_FEATURES:
            fitted = None  # stored before the features changed: fit again
    if fitted is None:
        if ctx is not None:
            ctx.heartbeat()
        spec = learned.FeatureSpec(tuple(learned.categories_of(ts.sig.metadata)), params.embedding)
        x = learned.features(spec, ts.sig, ts.texts.prompts, ts.texts.responses)
        xa = learned.features(
            spec, ts.agree_signals, ts.agree_texts.prompts, ts.agree_texts.responses
        )
        fitted = learned.fit(
            x,
            y,
            spec,
            agreement=(xa, ts.agree),
            overlap=cfg.spec.human_overlap,
            agreement_votes=ts.agreement_votes,
        )
        model_id = _store_model(ctx, cfg, fitted)
    x_new = learned.features(fitted.spec, sig, texts.prompts, texts.responses)
    info = {"model_id": model_id, "n_train": n, "validation": fitted.validation}
    return fitted.predict_gain(x_new), f"learned: model {model_id} on {n} items", info


def _store_model(ctx: JobContext | None, cfg: Config, fitted: Any) -> int:
    row = RoutingModel(
        policy_version_id=cfg.version_id,
        project_id=cfg.project_id,
        n_train=fitted.n_train,
        validation=fitted.validation,
        features=fitted.spec.names()[:64] + (["..."] if len(fitted.spec.names()) > 64 else []),
        model=fitted.dumps(),
    )
    if ctx is None:
        from app.db import session_scope

        with session_scope() as s:
            s.add(row)
            s.flush()
            return row.id
    with ctx.transaction() as s:
        s.add(row)
        s.flush()
        return row.id


def make_plan(
    ctx: JobContext | None, cfg: Config, ids: list[int], seed: int
) -> tuple[Plan, Signals, dict[str, Any] | None]:
    learned_strategy = cfg.spec.strategy is Strategy.learned
    with get_engine().connect() as conn, conn.begin():
        sig, texts = signals.read(conn, ids, cfg.judge_ids, texts=learned_strategy)
    gain, note, model = None, "", None
    if cfg.spec.strategy is Strategy.learned:
        gain, note, model = learned_gain(ctx, cfg, sig, texts)
    rng = np.random.default_rng(seed)
    return core.plan(cfg.spec, sig, rng, gain, note), sig, model


def _order(p: Plan, n: int) -> list[int]:
    wanting = set(p.priority)
    return [*p.priority, *(i for i in range(n) if i not in wanting)]


def preview(
    conn: Connection, cfg: Config, p: Plan, sig: Signals, units: int, external: list[str | None]
) -> dict[str, Any]:
    """What a route would do with `units` human annotations available."""
    final = core.allocate(p, units, cfg.spec.human_overlap)
    counts = {d.value: 0 for d in Decision}
    for d in final:
        counts[d.value] += 1
    human_items = counts["human"] + counts["both"]
    human_acc = human_majority_accuracy(conn, cfg.project_id, cfg.spec.human_overlap)
    correct = [
        human_acc if d is not Decision.ai else 1 - float(p.gain[i]) for i, d in enumerate(final)
    ]
    examples = [
        {
            "item_id": int(sig.item_ids[i]),
            "external_id": external[i],
            "decision": final[i].value,
            "reason": p.reason[i],
            "score": None if math.isnan(p.score[i]) else round(float(p.score[i]), 4),
            "predicted_gain": round(float(p.gain[i]), 4),
        }
        for i in _order(p, len(final))[:EXAMPLES]
    ]
    units_used = human_items * cfg.spec.human_overlap
    ai_items = [int(sig.item_ids[i]) for i, d in enumerate(final) if d is not Decision.human]
    return {
        "ai_cost_estimate": round(ai_cost(conn, cfg, ai_items), 6),
        "dry_run": True,
        "items": len(final),
        "counts": counts,
        "human_units": units_used,
        "human_cost": float(cfg.human_cost * units_used),
        "predicted_accuracy": round(float(np.mean(correct)), 4) if correct else None,
        "human_majority_accuracy": round(human_acc, 4),
        "reasons": dict(sorted(_count(p.reason).items())),
        "examples": examples,
        "note": p.note,
    }


_JUDGE_COST = text(
    """
    SELECT j.id, (j.costs->>'per_call')::float8,
           (SELECT avg(o.cost) FROM judge_outputs o
            WHERE o.judge_id = j.id AND o.project_id = :pid) AS mean_cost,
           (SELECT count(*) FROM judge_outputs o
            WHERE o.judge_id = j.id AND o.item_id = ANY(:items)) AS already
    FROM judges j WHERE j.id = ANY(:judges)
    """
)


def ai_cost(conn: Connection, cfg: Config, ai_items: list[int]) -> float:
    """What judging the items for AI would cost, in the judges' own cost units: per judge, the
    mean cost of its outputs on the project (else two calls at its per-call cost: both orders),
    times the items it has not judged yet."""
    if not cfg.judge_ids or not ai_items:
        return 0.0
    total = 0.0
    for _, per_call, mean_cost, already in conn.execute(
        _JUDGE_COST, {"pid": cfg.project_id, "items": ai_items, "judges": list(cfg.judge_ids)}
    ):
        each = float(mean_cost) if mean_cost is not None else 2 * float(per_call or 0)
        total += each * max(0, len(ai_items) - int(already))
    return total


def _maybe(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _count(values: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def run(ctx: JobContext) -> dict[str, Any]:
    params: Mapping[str, Any] = ctx.params
    pid = int(params["project_id"])
    dry = bool(params.get("dry_run", False))
    with ctx.transaction() as s:
        cfg = load_config(s, pid)
        budget = reconcile(s, pid)
        held_total = int(s.scalar(_HELD_COUNT, {"pid": pid}) or 0)
        limit = params.get("sample") if dry else params.get("limit")
        ids = list(s.scalars(_HELD, {"pid": pid, "limit": limit or held_total or 1}))
        created_by = s.get_one(Job, ctx.job_id).created_by
    needs_signals = cfg.spec.strategy in SIGNAL_STRATEGIES
    if needs_signals and cfg.kind != "pairwise":
        raise JobFailed(f"The {cfg.spec.strategy.value} strategy needs a pairwise project.")
    if not ids:
        return {"dry_run": dry, "items": 0, "routed": 0, "note": "no held items"}
    judged: list[int] = []
    if needs_signals and cfg.judge_ids:
        # The judges first: the decision reads their outputs.
        from app.routing import judging

        with ctx.transaction() as s:
            missing = judging.unjudged(s, cfg.judge_ids, ids)
            judged = judging.start_runs(s, pid, cfg.kind, cfg.judge_ids, missing, created_by)
        ctx.progress(0.02, {"step": "judging", "items": len(missing), "jobs": judged})
        judging.run_and_wait(ctx, judged)
    ctx.progress(0.05, {"step": "signals", "items": len(ids)})
    started = time.perf_counter()
    p, sig, model = make_plan(ctx, cfg, ids, seed=ctx.job_id)
    planned = time.perf_counter()
    # Pacing: this job may spend the share of the available budget that its items are of the
    # held ones, so routing part of the items leaves the rest their part.
    share = len(ids) / max(held_total, 1)
    cap_units = core.units_for(budget.available * share, float(cfg.human_cost))
    if dry:
        with get_engine().connect() as conn, conn.begin():
            external = [
                e for e in signals.read(conn, [int(i) for i in sig.item_ids], ())[1].external_ids
            ]
            result = preview(conn, cfg, p, sig, cap_units, external)
        result["model"] = model
        return result
    result = _commit(ctx, cfg, p, sig, cap_units, model)
    # Seconds spent deciding (signals, features, plan) and writing (decisions, ledger, release).
    result["seconds"] = {
        "decide": round(planned - started, 3),
        "write": round(time.perf_counter() - planned, 3),
    }
    result["judge_jobs"] = judged
    if not needs_signals and cfg.judge_ids and result["ai_items"]:
        # Items for AI (or both) get their judgements now, in judge runs of their own.
        from app.routing import judging

        with ctx.transaction() as s:
            result["judge_jobs"] = judging.start_runs(
                s, pid, cfg.kind, cfg.judge_ids, result["ai_items"], created_by
            )
    del result["ai_items"]
    return result


def _commit(
    ctx: JobContext,
    cfg: Config,
    p: Plan,
    sig: Signals,
    cap_units: int,
    model: dict[str, Any] | None,
) -> dict[str, Any]:
    order = _order(p, len(sig))
    overlap = cfg.spec.human_overlap
    left = cap_units
    counts = {d.value: 0 for d in Decision}
    reasons: dict[str, int] = {}
    units_total, skipped = 0, 0
    ai_items: list[int] = []
    for start in range(0, len(order), CHUNK):
        chunk = order[start : start + CHUNK]
        with ctx.transaction() as s:
            owned = set(s.scalars(_LOCK_HELD, {"ids": [int(sig.item_ids[i]) for i in chunk]}))
            mine = [i for i in chunk if int(sig.item_ids[i]) in owned]
            skipped += len(chunk) - len(mine)
            wanting = [i for i in mine if p.needs_human(i)]
            fits = reserve_items(
                s,
                cfg.project_id,
                min(len(wanting), max(left, 0) // overlap),
                overlap,
                cfg.human_cost,
            )
            left -= fits * overlap
            units_total += fits * overlap
            final: dict[int, Decision] = {}
            for k, i in enumerate(wanting):
                if k < fits:
                    final[i] = p.wanted[i]
                else:
                    final[i] = Decision.ai
                    p.reason[i] = core.OVER_BUDGET
            for i in mine:
                final.setdefault(i, Decision.ai)
            rows = [(int(sig.item_ids[i]), final[i], i) for i in mine]
            if rows:
                s.execute(
                    _INSERT_DECISIONS,
                    {
                        "pid": cfg.project_id,
                        "version": cfg.version_id,
                        "job": ctx.job_id,
                        "unit": cfg.human_cost,
                        "items": [r[0] for r in rows],
                        "decisions": [r[1].value for r in rows],
                        "scores": [
                            None if math.isnan(p.score[i]) else float(p.score[i]) for *_, i in rows
                        ],
                        "reasons": [p.reason[i] for *_, i in rows],
                        "gains": [float(p.gain[i]) for *_, i in rows],
                        "units": [0 if r[1] is Decision.ai else overlap for r in rows],
                    },
                )
                s.execute(
                    _RELEASE,
                    {
                        "target": overlap,
                        "items": [r[0] for r in rows],
                        "decisions": [r[1].value for r in rows],
                    },
                )
            ai_items += [item for item, d, _ in rows if d is not Decision.human]
            for _, d, i in rows:
                counts[d.value] += 1
                reasons[p.reason[i]] = reasons.get(p.reason[i], 0) + 1
        ctx.progress(0.1 + 0.9 * min(1.0, (start + len(chunk)) / len(order)), {"step": "route"})
    return {
        "dry_run": False,
        "items": len(order),
        "routed": sum(counts.values()),
        "skipped_locked": skipped,
        "counts": counts,
        "reasons": dict(sorted(reasons.items())),
        "human_units": units_total,
        "reserved_cost": float(cfg.human_cost * units_total),
        "note": p.note,
        "model": model,
        "ai_items": ai_items,
    }
