"""The evaluation step (worker side): how iteration i's policy compares with iteration 0's and
with the previous iteration's.

Each policy samples one completion per evaluation prompt (the same seed for all, through the
inference backend the loop samples with); the samples are compared pairwise on the same prompt
by the iteration's reward model, by a judge (both orders, app/judges) and by a gold reward
(simulated worlds, app/simulate/rewards.py) when configured, and a sample of pairs can go to
humans (app/loops/human_eval.py). A win counts 1, a tie 0.5. Lengths are in words; length drift
is the policy's mean length over iteration 0's, minus 1. Samples are kept in the job's work dir,
so a re-delivered job does not sample again.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from statistics import fmean
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.loops.jobs import human_eval_module
from app.loops.models import Loop, LoopIteration, LoopStep, StepName
from app.training.policy_eval import win_rate

if TYPE_CHECKING:
    from app.jobs.context import JobContext


def words(text: str) -> int:
    return len(text.split())


def eval_prompts(session: Session, config: dict[str, Any]) -> list[str]:
    """The evaluation's prompts: its own, else the first of the loop's prompts or prompt set."""
    ev = config["evaluation"]
    k = int(ev["num_prompts"])
    if ev.get("prompts"):
        return list(ev["prompts"][:k])
    if config.get("prompt_set_id") is not None:
        from app.prompts.service import prompts_for

        return prompts_for(session, int(config["prompt_set_id"]), None)[:k]
    return list(config["prompts"][:k])


def _sample(
    backend_name: str,
    backend_params: dict[str, Any],
    path: str,
    prompts: Sequence[str],
    ev: dict[str, Any],
    n: int = 1,
) -> list[list[str]]:
    from app.inference import registry as backends
    from app.inference.base import ChatMessage, GenerationRequest

    params = backends.sampling_params(
        {
            "n": n,
            "temperature": ev["temperature"],
            "max_tokens": ev["max_new_tokens"],
            "seed": ev["seed"],
        }
    )
    backend = backends.create(backend_name, path, backend_params)
    try:
        out = backend.generate(
            [GenerationRequest(messages=(ChatMessage("user", p),), params=params) for p in prompts]
        )
    finally:
        backend.close()
    return [[c.text for c in completions] for completions in out]


def _tally_wins(wins: Sequence[float]) -> dict[str, int]:
    return {
        "wins": sum(w == 1.0 for w in wins),
        "ties": sum(w == 0.5 for w in wins),
        "losses": sum(w == 0.0 for w in wins),
    }


def tally(new: Sequence[float], old: Sequence[float]) -> dict[str, int]:
    """Wins, ties and losses of `new` (for an interval around the win rate)."""
    pairs = list(zip(new, old, strict=True))
    return {
        "wins": sum(a > b for a, b in pairs),
        "ties": sum(a == b for a, b in pairs),
        "losses": sum(a < b for a, b in pairs),
    }


def rates(
    score_new: Sequence[float], score_0: Sequence[float], score_prev: Sequence[float]
) -> dict[str, Any]:
    return {
        "win_rate_vs_iteration_0": win_rate(score_new, score_0),
        "win_rate_vs_previous": win_rate(score_new, score_prev),
        "vs_iteration_0": tally(score_new, score_0),
        "vs_previous": tally(score_new, score_prev),
        "mean": fmean(score_new),
        "mean_iteration_0": fmean(score_0),
        "mean_previous": fmean(score_prev),
    }


GOLD_KEY = "gold_reward"


def judge_wins(
    judge_id: int,
    prompts: Sequence[str],
    new: Sequence[str],
    old: Sequence[str],
    gold: Sequence[tuple[float, float]] | None = None,
) -> tuple[list[float], dict[str, int]]:
    """Per prompt: 1 if the judge prefers `new`, 0 if `old`, 0.5 for a tie or an inconsistent
    pair (both orders asked); unparsed answers are left out (counted).

    With a gold reward, each pair's item metadata carries its scores under `gold_reward`
    (`{"scores": {response id: score}}`): a `simulated` judge whose truth is that metadata key
    then judges like an AlpacaFarm annotator of the hidden reward; other judges never see it."""
    from app.db import session_scope
    from app.inference import registry
    from app.judges import judging
    from app.judges.config import judge_config
    from app.judges.models import Judge
    from app.judges.service import resolve_template
    from app.projects.rules import TaskKind, TaskRules

    with session_scope() as session:
        judge = session.get_one(Judge, judge_id)
        tpl = resolve_template(session, "pairwise", None)
        template = judging.TemplateView(tpl.id, tpl.version, tpl.system, tpl.user, tpl.inconsistent)
        name, model = judge.backend, judge.model
        config = judge_config(judge.backend, judge.params)
    rules = TaskRules(
        project_id=0,
        kind=TaskKind.pairwise,
        span_labels=(),
        aspects=(),
        allow_tie=True,
        lease_seconds=600,
    )
    items = []
    for i, (p, a, b) in enumerate(zip(prompts, new, old, strict=True)):
        ids = [2 * i + 1, 2 * i + 2]
        meta: dict[str, Any] = {}
        if gold is not None:
            meta[GOLD_KEY] = {"scores": {str(ids[0]): gold[i][0], str(ids[1]): gold[i][1]}}
        items.append(judging.ItemView(i + 1, None, p, meta, ids, [None, None], [a, b]))
    backend = registry.create(name, model, config.backend)
    try:
        judged = judging.judge_chunk(
            backend,
            items,
            rules,
            "",
            template,
            config.sampling_for("pairwise"),
            judging.Costs(),
        )
    finally:
        backend.close()
    wins: list[float] = []
    counts = {"unparsed": 0, "inconsistent": 0}
    for j, item in zip(judged, items, strict=True):
        payload = j.parsed.payload or {}
        preferred = payload.get("preferred")
        if j.parsed.status == "unparsed":
            counts["unparsed"] += 1
            continue
        if j.parsed.status == "inconsistent":
            counts["inconsistent"] += 1
        wins.append(
            1.0 if preferred == item.response_ids[0] else 0.0 if preferred is not None else 0.5
        )
    return wins, counts


def evaluate(ctx: JobContext) -> dict[str, Any]:
    from app.registry.models import ModelVersion
    from app.registry.service import model_location
    from app.training.runs.models import TrainingRun

    loop_id, n = int(ctx.params["loop_id"]), int(ctx.params["iteration"])
    with ctx.transaction() as s:
        loop = s.get_one(Loop, loop_id)
        cfg = dict(loop.config)
        project_id = loop.project_id
        it = s.scalars(
            select(LoopIteration).where(
                LoopIteration.loop_id == loop_id, LoopIteration.iteration == n
            )
        ).one()
        ids = {
            "iteration_0": int(cfg["policy_model_id"]),
            "previous": it.policy_model_id,
            "new": it.new_policy_model_id or it.policy_model_id,
        }
        paths = {k: model_location(s.get_one(ModelVersion, v)) for k, v in ids.items()}
        rm_path = (
            model_location(s.get_one(ModelVersion, it.reward_model_id))
            if it.reward_model_id
            else None
        )
        rm_step = s.scalars(
            select(LoopStep).where(
                LoopStep.loop_id == loop_id,
                LoopStep.iteration == n,
                LoopStep.step == StepName.reward_model,
            )
        ).one_or_none()
        rm_metrics: dict[str, Any] = {}
        if rm_step is not None and "training_run_id" in rm_step.links:
            run = s.get(TrainingRun, int(rm_step.links["training_run_id"]))
            rm_metrics = dict(run.metrics or {}) if run is not None else {}
        prompts = eval_prompts(s, cfg)
    ev = cfg["evaluation"]
    sampling = cfg["sampling"]
    best_of = None
    if cfg["update"]["kind"] == "best_of_n":
        best_of = int((cfg["update"]["config"].get("sampling") or {}).get("n", 4))

    cache = ctx.work_dir / "samples.json"
    samples: dict[str, list[str]] = json.loads(cache.read_text()) if cache.exists() else {}
    todo = ["iteration_0", "previous", "new"]
    for k, key in enumerate(todo):
        if key in samples:
            continue
        same = next((o for o in todo[:k] if ids[o] == ids[key] and o in samples), None)
        if same is not None and not (key == "new" and best_of):
            samples[key] = samples[same]
        elif key == "new" and best_of and rm_path is not None:
            samples[key] = _best_of(sampling, paths[key], prompts, ev, best_of, rm_path, cfg)
        else:
            groups = _sample(
                sampling["backend"], sampling["backend_params"], paths[key], prompts, ev
            )
            samples[key] = [g[0] if g else "" for g in groups]
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(samples))
        ctx.progress(0.2 * (k + 1), {"phase": "sample", "policy": key})

    new, base, prev = samples["new"], samples["iteration_0"], samples["previous"]
    metrics: dict[str, Any] = {
        "iteration": n,
        "eval_prompts": len(prompts),
        "policy_model_id": ids["new"],
        "reward_model": {
            k: rm_metrics[k]
            for k in ("heldout_accuracy", "heldout_reward_margin", "heldout_pairs")
            if k in rm_metrics
        },
        "length": {
            "mean_words": fmean(words(t) for t in new),
            "mean_words_iteration_0": fmean(words(t) for t in base),
            "mean_words_previous": fmean(words(t) for t in prev),
        },
    }
    length = metrics["length"]
    length["drift_vs_iteration_0"] = (
        length["mean_words"] / length["mean_words_iteration_0"] - 1
        if length["mean_words_iteration_0"]
        else None
    )
    length["drift_vs_previous"] = (
        length["mean_words"] / length["mean_words_previous"] - 1
        if length["mean_words_previous"]
        else None
    )
    if best_of:
        metrics["best_of_n"] = best_of
    if rm_path is not None:
        scores = _rm_scores(rm_path, prompts, [new, base, prev], cfg)
        metrics["by_reward_model"] = rates(*scores)
        ctx.progress(0.75, {"phase": "reward model"})
    g: list[list[float]] = []
    if ev.get("gold_reward"):
        from app.simulate.rewards import get_reward

        gold = get_reward(ev["gold_reward"])
        g = [
            [gold.score(p, t) for p, t in zip(prompts, texts, strict=True)]
            for texts in (new, base, prev)
        ]
        metrics["by_gold_reward"] = {"reward": gold.label, **rates(*g)}
    if ev.get("judge_id"):
        judge_id = int(ev["judge_id"])
        scored = metrics.get("by_gold_reward") is not None
        pairs0 = list(zip(g[0], g[1], strict=True)) if scored else None
        pairsp = list(zip(g[0], g[2], strict=True)) if scored else None
        w0, c0 = judge_wins(judge_id, prompts, new, base, pairs0)
        wp, cp = judge_wins(judge_id, prompts, new, prev, pairsp)
        metrics["by_judge"] = {
            "judge_id": judge_id,
            "win_rate_vs_iteration_0": fmean(w0) if w0 else None,
            "win_rate_vs_previous": fmean(wp) if wp else None,
            "vs_iteration_0": _tally_wins(w0),
            "vs_previous": _tally_wins(wp),
            "judged": len(w0),
            "unparsed": c0["unparsed"] + cp["unparsed"],
            "inconsistent": c0["inconsistent"] + cp["inconsistent"],
        }
        ctx.progress(0.9, {"phase": "judge"})
    human_sample = int(ev.get("human_sample") or 0)
    human = human_eval_module() if human_sample else None
    if human_sample and human is None:
        metrics["human"] = {"skipped": "app.loops.human_eval is not installed"}
    with ctx.complete({"loop_id": loop_id, "iteration": n}) as s:
        if human is not None:
            rng = random.Random(ev["seed"] * 1000 + n)
            chosen = sorted(rng.sample(range(len(prompts)), min(human_sample, len(prompts))))
            pairs = [
                human.EvalPair(prompts[i], new[i], base[i], ids["new"], ids["iteration_0"])
                for i in chosen
            ]
            item_ids = human.create_items(
                s,
                project_id=project_id,
                loop_id=loop_id,
                iteration=n,
                pairs=pairs,
                seed=int(ev["seed"]),
            )
            metrics["human"] = {"item_ids": list(item_ids), "against": "iteration_0"}
        row = s.scalars(
            select(LoopIteration).where(
                LoopIteration.loop_id == loop_id, LoopIteration.iteration == n
            )
        ).one()
        row.metrics = metrics
    return {"loop_id": loop_id, "iteration": n}


def _rm_max_length(cfg: dict[str, Any]) -> int:
    return int(cfg["reward_model"]["config"].get("max_length", 1024))


def _rm_scores(
    rm_path: str, prompts: Sequence[str], groups: Sequence[Sequence[str]], cfg: dict[str, Any]
) -> list[list[float]]:
    from app.training.scoring import RewardScorer

    scorer = RewardScorer(rm_path, max_length=_rm_max_length(cfg))
    try:
        return [scorer.score(list(prompts), list(texts)) for texts in groups]
    finally:
        scorer.close()


def _best_of(
    sampling: dict[str, Any],
    path: str,
    prompts: Sequence[str],
    ev: dict[str, Any],
    n: int,
    rm_path: str,
    cfg: dict[str, Any],
) -> list[str]:
    """A best-of-n policy: n samples per prompt, the one the reward model scores highest."""
    groups = _sample(sampling["backend"], sampling["backend_params"], path, prompts, ev, n=n)
    from app.training.scoring import RewardScorer

    scorer = RewardScorer(rm_path, max_length=_rm_max_length(cfg))
    try:
        best: list[str] = []
        for prompt, group in zip(prompts, groups, strict=True):
            if not group:
                best.append("")
                continue
            scores = scorer.score([prompt] * len(group), list(group))
            best.append(group[max(range(len(group)), key=scores.__getitem__)])
        return best
    finally:
        scorer.close()
