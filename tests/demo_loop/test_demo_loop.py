"""`tandem demo loop`, small: a tiny warmed-up policy, one simulated annotator through the HTTP
API of a server the command starts, two iterations of the real loop; it prints each iteration's
gold-reward win rate against iteration 0 and writes the plot and the JSON it reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from app.cli import cli  # noqa: E402
from app.demo.seed import LOOP_PROJECT  # noqa: E402
from tests.helpers import sql, sql_value  # noqa: E402

runner = CliRunner()


def small(iterations: int, prompts: int) -> list[str]:
    """The demo at test size: a few prompts, short answers, a briefly warmed-up policy."""
    return [
        "--iterations", str(iterations), "--prompts", str(prompts),
        "--eval-prompts", str(prompts), "--annotators", "1", "--max-new-tokens", "8",
        "--samples-per-prompt", "2", "--warmup-examples", "16",
    ]  # fmt: skip


def test_the_demo_loop_runs_two_iterations_and_reports_gold_win_rates(tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    r = runner.invoke(cli, ["demo", "loop", "--seed", "3", *small(2, 4), "--json", str(out)])
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    assert report["status"] == "succeeded" and report["seed"] == 3
    loop_id = report["loop_id"]
    assert [it["iteration"] for it in report["iterations"]] == [1, 2]
    for it in report["iterations"]:
        # Four evaluation prompts compared under the gold reward, with an interval around it.
        assert it["eval_prompts"] == 4
        assert 0 <= it["low"] <= it["win_rate"] <= it["high"] <= 1
        assert it["mean_gold"] is not None and it["mean_words"] is not None
        assert f"iteration {it['iteration']}: win rate vs iteration 0 {it['win_rate']:.3f}" in (
            r.output
        )
    assert f"loop {loop_id} succeeded" in r.output
    svg = Path(report["plot"]).read_text()
    assert svg.startswith("<svg") and svg.count("<circle") == 2

    # A real loop in the demo project: every step ran through its job, the labels came from
    # the simulated annotator through the task API (human annotations), none from a judge.
    pid = sql_value("SELECT project_id FROM loops WHERE id = %s", loop_id)
    assert sql_value("SELECT name FROM projects WHERE id = %s", pid) == LOOP_PROJECT
    steps = sql("SELECT step, status FROM loop_steps WHERE loop_id = %s ORDER BY id", loop_id)
    assert len(steps) == 14 and {s for _, s in steps} <= {"succeeded", "skipped"}
    sources = sql(
        "SELECT a.source, count(*) FROM annotations a JOIN items i ON i.id = a.item_id"
        " WHERE i.project_id = %s GROUP BY 1",
        pid,
    )
    assert [s for s, _ in sources] == ["human"] and sources[0][1] >= 4
