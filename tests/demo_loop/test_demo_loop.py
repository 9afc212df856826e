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


@pytest.mark.parametrize("update", ["dpo", "expert_iteration"])
def test_the_demo_loop_body_is_a_valid_loop_with_either_update(update: str) -> None:
    from app.loops.demo import UPDATE_DEFAULTS, DemoSettings
    from app.loops.schemas import LoopCreate
    from app.training.config import parse_config

    settings = DemoSettings(seed=2, update=update)  # type: ignore[arg-type]
    body = LoopCreate.model_validate(settings.loop_body(project_id=1, policy_id=1))
    assert body.update.kind.value == update
    paths = {"base_model": "x"} | ({"reward_model": "y"} if update == "expert_iteration" else {})
    config = parse_config({**body.update.config, "kind": update, **paths})
    lr, epochs = UPDATE_DEFAULTS[update]
    assert (config.learning_rate, config.epochs) == (lr, epochs)  # type: ignore[union-attr]
    assert update in settings.update_label()
    if update == "dpo":
        assert (config.beta, config.label_smoothing) == (0.1, 0.0)  # type: ignore[union-attr]
    # The options win over the update's defaults.
    tuned = DemoSettings(update=update, learning_rate=2e-3, epochs=3)  # type: ignore[arg-type]
    tuned_config = tuned.update_spec({})["config"]
    assert (tuned_config["learning_rate"], tuned_config["epochs"]) == (2e-3, 3)


@pytest.mark.parametrize(
    ("args", "label", "kind"),
    [
        (["--beta", "0.3"], "update dpo (lr 0.001, 4 epochs, beta 0.3, label smoothing 0)", "dpo"),
        (
            ["--update", "expert_iteration"],
            "update expert_iteration (lr 0.003, 2 epochs",
            "expert_iteration",
        ),
    ],
)
def test_the_demo_loop_runs_with_either_update(
    tmp_path: Path, args: list[str], label: str, kind: str
) -> None:
    out = tmp_path / "demo.json"
    r = runner.invoke(cli, ["demo", "loop", "--seed", "4", *small(1, 4), *args, "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert label in r.output
    report = json.loads(out.read_text())
    assert report["status"] == "succeeded" and len(report["iterations"]) == 1
    ran = sql_value(
        "SELECT r.kind FROM training_runs r JOIN loop_steps s"
        " ON s.links->>'training_run_id' = r.id::text"
        " WHERE s.loop_id = %s AND s.step = 'update'",
        report["loop_id"],
    )
    assert ran == kind


def test_the_demo_loop_refuses_an_unknown_update() -> None:
    r = runner.invoke(cli, ["demo", "loop", "--update", "ppo"])
    assert r.exit_code != 0 and "--update" in r.output


def test_one_demo_loop_at_a_time_in_the_demo_project(tmp_path: Path) -> None:
    """Its simulated annotators work the whole project: a second run beside an active loop (or
    a second queued button press) is refused with the reason, and nothing starts."""
    from app.auth.models import Role
    from app.auth.service import Principal
    from app.db import session_scope
    from app.errors import Conflict
    from app.loops.demo_job import DemoLoopStart, request_demo_loop

    r = runner.invoke(cli, ["demo", "loop", "--seed", "5", *small(1, 2)])
    assert r.exit_code == 0, r.output
    pid, owner = sql("SELECT id, created_by FROM projects WHERE name = %s", LOOP_PROJECT)[0]
    loops = sql_value("SELECT count(*) FROM loops WHERE project_id = %s", pid)
    loop_id = sql_value("SELECT max(id) FROM loops WHERE project_id = %s", pid)
    sql("UPDATE loops SET status = 'running' WHERE id = %s", loop_id)  # as if still going
    try:
        r = runner.invoke(cli, ["demo", "loop", "--seed", "6", *small(1, 2)])
        assert r.exit_code != 0
        assert f"Loop {loop_id} is still running in the demo project" in r.output
        assert sql_value("SELECT count(*) FROM loops WHERE project_id = %s", pid) == loops
        researcher = Principal(id=owner, email="", role=Role.admin, token="")
        with (
            pytest.raises(Conflict, match=f"Loop {loop_id} is still running"),
            session_scope() as s,
        ):
            request_demo_loop(s, researcher, pid, DemoLoopStart())
    finally:
        sql("UPDATE loops SET status = 'succeeded' WHERE id = %s", loop_id)

    jobs = "SELECT count(*) FROM jobs WHERE kind = 'loops.demo' AND project_id = %s"
    queued = sql_value(jobs, pid)
    with session_scope() as s:
        job = request_demo_loop(s, researcher, pid, DemoLoopStart(seed=7))
    with pytest.raises(Conflict, match=f"already queued \\(job {job.id}\\)"), session_scope() as s:
        request_demo_loop(s, researcher, pid, DemoLoopStart(seed=8))
    assert sql_value(jobs, pid) == queued + 1
    sql("UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE id = %s", job.id)
