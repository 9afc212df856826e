"""The loop page's plots across iterations, drawn as SVG from the stored metrics (app/quality's
chart code escapes every text it draws, hence Markup)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from app.quality.svg import Series, line_chart

# (metrics section, label) of the win-rate lines; "by_humans" comes from app/loops/human_eval.
WIN_RATES = (
    ("by_reward_model", "reward model"),
    ("by_judge", "judge"),
    ("by_gold_reward", "gold reward"),
    ("by_humans", "humans"),
)


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _get(metrics: Mapping[str, Any] | None, *path: str) -> float | None:
    node: Any = metrics or {}
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return _number(node)


def _chart(
    title: str,
    desc: str,
    labels: list[str],
    series: list[Series],
    chart_id: str,
    **scale: Any,
) -> Markup | None:
    kept = [s for s in series if any(v is not None for v in s.values)]
    if not kept:
        return None
    return Markup(line_chart(title, desc, labels, kept, chart_id=chart_id, **scale))


def loop_charts(iterations: Sequence[Mapping[str, Any]]) -> list[tuple[str, Markup]]:
    """(title, SVG) per plot that has data: win rates against iteration 0 and against the
    previous iteration, reward-model accuracy, mean length. x: iteration 1..n."""
    done = [it for it in iterations if it.get("metrics")]
    labels = [str(it["iteration"]) for it in done]
    metrics = [it["metrics"] for it in done]
    charts: list[tuple[str, Markup | None]] = []
    for against, name in (("iteration_0", "iteration 0"), ("previous", "the previous iteration")):
        series = [
            Series(label, [_get(m, section, f"win_rate_vs_{against}") for m in metrics])
            for section, label in WIN_RATES
        ]
        title = f"Win rate against {name}"
        desc = f"Share of evaluation prompts where each iteration's policy beats {name}"
        charts.append(
            (title, _chart(title, desc, labels, series, f"win-{against}", y_min=0, y_max=1))
        )
    rm = [
        Series("held-out accuracy", [_get(m, "reward_model", "heldout_accuracy") for m in metrics])
    ]
    title = "Reward model accuracy"
    desc = "Held-out pairwise accuracy of each iteration's reward model (split by item)"
    charts.append((title, _chart(title, desc, labels, rm, "rm-accuracy", y_min=0, y_max=1)))
    length = [
        Series("policy", [_get(m, "length", "mean_words") for m in metrics]),
        Series("iteration 0", [_get(m, "length", "mean_words_iteration_0") for m in metrics]),
    ]
    title = "Mean length (words)"
    desc = "Mean length of each iteration's evaluation samples, and iteration 0's"
    charts.append((title, _chart(title, desc, labels, length, "length", y_min=0)))
    return [(t, c) for t, c in charts if c is not None]
