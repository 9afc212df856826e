"""A loop with `evaluation.human_sample`: its evaluate step makes evaluation items through
app/loops/human_eval.py, humans label them in the project like any item, GET /loops/{id} shows
the win rate by humans, and the loop's next snapshot (and any default export) leaves them out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from tests.exports.helpers import export  # noqa: E402
from tests.helpers import Actor, sql  # noqa: E402
from tests.loops.helpers import (  # noqa: E402
    ProjectFactory,
    drive,
    label_all,
    loop_body,
    loop_out,
    register,
)
from tests.training.helpers import save_tiny_model, vocabulary  # noqa: E402


def test_humans_evaluate_a_sample_of_each_iteration(
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> None:
    policy = register(admin, save_tiny_model(tmp_path / "policy", vocabulary()), "tiny policy")
    annotator = make_user("annotator")
    pid = int(project_factory("pairwise", items=0, members=(annotator,), overlap=1)["id"])
    body = loop_body(pid, policy, policy, iterations=1)
    body["evaluation"]["human_sample"] = 2
    r = researcher.client.post("/api/v1/loops", json=body)
    assert r.status_code == 202, r.text
    loop_id = r.json()["id"]
    out = drive(researcher, annotator, pid, loop_id)
    assert out["status"] == "succeeded", out
    [it] = out["iterations"]
    item_ids = it["metrics"]["human"]["item_ids"]
    assert 1 <= len(item_ids) <= 2
    assert it["metrics"]["by_humans"]["labelled"] == 0  # made after the labels step

    # Evaluation items: the iteration's policy against iteration 0, never trained on.
    rows = sql(
        "SELECT DISTINCT r.model_version_id FROM responses r WHERE r.item_id = ANY(%s)", item_ids
    )
    assert {v for (v,) in rows} == {policy, it["new_policy_model_id"]}
    trained = {row["item_id"] for row in export(researcher, pid, schema="preference")}
    assert trained and not trained & set(item_ids)

    assert label_all(annotator, pid) == len(item_ids)  # humans label them like any item
    humans = loop_out(researcher, loop_id)["iterations"][0]["metrics"]["by_humans"]
    assert humans["items"] == humans["labelled"] == len(item_ids)
    assert 0 <= humans["low"] <= humans["win_rate_vs_iteration_0"] <= humans["high"] <= 1
