"""What the run pages draw and tabulate from stored metrics: loss curves as SVG, flat numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from app.quality.svg import Series, bar_chart, line_chart

# Metrics that are curves or tables, not one number each.
NOT_SCALAR = {"loss_curve", "labels"}


def scalar_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float | int | str]:
    """Numbers (and short strings) of a metrics dict, nested dicts as dotted names, one level."""
    out: dict[str, float | int | str] = {}
    for key, value in (metrics or {}).items():
        if key in NOT_SCALAR:
            continue
        if isinstance(value, bool):
            out[key] = str(value).lower()
        elif isinstance(value, int | float) or (isinstance(value, str) and len(value) <= 80):
            out[key] = value
        elif isinstance(value, dict):
            for inner, v in value.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    out[f"{key}.{inner}"] = v
                elif isinstance(v, dict):
                    for leaf, w in v.items():
                        if isinstance(w, int | float) and not isinstance(w, bool):
                            out[f"{key}.{inner}.{leaf}"] = w
    return out


def show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def loss_chart(curves: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], chart_id: str) -> Markup:
    """One line per run (name, loss curve points {step, loss}), over the union of their steps."""
    steps = sorted({int(p["step"]) for _, curve in curves for p in curve if "step" in p})
    series = []
    for name, curve in curves:
        by_step = {int(p["step"]): p.get("loss") for p in curve if "step" in p}
        values = [by_step.get(s) for s in steps]
        series.append(
            Series(name, [float(v) if isinstance(v, int | float) else None for v in values])
        )
    svg = line_chart(
        "Training loss",
        "Loss by training step" + (" for each run" if len(curves) > 1 else ""),
        [str(s) for s in steps],
        series,
        y_label="loss",
        chart_id=chart_id,
    )
    return Markup(svg)


# The numbers a comparison is usually about, drawn as bars (a dotted name matches its suffix).
HEADLINES = (
    ("heldout_accuracy", "Held-out pairwise accuracy (split by item)"),
    ("heldout_reward_margin", "Held-out reward margin"),
    ("heldout_reward_accuracy", "Held-out implicit reward accuracy"),
    ("win_rate_vs_parent", "Win rate against the parent by the reward model"),
    ("judge_win_rate", "Win rate against the parent by the judge (both orders)"),
    ("kl_to_parent", "KL to the parent"),
    ("mean_length", "Mean response length (tokens)"),
)


def _find(numbers: Mapping[str, Any], name: str) -> float | None:
    for key, value in numbers.items():
        if (key == name or key.endswith("." + name)) and isinstance(value, int | float):
            return float(value)
    return None


def headline_charts(runs: Sequence[tuple[str, Mapping[str, Any]]]) -> list[tuple[str, Markup]]:
    """(title, bar chart) per headline metric that at least one run has, one bar per run."""
    charts = []
    for name, title in HEADLINES:
        bars = [(label, _find(numbers, name)) for label, numbers in runs]
        if any(v is not None for _, v in bars):
            desc = f"{name} of each compared run"
            svg = bar_chart(title, desc, bars, chart_id=f"bars-{name.replace('_', '-')}")
            charts.append((title, Markup(svg)))  # svg.py escapes every text it draws
    return charts
