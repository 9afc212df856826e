"""The dashboard's charts, drawn from a stored stats snapshot with `svg.py` (plain Python).

Each chart is an SVG string whose every text was escaped by `svg.py`, so it is handed to the
template as Markup; nothing else here is marked safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from app.quality import svg

# Chart labels stay under svg.MAX_LABEL_CHARS so that nothing is cut on a phone.
KEY_NAMES = {
    "alpha_nominal": "alpha, humans",
    "alpha_ordinal": "alpha, humans",
    "fleiss_kappa": "Fleiss kappa, humans",
    "kendall_tau": "tau, humans",
    "span_f1_exact": "F1 exact, humans",
    "span_f1_overlap": "F1 overlap, humans",
}


def _judge(row: Mapping[str, Any]) -> str:
    return str(row.get("name") or f"judge {row['judge_id']}")


def _person(uid: int, emails: Mapping[int, str]) -> str:
    # The local part of the email: short enough for a chart label.
    return emails.get(uid, f"user {uid}").split("@")[0]


def charts(stats: Mapping[str, Any], emails: Mapping[int, str]) -> dict[str, Markup]:
    out: dict[str, str] = {}
    progress = stats.get("progress") or {"days": [], "human": [], "ai": [], "cumulative": []}
    days = [d[5:] for d in progress["days"]]  # MM-DD: short enough for a phone
    out["progress"] = svg.line_chart(
        "Annotations over time",
        "Cumulative annotations per day (UTC), all sources.",
        days,
        [svg.Series("total", progress["cumulative"])],
        y_label="annotations",
        y_min=0,
        chart_id="chart-progress",
    )
    out["per_day"] = svg.line_chart(
        "Annotations per day",
        "Human and AI annotations made each day (UTC).",
        days,
        [svg.Series("human", progress["human"]), svg.Series("AI", progress["ai"])],
        y_min=0,
        chart_id="chart-per-day",
    )
    annotators = stats.get("annotators") or []
    top = annotators[:20]
    out["throughput"] = svg.bar_chart(
        "Throughput per annotator",
        "Annotations per annotator (the 20 most active).",
        [(_person(a["user_id"], emails), a["annotations"]) for a in top],
        chart_id="chart-throughput",
    )
    out["time"] = svg.bar_chart(
        "Median time per task",
        "Median seconds per submitted task, per annotator.",
        [
            (
                _person(a["user_id"], emails),
                None if a["time_p50_ms"] is None else a["time_p50_ms"] / 1000,
            )
            for a in top
        ],
        unit=" s",
        chart_id="chart-time",
    )
    rows = [
        svg.IntervalRow(KEY_NAMES.get(a["key"], a["name"]), a["value"], a["low"], a["high"])
        for a in stats.get("agreement") or []
    ]
    for j in stats.get("judges") or []:
        e = j.get("agreement") or {}
        rows.append(svg.IntervalRow(_judge(j), e.get("value"), e.get("low"), e.get("high")))
    out["agreement"] = svg.interval_chart(
        "Agreement with 95% intervals",
        "Human-human agreement, and each judge against the humans; bootstrap over items.",
        rows,
        reference=0.0,
        x_max=1.0,
        chart_id="chart-agreement",
    )
    out["balance"] = svg.bar_chart(
        "Label balance",
        "How often each label was given by humans.",
        [(b["label"], b["count"]) for b in stats.get("label_balance") or []],
        chart_id="chart-balance",
    )
    bias = stats.get("bias")
    if bias:
        brows: list[svg.IntervalRow] = []
        for who, block in [("humans", bias["humans"])] + [
            (_judge(j), j) for j in bias.get("judges") or []
        ]:
            for key, label in (
                ("first_position", "first"),
                ("longer_wins", "longer"),
            ):
                e = block.get(key) or {}
                brows.append(
                    svg.IntervalRow(f"{who}: {label}", e.get("value"), e.get("low"), e.get("high"))
                )
        out["bias"] = svg.interval_chart(
            "Position and length bias",
            "Share of decisive votes for the response shown first, and for the longer one;"
            " 0.5 means no bias.",
            brows,
            reference=0.5,
            x_min=0.0,
            x_max=1.0,
            chart_id="chart-bias",
        )
    gold_rows = [
        svg.IntervalRow(
            _person(a["user_id"], emails),
            a["gold"]["accuracy"],
            a["gold"]["low"],
            a["gold"]["high"],
        )
        for a in annotators
        if a.get("gold")
    ]
    policy = stats.get("gold_policy") or {}
    out["gold"] = svg.interval_chart(
        "Gold accuracy",
        "Accuracy on gold items per annotator with Wilson 95% intervals; the dashed line is the"
        " warning threshold.",
        gold_rows[:30],
        reference=policy.get("warn_below"),
        x_min=0.0,
        x_max=1.0,
        chart_id="chart-gold",
    )
    return {k: Markup(v) for k, v in out.items()}


BOARD_SOURCES = {"all": "all votes", "human": "human votes", "ai": "AI judges' votes"}


def leaderboard_chart(board: Mapping[str, Any]) -> Markup:
    rows = [svg.IntervalRow(r["model"], r["score"], r["low"], r["high"]) for r in board["ratings"]]
    votes = BOARD_SOURCES[board.get("source", "all")]
    control = ", length-controlled" if board.get("length_control") else ""
    return Markup(
        svg.interval_chart(
            "Model leaderboard",
            "Bradley-Terry scores on the Elo scale with 95% bootstrap intervals"
            f" ({votes}{control}).",
            rows,
            reference=1000.0,
            chart_id="chart-leaderboard",
        )
    )
