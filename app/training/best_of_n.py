"""Best-of-n: sample n responses per prompt, score them with a reward model, keep the best.

What it reports is the selection's worth: the mean reward-model score of the kept samples
against a random pick among the same samples (one seeded pick per prompt), and the win rate of
best over random. The artifacts folder holds every sample with its score (`samples.parquet`,
`best` marks the kept one), which is also what SFT on `samples` trains from.
"""

from __future__ import annotations

import random
from statistics import fmean
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.training.artifacts import ArtifactWriter
from app.training.config import BestOfNConfig
from app.training.policy_eval import response_of, win_rate
from app.training.reporter import Reporter
from app.training.run_types import BackendFactory
from app.training.sampling import sample_once, sampling_speed, snapshot_prompts
from app.training.scoring import RewardScorer
from app.training.session import RunSession, TrainingResult
from app.training.snapshot import SAMPLES, Snapshot


def score_samples(
    table: pa.Table, reward_model: str, max_length: int, reporter: Reporter
) -> pa.Table:
    """The samples with a `score` column from the reward model."""
    scorer = RewardScorer(reward_model, max_length=max_length)
    try:
        prompts = table.column("prompt").to_pylist()
        texts = table.column("completion").to_pylist()
        scores: list[float] = []
        step = 256
        for start in range(0, len(texts), step):
            ps, ts = prompts[start : start + step], texts[start : start + step]
            scores += scorer.score(ps, [response_of(p, t) for p, t in zip(ps, ts, strict=True)])
            reporter.report(min(1.0, (start + step) / len(texts)))
            reporter.raise_if_cancelled()
    finally:
        scorer.close()
    return table.append_column("score", pa.array(scores, pa.float64()))


def mark_selection(table: pa.Table, keep_top: int, seed: int) -> pa.Table:
    """`best`: the keep_top highest-scored samples of each prompt (the earlier on ties);
    `random_pick`: one seeded uniform pick per prompt, the baseline best-of-n is measured by."""
    by_prompt: dict[int, list[tuple[float, int]]] = {}
    for row, (pid, score) in enumerate(
        zip(table.column("prompt_id").to_pylist(), table.column("score").to_pylist(), strict=True)
    ):
        by_prompt.setdefault(pid, []).append((score, row))
    best = [False] * table.num_rows
    picked = [False] * table.num_rows
    rng = random.Random(seed)
    for pid in sorted(by_prompt):
        group = by_prompt[pid]
        for _, row in sorted(group, key=lambda sr: (-sr[0], sr[1]))[:keep_top]:
            best[row] = True
        picked[rng.choice(group)[1]] = True
    return table.append_column("best", pa.array(best)).append_column(
        "random_pick", pa.array(picked)
    )


def selection_metrics(table: pa.Table) -> dict[str, Any]:
    best = table.filter(table.column("best"))
    rand = table.filter(table.column("random_pick"))
    best_by = dict(
        zip(best.column("prompt_id").to_pylist(), best.column("score").to_pylist(), strict=True)
    )
    rand_by = dict(
        zip(rand.column("prompt_id").to_pylist(), rand.column("score").to_pylist(), strict=True)
    )
    ids = sorted(rand_by)
    mean_best = fmean(best.column("score").to_pylist())
    mean_random = fmean(rand.column("score").to_pylist())
    return {
        "prompts": len(ids),
        "samples": table.num_rows,
        "mean_score_best": mean_best,
        "mean_score_random": mean_random,
        "mean_score_all": pc.mean(table.column("score")).as_py(),
        "score_gain_over_random": mean_best - mean_random,
        "best_win_rate_vs_random": win_rate([best_by[i] for i in ids], [rand_by[i] for i in ids]),
        "mean_length_best": fmean(best.column("tokens_out").to_pylist()),
        "mean_length_all": pc.mean(table.column("tokens_out")).as_py(),
    }


def run_best_of_n(
    config: BestOfNConfig, snapshot: Snapshot, session: RunSession, backends: BackendFactory
) -> TrainingResult:
    prompts = snapshot_prompts(snapshot)[: config.sampling.max_prompts]
    reporter = session.reporter
    reporter.phase("sample", 0.0, 0.8)
    samples = sample_once(
        lambda: backends(config.policy, config.sampling),
        prompts,
        config.sampling,
        seed=config.seed,
        reporter=reporter,
        work_dir=session.ctx.work_dir,
    )
    reporter.phase("score", 0.8, 0.97)
    scored = mark_selection(
        score_samples(samples, config.reward_model, config.max_length, reporter), 1, config.seed
    )
    metrics = {
        "n": config.sampling.n,
        **selection_metrics(scored),
        "sampling": sampling_speed(samples),
    }

    def write(writer: ArtifactWriter) -> None:
        pq.write_table(scored.replace_schema_metadata(None), writer.path(SAMPLES))

    return session.publish(
        kind="best_of_n",
        config=config,
        inputs={
            "snapshot": snapshot.provenance(),
            "policy": config.policy,
            "reward_model": config.reward_model,
        },
        metrics=metrics,
        write=write,
    )
