"""Simulated annotators of known accuracy, through the stats API and a snapshot export: the
estimated accuracies rank like the true ones, and Dawid-Skene labels beat the majority."""

from __future__ import annotations

import random
from typing import Any

from scipy.stats import spearmanr

from app.auth.models import User
from app.db import session_scope
from tests.exports.helpers import download, read, snapshot
from tests.factories import add_member, create_item, create_project, create_user
from tests.helpers import Actor
from tests.stats.helpers import insert_pairwise_votes, refresh

# Two spammers near chance, a crowd of mediocre annotators and a few experts: majority vote
# counts everyone alike, Dawid-Skene learns whom to trust.
ACCURACIES = [0.5, 0.52, 0.6, 0.62, 0.65, 0.68, 0.7, 0.72, 0.8, 0.9, 0.95, 0.97]
ITEMS = 200
VOTES_PER_ITEM = 5


def _world(researcher: Actor) -> tuple[int, dict[int, str], dict[int, float]]:
    rng = random.Random(7)
    project = create_project("pairwise", overlap=VOTES_PER_ITEM)
    with session_scope() as s:
        add_member(project, s.get_one(User, researcher.id))
    users = [create_user() for _ in ACCURACIES]
    accuracy = {u.id: a for u, a in zip(users, ACCURACIES, strict=True)}
    truth: dict[int, str] = {}
    votes = []
    for _ in range(ITEMS):
        item = create_item(project, models=["m-a", "m-b"])
        truth[item.id] = rng.choice("ab")
        for user in rng.sample(users, VOTES_PER_ITEM):
            right = rng.random() < accuracy[user.id]
            wrong = "b" if truth[item.id] == "a" else "a"
            votes.append((item, user.id, None, truth[item.id] if right else wrong, None))
    insert_pairwise_votes(project.id, votes)
    return project.id, truth, accuracy


def _accuracy(
    rows: list[dict[str, Any]], truth: dict[int, str], first_ids: dict[int, int]
) -> float:
    right = sum(
        ("a" if r["chosen_id"] == first_ids[r["item_id"]] else "b") == truth[r["item_id"]]
        for r in rows
    )
    return right / len(truth)  # an item left out (a tie) counts as wrong


def test_dawid_skene_ranks_annotators_and_beats_majority(researcher: Actor) -> None:
    pid, truth, accuracy = _world(researcher)
    stats = refresh(researcher, pid)
    assert stats["trust"]["method"] == "dawid_skene"
    estimated = {a["user_id"]: a["trust_accuracy"] for a in stats["annotators"]}
    users = sorted(accuracy)
    rho = spearmanr([accuracy[u] for u in users], [estimated[u] for u in users]).statistic
    assert rho >= 0.8, rho

    from tests.helpers import sql

    first_ids = dict(sql("SELECT item_id, id FROM responses WHERE position = 0"))
    by_method = {}
    for method in ("consensus", "dawid_skene"):
        export = snapshot(researcher, pid, schema="preference", aggregate=method)
        rows = read(download(researcher, pid, export["id"]), "jsonl")
        assert {r["aggregation"] for r in rows} == {
            "majority" if method == "consensus" else "dawid_skene"
        }
        by_method[method] = _accuracy(rows, truth, first_ids)
    assert by_method["dawid_skene"] > by_method["consensus"], by_method


def test_dawid_skene_streaming_export_points_to_the_snapshot(researcher: Actor) -> None:
    project = create_project("pairwise")
    with session_scope() as s:
        add_member(project, s.get_one(User, researcher.id))
    r = researcher.client.get(
        f"/api/v1/projects/{project.id}/export", params={"aggregate": "dawid_skene"}
    )
    assert r.status_code == 422 and "POST" in r.json()["detail"]
    r = researcher.client.post(
        f"/api/v1/projects/{project.id}/exports",
        json={"schema": "unpaired", "aggregate": "dawid_skene"},
    )
    assert r.status_code == 422
