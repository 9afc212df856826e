"""Expert iteration: sample from the policy, keep the top by a reward model, fine-tune on them.

One iteration of AlpacaFarm's expert iteration (RAFT): n samples per training prompt through
the inference backend, the `keep_top` best of each by the reward model become SFT targets for
the same policy, and the result is a new policy version. The held-out prompts (by item) then
compare it with its parent: KL, length, and the reward model's win rate and mean scores.
"""

from __future__ import annotations

import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.training.artifacts import ArtifactWriter
from app.training.best_of_n import mark_selection, score_samples, selection_metrics
from app.training.config import ExpertIterationConfig
from app.training.run_types import BackendFactory
from app.training.sampling import sample_once, sampling_speed, snapshot_prompts
from app.training.session import RunSession, TrainingResult
from app.training.sft import sft_rows, train_sft
from app.training.snapshot import SAMPLES, Snapshot, held_out_keys


def run_expert_iteration(
    config: ExpertIterationConfig,
    snapshot: Snapshot,
    session: RunSession,
    backends: BackendFactory,
) -> TrainingResult:
    prompts = snapshot_prompts(snapshot)
    held_items = held_out_keys([p.item_id for p in prompts], config.eval_fraction, config.seed)
    train_prompts = [p for p in prompts if p.item_id not in held_items]
    train_prompts = train_prompts[: config.sampling.max_prompts]
    eval_prompts = [p.prompt for p in prompts if p.item_id in held_items]

    reporter = session.reporter
    reporter.phase("sample", 0.0, 0.4)
    samples = sample_once(
        lambda: backends(config.base_model, config.sampling),
        train_prompts,
        config.sampling,
        seed=config.seed,
        reporter=reporter,
        work_dir=session.ctx.work_dir,
    )
    reporter.phase("score", 0.4, 0.45)
    scored = mark_selection(
        score_samples(samples, config.reward_model, config.max_length, reporter),
        config.keep_top,
        config.seed,
    )
    kept = scored.filter(scored.column("best"))
    selection = selection_metrics(scored)
    metrics = {
        "n": config.sampling.n,
        "keep_top": config.keep_top,
        "sampled_prompts": selection["prompts"],
        "parent_mean_score_sampled": selection["mean_score_all"],
        "mean_score_kept": pc.mean(kept.column("score")).as_py(),
        "sampling": sampling_speed(samples),
    }
    evaluation = config.evaluation
    if evaluation.reward_model is None:
        # "Scores higher under the reward model" means the one that chose the targets.
        evaluation = evaluation.model_copy(update={"reward_model": config.reward_model})

    def write(writer: ArtifactWriter) -> None:
        pq.write_table(scored.replace_schema_metadata(None), writer.path(SAMPLES))

    return train_sft(
        config,
        evaluation,
        sft_rows(kept.select(["prompt", "completion"])),
        [],
        eval_prompts,
        session,
        record=config,
        inputs={
            "snapshot": snapshot.provenance(),
            "parent": config.base_model,
            "reward_model": config.reward_model,
        },
        kind="expert_iteration",
        phase=(0.45, 0.85),
        metrics=metrics,
        write=write,
    )
