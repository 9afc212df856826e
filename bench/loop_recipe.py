"""The CPU demo's recipe, measured with direct calls to the training code (no server, no jobs).

Per iteration: the current policy samples two answers per new prompt; a panel of simulated
annotators that follow a hidden gold reward (RewardOracle) picks the better one; the pairs so far
become a preference snapshot (conversational style, as the loop's export writes it); a reward
model trains on it; expert iteration samples n answers per prompt from the policy, keeps the best
by that reward model and fine-tunes the policy on them (or, with `--update dpo`, DPO on the
snapshot's pairs with the iteration's policy as the reference). Each new policy is compared with
iteration 0 under the gold reward on held-out prompts (win rate with a 95% interval).

    PYTHONPATH=. .venv/bin/python bench/loop_recipe.py --iterations 2 --seed 0
    PYTHONPATH=. .venv/bin/python bench/loop_recipe.py --update dpo --lr 1e-3 --epochs 4

Not the loop: one annotator labels each pair here (the demo takes the majority of three), and
the seeds of sampling differ, so a seed's numbers differ from `tandem demo loop`'s (README has
both; the default recipe passed 4 of seeds 0-4 here, 3 through the loop).

Prints one JSON line per iteration and a summary; the numbers go to README (the demo section).
The defaults are the demo's recipe (app/loops/demo.py DemoSettings); README's first measurement
used --prompts 48 --accuracy 0.85.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def write_preference_snapshot(folder: Path, rows: list[dict[str, Any]]) -> Path:
    """A snapshot folder as app.exports writes it (data file + manifest.json)."""
    from app.exports.columns import columns
    from app.exports.schemas import Format, Schema, Style
    from app.exports.writers import HashingSink, make_writer

    folder.mkdir(parents=True, exist_ok=True)
    cols = columns(Schema.preference, Style.conversational)
    full = [{c.name: row.get(c.name) for c in cols} for row in rows]
    name = "preference.parquet"
    with (folder / name).open("wb") as f:
        sink = HashingSink(f)
        writer = make_writer(Format.parquet, Schema.preference, Style.conversational, sink)
        writer.write(full)
        writer.close()
    manifest = {
        "export_id": 0,
        "project": {"id": 0, "name": "recipe", "kind": "pairwise"},
        "schema": "preference",
        "format": "parquet",
        "options": {"schema": "preference", "format": "parquet", "style": "conversational"},
        "file": {"name": name, "bytes": sink.bytes, "sha256": sink.sha256},
        "snapshot": {"highest_annotation_id": len(rows)},
        "counts": {"rows": len(rows)},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompts", type=int, default=96, help="new prompts per iteration")
    parser.add_argument("--eval-prompts", type=int, default=128)
    parser.add_argument("--n", type=int, default=4, help="expert iteration samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--update", choices=["expert_iteration", "dpo"], default="expert_iteration")
    parser.add_argument("--keep-top", type=int, default=1, help="expert iteration")
    parser.add_argument("--beta", type=float, default=0.1, help="dpo")
    parser.add_argument("--loss-type", default="sigmoid", help="dpo")
    parser.add_argument("--label-smoothing", type=float, default=0.0, help="dpo")
    parser.add_argument("--batch-size", type=int, default=16, help="the update's")
    parser.add_argument("--reward", default="polite_concise")
    parser.add_argument("--accuracy", type=float, default=0.95)
    parser.add_argument("--dir", default="/tmp/tandem-loop-recipe")
    args = parser.parse_args()

    from app.simulate.behaviour import AnnotatorConfig, Panel
    from app.simulate.gold_eval import compare_texts, sample_texts
    from app.simulate.oracle import RewardOracle
    from app.simulate.rewards import get_reward
    from app.simulate.tiny_policy import build_tiny_policy, demo_prompts
    from app.training.config import (
        DpoConfig,
        ExpertIterationConfig,
        PolicyEval,
        RewardModelConfig,
        Sampling,
    )
    from app.training.file_context import FileContext
    from app.training.run import run_training
    from app.training.runs.jobs import open_backend

    def context(name: str) -> FileContext:
        work = root / name
        work.mkdir(parents=True, exist_ok=True)
        return FileContext(work)

    root = Path(args.dir) / f"seed-{args.seed}"
    root.mkdir(parents=True, exist_ok=True)
    reward = get_reward(args.reward)
    oracle = RewardOracle(reward)
    panel = Panel.calibrate(
        AnnotatorConfig(accuracy=args.accuracy, seed=args.seed), oracle.facts(), 3
    )
    started = time.perf_counter()
    built = build_tiny_policy(root / "policy-0", seed=args.seed)
    print(json.dumps({"step": "base", **built}), flush=True)
    eval_prompts = demo_prompts(args.eval_prompts, args.seed, offset=100_000)
    base_texts = sample_texts(
        root / "policy-0", eval_prompts, seed=args.seed + 7, max_new_tokens=args.max_new_tokens
    )
    policy = root / "policy-0"
    rows: list[dict[str, Any]] = []
    results = []
    for it in range(1, args.iterations + 1):
        t0 = time.perf_counter()
        prompts = demo_prompts(args.prompts, args.seed, offset=it * 1000)
        msgs = [[{"role": "user", "content": p}] for p in prompts]
        from app.training.config import Precision
        from app.training.generation import sample
        from app.training.loading import load_causal_lm, load_tokenizer, resolve_model

        tok = load_tokenizer(resolve_model(str(policy)))
        model = load_causal_lm(str(policy), tok, Precision.fp32)
        groups = sample(
            model, tok, msgs, n=2, max_new_tokens=args.max_new_tokens, seed=args.seed + it
        )
        t_gen = time.perf_counter() - t0
        agree = 0
        for i, (p, g) in enumerate(zip(prompts, groups, strict=True)):
            a, b = g[0].text, g[1].text
            if not a.strip() or not b.strip():
                continue
            item = {"prompt": p, "responses": [{"id": 1, "text": a}, {"id": 2, "text": b}]}
            know = oracle.know(item)
            assert know is not None
            d = panel.decide(i % 3, f"{it}-{i}", [1, 2], know)
            chosen, rejected = (a, b) if d.order[0] == 1 else (b, a)
            agree += d.order[0] == know.order[0]
            rows.append(
                {
                    "prompt": [{"role": "user", "content": p}],
                    "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                    "item_id": len(rows) + 1,
                    "external_id": f"r-{it}-{i}",
                    "is_gold": False,
                    "metadata": "{}",
                    "kind": "pairwise",
                    "aggregation": "majority",
                    "n_votes": 1,
                    "votes_chosen": 1,
                    "votes_rejected": 0,
                    "votes_tie": 0,
                    "agreement": 1.0,
                }
            )
        snap = write_preference_snapshot(root / f"snap-{it}", rows)
        t1 = time.perf_counter()
        rm_cfg = RewardModelConfig(
            base_model=str(root / "policy-0"),
            epochs=4,
            learning_rate=2e-3,
            batch_size=16,
            eval_fraction=0.15,
            checkpoint_every=10_000,
            max_length=160,
            seed=args.seed,
        )
        rm_dir = root / f"rm-{it}"
        rm = run_training(rm_cfg, snap, rm_dir, context(f"rm-{it}-work"), report_every_s=60)
        t2 = time.perf_counter()
        update_cfg: DpoConfig | ExpertIterationConfig
        common: dict[str, Any] = {
            "base_model": str(policy),
            "epochs": args.epochs,
            "learning_rate": args.lr,
            "batch_size": args.batch_size,
            "eval_fraction": 0.0,
            "checkpoint_every": 10_000,
            "max_length": 160,
            "seed": args.seed + it,
            "evaluation": PolicyEval(prompts=0),
        }
        if args.update == "dpo":
            update_cfg = DpoConfig(
                **common,
                beta=args.beta,
                loss_type=args.loss_type,
                label_smoothing=args.label_smoothing,
            )
        else:
            update_cfg = ExpertIterationConfig(
                **common,
                reward_model=str(rm_dir),
                keep_top=args.keep_top,
                sampling=Sampling(
                    n=args.n, max_new_tokens=args.max_new_tokens, prompts_per_batch=16
                ),
            )
        new_policy = root / f"policy-{it}"
        ei = run_training(
            update_cfg,
            snap,
            new_policy,
            context(f"ei-{it}-work"),
            backends=open_backend,
            report_every_s=60,
        )
        t3 = time.perf_counter()
        texts = sample_texts(
            new_policy, eval_prompts, seed=args.seed + 7, max_new_tokens=args.max_new_tokens
        )
        gold = compare_texts(reward, eval_prompts, texts, base_texts)
        t4 = time.perf_counter()
        out = {
            "iteration": it,
            "pairs": len(rows),
            "label_matches_gold": agree / max(1, len(prompts)),
            "rm_accuracy": rm.metrics.get("heldout_accuracy"),
            "mean_score_kept": ei.metrics.get("mean_score_kept"),
            "parent_mean_score_sampled": ei.metrics.get("parent_mean_score_sampled"),
            **gold.as_dict(),
            "seconds": {
                "generate": round(t1 - t0 - (0), 1),
                "gen_only": round(t_gen, 1),
                "rm": round(t2 - t1, 1),
                "update": round(t3 - t2, 1),
                "eval": round(t4 - t3, 1),
            },
        }
        results.append(out)
        print(json.dumps(out), flush=True)
        policy = new_policy
    print(
        json.dumps(
            {
                "seed": args.seed,
                "total_s": round(time.perf_counter() - started, 1),
                "win_rates": [r["win_rate"] for r in results],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
