"""Human evaluation items: created once, answers in a seeded order, released to humans, left out
of exports by default, and a win rate with its interval once humans label them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.db import session_scope
from app.errors import Invalid
from app.loops.human_eval import (
    EvalPair,
    create_items,
    human_evaluation,
    human_win_rate,
    loop_items,
)
from tests.exports.helpers import annotate, export, snapshot
from tests.helpers import Actor, sql, sql_value
from tests.routing.helpers import budget, policy, route, routed_project
from tests.training.runs_helpers import register
from tests.world import model_folder

ProjectFactory = Callable[..., dict[str, Any]]
GOOD, BAD = "good answer", "bad answer"


def make(pid: int, candidate: int, baseline: int, n: int = 8, iteration: int = 1) -> list[int]:
    """Create the items (as the loop's evaluate step does) and return their ids."""
    pairs = [EvalPair(f"prompt {k}", f"{GOOD} {k}", f"{BAD} {k}") for k in range(n)]
    with session_scope() as s:
        ids = create_items(
            s,
            loop_id=7,
            iteration=iteration,
            project_id=pid,
            candidate_model_id=candidate,
            baseline_model_id=baseline,
            pairs=pairs,
            seed=3,
        )
    with session_scope() as s:
        assert loop_items(s, pid, 7, iteration) == sorted(ids)
    return ids


@pytest.fixture
def setup(
    researcher: Actor,
    admin: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
) -> dict[str, Any]:
    people = [make_user("annotator"), make_user("annotator")]
    project = project_factory("pairwise", items=3, members=tuple(people), overlap=2)
    candidate = register(admin, model_folder(), "iteration 1")["id"]
    baseline = register(admin, model_folder(), "iteration 0")["id"]
    return {"pid": project["id"], "people": people, "cand": candidate, "base": baseline}


def prefers(text: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Choose the response containing `text`; other items: the one whose text sorts first, so
    that two annotators agree there too (the first *shown* would tie them half the time, and a
    tie leaves the item out of the preference export)."""

    def decide(task: dict[str, Any]) -> dict[str, Any]:
        first, second = (r["text"] for r in task["item"]["responses"])
        if (text in first) != (text in second):
            return {"choice": "a" if text in first else "b"}
        return {"choice": "a" if first <= second else "b"}

    return decide


def test_items_are_made_once_in_a_seeded_order_with_their_versions(
    setup: dict[str, Any],
) -> None:
    ids = make(setup["pid"], setup["cand"], setup["base"])
    assert len(ids) == 8
    assert make(setup["pid"], setup["cand"], setup["base"]) == ids  # a re-run adds nothing
    with session_scope() as s:
        again = create_items(
            s, loop_id=7, iteration=1, project_id=setup["pid"], pairs=[("p", "a", "b")], seed=3
        )
    assert again == ids[:1]  # index 0 of (loop 7, iteration 1) exists: nothing new
    rows = sql(
        "SELECT r.item_id, r.position, r.text, r.model_version_id FROM responses r"
        " WHERE r.item_id = ANY(%s) ORDER BY r.item_id, r.position",
        ids,
    )
    firsts = [text for _, pos, text, _ in rows if pos == 0]
    assert 0 < sum(t.startswith(GOOD) for t in firsts) < 8  # both orders occur
    for _, _, text, version in rows:
        assert version == (setup["cand"] if text.startswith(GOOD) else setup["base"])
    meta = sql_value("SELECT metadata FROM items WHERE id = %s", ids[0])
    assert meta["tandem_eval"]["candidate_model_id"] == setup["cand"]


def test_humans_label_them_and_the_win_rate_has_an_interval(
    researcher: Actor, setup: dict[str, Any]
) -> None:
    ids = make(setup["pid"], setup["cand"], setup["base"])
    with session_scope() as s:
        before = human_evaluation(s, ids)
        assert human_win_rate(s, ids) is None  # nothing labelled yet
    assert before.labelled == 0 and before.win is None and before.pending == 8
    # Both annotators prefer the candidate's answers: it wins every item.
    for person in setup["people"]:
        annotate(person, setup["pid"], prefers(GOOD))
    with session_scope() as s:
        result = human_evaluation(s, ids)
    assert result.labelled == 8 and result.win is not None
    assert (result.win.wins, result.win.ties, result.win.losses) == (8, 0, 0)
    assert result.win.rate == 1.0 and 0.6 < result.win.low < 0.7 and result.win.high == 1.0

    # Exports: the evaluation items' labels never train (left out by default).
    pid = setup["pid"]
    default = {row["item_id"] for row in export(researcher, pid, schema="preference")}
    assert default and not default & set(ids)
    only = {
        row["item_id"] for row in export(researcher, pid, schema="preference", eval_items="only")
    }
    assert only == set(ids)
    both = {
        row["item_id"] for row in export(researcher, pid, schema="preference", eval_items="include")
    }
    assert both == default | set(ids)
    snap = snapshot(researcher, pid, schema="preference")
    assert snap["manifest"]["options"]["eval_items"] == "exclude"
    assert snap["rows"] == len(default)


def test_split_and_losing_votes(setup: dict[str, Any]) -> None:
    ids = make(setup["pid"], setup["cand"], setup["base"], n=4)
    first, second = setup["people"]
    annotate(first, setup["pid"], prefers(GOOD))
    annotate(second, setup["pid"], prefers(BAD))
    with session_scope() as s:
        win = human_win_rate(s, ids)
    assert win is not None and (win.ties, win.n) == (4, 4)
    assert win.rate == 0.5


def test_pairs_may_name_their_versions_as_the_loops_evaluate_step_does(
    setup: dict[str, Any],
) -> None:
    pairs = [EvalPair("p", f"{GOOD} x", f"{BAD} x", setup["cand"], setup["base"])]
    with session_scope() as s:
        ids = create_items(s, loop_id=9, iteration=2, project_id=setup["pid"], pairs=pairs, seed=1)
    rows = sql("SELECT text, model_version_id FROM responses WHERE item_id = %s", ids[0])
    assert {(t.split()[0], v) for t, v in rows} == {("good", setup["cand"]), ("bad", setup["base"])}


def test_items_open_human_slots_and_bad_requests_are_refused(
    researcher: Actor, setup: dict[str, Any], project_factory: ProjectFactory
) -> None:
    ids = make(setup["pid"], setup["cand"], setup["base"], n=2)
    assert {r for (r,) in sql("SELECT remaining FROM items WHERE id = ANY(%s)", ids)} == {2}
    with pytest.raises(Invalid, match="two different"):
        make(setup["pid"], setup["cand"], setup["cand"])
    span = project_factory("span", items=0)
    with pytest.raises(Invalid, match="not pairwise"):
        make(span["id"], setup["cand"], setup["base"])


def test_in_a_routed_project_they_go_to_humans_and_routing_leaves_them_alone(
    admin: Actor, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    """Even where the policy sends everything to AI judges: the evaluation is by humans, it
    spends no routing budget, and a route job neither decides nor judges them."""
    people = [make_user("annotator"), make_user("annotator")]
    p = policy(admin, "all_ai", human_budget=100)
    pid = routed_project(admin, researcher, p["id"], items=3, members=tuple(people), overlap=2)
    candidate = register(admin, model_folder(), "iteration 1")["id"]
    baseline = register(admin, model_folder(), "iteration 0")["id"]
    ids = make(pid, candidate, baseline, n=4)
    assert sql("SELECT DISTINCT routing, remaining FROM items WHERE id = ANY(%s)", ids) == [
        ("human", 2)
    ]
    assert (
        sql_value("SELECT count(*) FROM items WHERE project_id = %s AND routing = 'held'", pid) == 3
    )

    result = route(researcher, pid)
    assert result["counts"] == {"human": 0, "ai": 3, "both": 0}  # the three regular items
    assert sql("SELECT item_id FROM routing_decisions WHERE item_id = ANY(%s)", ids) == []
    for person in people:
        assert len(annotate(person, pid, prefers(GOOD))) == 4  # only the evaluation items
    with session_scope() as s:
        win = human_win_rate(s, ids)
    assert win is not None and (win.wins, win.n) == (4, 4)
    assert budget(researcher, pid)["reserved"] == 0 and budget(researcher, pid)["spent"] == 0
