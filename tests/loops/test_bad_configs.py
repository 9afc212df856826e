"""Bad loop definitions: a 422 (or 403/404) naming the problem, and nothing written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import Actor
from tests.world import loop_body, model_folder, row_counts

ProjectFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def base(admin: Actor) -> int:
    r = admin.client.post("/api/v1/models", json={"name": "fake", "path": model_folder()})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of body with the dotted path set (or removed, for value ...)."""
    import copy

    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return out


CASES: list[tuple[str, Any, int, str]] = [
    ("surprise", 1, 422, "surprise"),
    ("iterations", 0, 422, "iterations"),
    ("iterations", ..., 422, "iterations"),
    ("prompts", [], 422, "prompts"),
    ("prompts_per_iteration", 5, 422, "more than the 2 prompts"),
    ("update.kind", "ppo", 422, "update.kind"),
    ("update.config.max_stepz", 2, 422, "update.config"),
    ("update.config.base_model", "/tmp/x", 422, "registered models"),
    ("reward_model.config.learning_rate", -1, 422, "reward_model.config"),
    ("reward_model.base_model_id", 999_999_999, 422, "reward_model.base_model_id"),
    ("policy_model_id", 999_999_999, 422, "policy_model_id"),
    ("sampling.params.n", 4, 422, "sampling.params.n"),
    ("sampling.params.temperature", "hot", 422, "temperature"),
    ("sampling.backend", "nope", 422, "nope"),
    ("sampling.responses_per_item", 3, 422, "ranking projects"),
    ("stop.label_deadline_seconds", 0, 422, "label_deadline_seconds"),
    ("stop.at_deadline", "maybe", 422, "at_deadline"),
    ("evaluation.gold_reward", "kindness", 422, "evaluation.gold_reward"),
    ("evaluation.judge_id", 999_999_999, 422, "evaluation.judge_id"),
    ("evaluation.extra", 1, 422, "extra"),
    ("judge_ids", [999_999_999], 422, "999999999"),
    ("routing_policy_id", 999_999_999, 403, "admin"),
    ("prompt_set_id", 999_999_999, 422, "exactly one of"),
]


@pytest.mark.parametrize(("path", "value", "status", "says"), CASES)
def test_a_bad_loop_is_refused_naming_the_problem_and_writes_nothing(
    path: str,
    value: Any,
    status: int,
    says: str,
    researcher: Actor,
    project_factory: ProjectFactory,
    base: int,
) -> None:
    pid = int(project_factory("pairwise", items=0)["id"])
    body = _with(loop_body(pid, base), path, value)
    before = row_counts()
    r = researcher.client.post("/api/v1/loops", json=body)
    assert r.status_code == status, r.text
    assert says in r.text, r.text
    assert row_counts() == before


def test_a_project_the_caller_cannot_see_or_a_kind_that_cannot_train_is_refused(
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    base: int,
) -> None:
    stranger = make_user("researcher")
    pid = int(project_factory("pairwise", items=0)["id"])
    r = stranger.client.post("/api/v1/loops", json=loop_body(pid, base))
    assert r.status_code == 404, r.text
    critique = int(project_factory("critique", items=0)["id"])
    r = researcher.client.post("/api/v1/loops", json=loop_body(critique, base))
    assert r.status_code == 422 and "reward_model" in r.text, r.text
    ranking = int(project_factory("ranking", items=0)["id"])
    body = _with(loop_body(ranking, base), "evaluation.human_sample", 4)
    r = researcher.client.post("/api/v1/loops", json=body)
    assert r.status_code == 422 and "pairwise" in r.text, r.text
    body = loop_body(pid, base)
    body["prompt_set_id"] = body.pop("prompts") and 999_999_999
    r = researcher.client.post("/api/v1/loops", json=body)
    assert r.status_code == 422 and "prompt_set_id" in r.text, r.text
    annotator = make_user("annotator")
    r = annotator.client.post("/api/v1/loops", json=loop_body(pid, base))
    assert r.status_code == 403, r.text
