"""Quality statistics on a million votes: seconds per statistic, with its bootstrap, in-process.

Generates (seeded, no database) what the stats job will read through the vote reader:

  * pairwise: --votes votes, overlap 3 (votes/3 items), 300 annotators of accuracy 0.55-0.95,
    20 models with lengths; one judge label per item, both orders, a probability;
  * ranking: the same number of votes on 4 responses each, a swap of two with probability 1/2;
  * span: the same number of annotations, 0-3 spans each over 4 labels, offsets near 5 anchors.

and times each public function at its default bootstrap (1,000 item resamples; 200 battle
resamples for the leaderboard). Then, each in a fresh interpreter, the import cost of the
libraries and of app.quality.svg and app.main (what the web process pays). The machine may be
shared: --repeat N keeps the fastest of N runs of each line.

    .venv/bin/python bench/quality.py                  # 1M votes, a few minutes
    .venv/bin/python bench/quality.py --votes 100000   # a smaller run

Prints numbers and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app.quality.alpha import krippendorff_alpha
from app.quality.bias import length_bias, position_consistency
from app.quality.calibration import brier_score, reliability_curve
from app.quality.gold import GoldPolicy, gold_accuracy, gold_check
from app.quality.kappa import fleiss_kappa, rater_pair_kappas, versus_majority
from app.quality.labels import majority
from app.quality.leaderboard import bradley_terry
from app.quality.rankings import ranking_agreement
from app.quality.spans import SpanTable, span_agreement
from app.quality.trust import dawid_skene


def pairwise(n_votes: int, rng: np.random.Generator) -> dict[str, Any]:
    n_items = n_votes // 3
    raters = 300
    accuracy = rng.uniform(0.55, 0.95, raters)
    truth = rng.choice(3, n_items, p=[0.45, 0.45, 0.10])
    items = np.repeat(np.arange(n_items), 3)
    # Three distinct annotators per item: a random start and two random steps below 300.
    first = rng.integers(0, raters, n_items)
    step1 = rng.integers(1, raters // 2, n_items)
    step2 = rng.integers(raters // 2, raters, n_items)
    who = np.column_stack([first, (first + step1) % raters, (first + step2) % raters]).reshape(-1)
    right = rng.random(len(items)) < accuracy[who]
    labels = np.where(right, truth[items], (truth[items] + rng.integers(1, 3, len(items))) % 3)
    models = np.array([f"model-{i:02d}" for i in range(20)])
    strength = rng.normal(0, 150, 20)
    ma = rng.integers(0, 20, n_items)
    mb = (ma + rng.integers(1, 20, n_items)) % 20
    len_a, len_b = rng.integers(50, 2000, n_items), rng.integers(50, 2000, n_items)
    p = 1 / (1 + 10 ** ((strength[mb] - strength[ma]) / 400))
    u = rng.random(len(items))
    outcome = np.where(u < p[items] * 0.9, 1.0, np.where(u > 1 - (1 - p[items]) * 0.9, 0.0, 0.5))
    judge = np.where(rng.random(n_items) < 0.8, truth, (truth + 1) % 3)
    swapped = np.where(rng.random(n_items) < 0.85, judge, (judge + 1) % 3)
    prob = np.clip(
        0.5 + (judge == 0) * 0.3 - (judge == 1) * 0.3 + rng.normal(0, 0.1, n_items), 0, 1
    )
    return {
        "items": items,
        "raters": who,
        "labels": labels,
        "truth": truth,
        "model_a": models[ma][items],
        "model_b": models[mb][items],
        "len_a": len_a[items],
        "len_b": len_b[items],
        "outcome": outcome,
        "judge": judge,
        "swapped": swapped,
        "prob": prob,
        "gold_raters": who[: n_votes // 20],
        "gold_scores": right[: n_votes // 20].astype(float),
    }


def rankings(n_votes: int, rng: np.random.Generator) -> tuple[np.ndarray, list[list[int]]]:
    items = np.repeat(np.arange(n_votes // 3), 3)
    base = (items[:, None] * 4 + np.arange(4)[None, :]).astype(np.int64)
    swap = rng.random(len(items)) < 0.5
    base[swap, 0], base[swap, 1] = base[swap, 1].copy(), base[swap, 0].copy()
    return items, base.tolist()


def spans(n_votes: int, rng: np.random.Generator) -> SpanTable:
    n_ann = n_votes
    items = np.repeat(np.arange(n_ann // 3), 3)
    raters = np.tile(np.arange(3), n_ann // 3)
    per = rng.integers(0, 4, len(items))
    owner = np.repeat(np.arange(len(items)), per)
    anchor = rng.integers(0, 5, len(owner)) * 100 + rng.integers(0, 3, len(owner))
    length = rng.integers(5, 30, len(owner))
    return SpanTable(
        items.astype(np.int64),
        raters.astype(np.int64),
        owner.astype(np.int64),
        anchor.astype(np.int64),
        (anchor + length).astype(np.int64),
        rng.integers(0, 4, len(owner)).astype(np.int64),
    )


def timed(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def import_cost(statement: str, repeat: int) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    best = float("inf")
    env = dict(os.environ)
    env.setdefault("TANDEM_SECRET_KEY", "x" * 48)
    env.setdefault("TANDEM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        best = min(best, float(out.stdout.strip().splitlines()[-1]))
    return best


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--votes", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f}", flush=True)
    t0 = time.perf_counter()
    pw = pairwise(args.votes, rng)
    rk_items, rk_orders = rankings(args.votes, rng)
    sp = spans(args.votes, rng)
    print(
        f"generated {args.votes:,} pairwise votes ({args.votes // 3:,} items), "
        f"{len(rk_orders):,} rankings, {len(sp.item):,} span annotations with "
        f"{len(sp.owner):,} spans in {time.perf_counter() - t0:.1f} s\n",
        flush=True,
    )
    n_items = args.votes // 3
    steps: list[tuple[str, int, Callable[[], object]]] = [
        ("majority per item", args.votes, lambda: majority(pw["items"], pw["labels"], 3)),
        (
            "Krippendorff alpha, nominal (package + 1000 boot)",
            args.votes,
            lambda: krippendorff_alpha(pw["items"], pw["labels"]),
        ),
        (
            "Krippendorff alpha, ordinal 1-7",
            args.votes,
            lambda: krippendorff_alpha(
                pw["items"], pw["labels"] * 3 + 1, level="ordinal", domain=range(1, 8)
            ),
        ),
        ("Fleiss kappa", args.votes, lambda: fleiss_kappa(pw["items"], pw["labels"], 3)),
        (
            "Cohen kappa, every rater pair (200 boot each)",
            args.votes,
            lambda: rater_pair_kappas(pw["items"], pw["raters"], pw["labels"], 3, min_items=20),
        ),
        (
            "judge vs human majority (agreement + kappa)",
            args.votes + n_items,
            lambda: versus_majority(np.arange(n_items), pw["judge"], pw["items"], pw["labels"], 3),
        ),
        (
            "Kendall tau among rankers",
            len(rk_orders),
            lambda: ranking_agreement(rk_items, rk_orders),
        ),
        ("span F1 pooled, exact", len(sp.item), lambda: span_agreement(sp, "exact")),
        ("span F1 pooled, overlap", len(sp.item), lambda: span_agreement(sp, "overlap")),
        (
            "Dawid-Skene (crowd-kit EM)",
            args.votes,
            lambda: dawid_skene(pw["items"], pw["raters"], pw["labels"], 3),
        ),
        (
            "gold accuracy + check",
            len(pw["gold_raters"]),
            lambda: gold_check(
                gold_accuracy(pw["gold_raters"], pw["gold_scores"]), GoldPolicy(pause_below=0.5)
            ),
        ),
        (
            "Bradley-Terry (200 boot)",
            args.votes,
            lambda: bradley_terry(pw["model_a"], pw["model_b"], pw["outcome"]),
        ),
        (
            "Bradley-Terry, length control (200 boot)",
            args.votes,
            lambda: bradley_terry(
                pw["model_a"],
                pw["model_b"],
                pw["outcome"],
                length_a=pw["len_a"],
                length_b=pw["len_b"],
            ),
        ),
        (
            "position consistency + length bias",
            n_items * 2,
            lambda: (
                position_consistency(pw["judge"], pw["swapped"]),
                length_bias(pw["len_a"][:n_items], pw["len_b"][:n_items]),
            ),
        ),
        (
            "Brier + reliability curve",
            n_items,
            lambda: (
                brier_score(pw["prob"], pw["truth"] == 0),
                reliability_curve(pw["prob"], pw["truth"] == 0),
            ),
        ),
    ]
    print(f"{'statistic':<48} {'rows':>10} {'seconds':>8} {'rows/s':>12}")
    for name, rows, fn in steps:
        seconds = timed(fn, args.repeat)
        print(f"{name:<48} {rows:>10,} {seconds:>8.2f} {rows / seconds:>12,.0f}", flush=True)

    ds = dawid_skene(pw["items"], pw["raters"], pw["labels"], 3)
    mv = majority(pw["items"], pw["labels"], 3)
    print(
        f"\nDawid-Skene labels right on {np.mean(ds.label == pw['truth']):.1%} of items, "
        f"majority vote {np.mean(mv.label == pw['truth']):.1%} (no majority: wrong) "
        f"after {ds.iterations} EM iterations"
    )

    print(f"\n{'import, fresh interpreter':<48} {'seconds':>8}")
    for statement in (
        "import numpy",
        "import scipy.stats",
        "import krippendorff",
        "import sklearn.linear_model",
        "import crowdkit.aggregation",
        "import app.quality.svg",
        "import app.quality.kappa",
        "import app.main",
    ):
        print(f"{statement:<48} {import_cost(statement, max(args.repeat, 3)):>8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
