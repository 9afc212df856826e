"""A judge's win rate of one policy's samples against another's (app.training.policy_eval):
asked in both orders, through the judges' own pairwise template and parsing, and refused
through the API when the judge is not usable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.simulate.rewards import get_reward
from app.training.config import JudgeSpec, JudgeTemplateSpec
from app.training.policy_eval import judge_win_rate
from tests.helpers import Actor
from tests.judges.helpers import simulated

PROMPTS = ["How do I water a cactus?", "Tell me about the moon.", "How do I bake bread?"]
GOOD = [
    "Please water a cactus rarely: once every two weeks in summer, thank you.",
    "The moon orbits the earth; please look at the moon tonight, thank you.",
    "To bake bread, please mix flour, water and yeast, then bake the bread, thank you.",
]
BAD = ["Go away, idiot.", "No.", "Whatever, stupid."]


def _spec(**truth: Any) -> JudgeSpec:
    return JudgeSpec(
        id=7,
        name="gold",
        backend="simulated",
        model="sim",
        params={"truth": truth, "accuracy": 1.0},
        template=JudgeTemplateSpec(
            id=1,
            version=1,
            user="{guidelines}\n{prompt}\nA: {response_a}\nB: {response_b}\nAnswer {label_a} or {label_b}.",
        ),
    )


def test_a_gold_reward_judge_prefers_what_the_gold_reward_scores_higher() -> None:
    reward = get_reward("on_topic")
    assert all(
        reward.score(p, g) > reward.score(p, b) for p, g, b in zip(PROMPTS, GOOD, BAD, strict=True)
    )
    better = judge_win_rate(_spec(gold_reward="on_topic"), PROMPTS, GOOD, BAD, seed=1)
    assert better["judge_win_rate"] == 1.0 and better["judge_pairs"] == 3
    assert (better["judge_unparsed"], better["judge_inconsistent"], better["judge_ties"]) == (
        0,
        0,
        0,
    )
    assert better["judge"] == {
        "id": 7, "name": "gold", "model": "simulated:0", "template_id": 1, "template_version": 1
    }  # fmt: skip
    worse = judge_win_rate(_spec(gold_reward="on_topic"), PROMPTS, BAD, GOOD, seed=1)
    assert worse["judge_win_rate"] == 0.0


def test_chat_prompts_are_shown_to_the_judge_as_their_messages() -> None:
    chats = [[{"role": "user", "content": p}] for p in PROMPTS]
    out = judge_win_rate(_spec(gold_reward="on_topic"), chats, GOOD, BAD)
    assert out["judge_win_rate"] == 1.0


def test_an_unknown_gold_reward_is_refused_when_the_judge_is_made(admin: Actor) -> None:
    r = admin.client.post(
        "/api/v1/judges",
        json={"name": "x", "backend": "simulated", "model": "m",
              "params": {"truth": {"gold_reward": "nope"}}},
    )  # fmt: skip
    assert r.status_code == 422 and "Unknown reward 'nope'" in r.text


@pytest.mark.parametrize(
    ("evaluation", "needle"),
    [
        ({"judge_id": 10**9}, "judge 1000000000 does not exist"),
        ({"judge": {"backend": "simulated"}}, "set config.evaluation.judge_id"),
        ({"judge_id": "disabled"}, "is disabled"),
    ],
)
def test_runs_refuse_a_judge_they_cannot_use(
    evaluation: dict[str, Any],
    needle: str,
    admin: Actor,
    researcher: Actor,
    project_factory: Callable[..., dict[str, Any]],
) -> None:
    from tests.training.runs_helpers import counts
    from tests.world import model_folder

    if evaluation.get("judge_id") == "disabled":
        judge = simulated(admin, name="off", truth={"gold_reward": "on_topic"})
        admin.client.patch(f"/api/v1/judges/{judge['id']}", json={"enabled": False})
        evaluation = {"judge_id": judge["id"]}
    base = admin.client.post("/api/v1/models", json={"name": "b", "path": model_folder()}).json()
    pid = project_factory("pairwise", items=2)["id"]
    before = counts()
    r = researcher.client.post(
        "/api/v1/training-runs",
        json={"kind": "dpo", "project_id": pid, "base_model_id": base["id"],
              "config": {"evaluation": evaluation}},
    )  # fmt: skip
    assert r.status_code == 422 and needle in r.text, r.text
    assert counts() == before
