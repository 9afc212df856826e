"""Simulated annotators against a real server (uvicorn in a subprocess, real HTTP)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.simulate.behaviour import AnnotatorConfig
from app.simulate.oracle import RewardOracle, TruthOracle
from app.simulate.rewards import get_reward
from app.simulate.runner import NO_TRUTH_REASON, SKIP_REASON, run_annotators
from app.simulate.truth import load_truth
from app.simulate.world import world_from_rows
from tests.conftest import Actor
from tests.simulate.helpers import build, enlist, sql

FAST = {"time_scale": 0.0}


def _oracle(folder: Path) -> TruthOracle:
    return TruthOracle(load_truth(folder / "truth.jsonl"))


def test_annotators_label_a_world_to_its_overlap_at_the_configured_agreement(
    live_server: str, researcher: Actor, tmp_path: Path
) -> None:
    # 600 items: which annotator labels which item depends on thread scheduling, and over
    # 150 items that alone moved the measured agreement by up to 0.09 (sd 0.03); here sd 0.01.
    _, built = build(researcher, tmp_path, overlap=3, size=600, seed=21)
    pid = built.project.id
    team = enlist(pid, 6)
    stats = run_annotators(
        live_server,
        pid,
        [e.token for e in team],
        _oracle(tmp_path),
        AnnotatorConfig(agreement=0.66, seed=1, **FAST),
        names=[e.email for e in team],
    )
    assert stats.counts() == {
        "submitted": 1800,
        "skipped": 0,
        "no_truth": 0,
        "over_quota": 0,
        "errors": 0,
    }
    assert {a.stopped for a in stats.annotators} == {"no more tasks"}
    per_item = sql(
        "SELECT count(*) FROM annotations WHERE project_id = %s AND source = 'human'"
        " GROUP BY item_id",
        pid,
    )
    assert len(per_item) == 600 and {n for (n,) in per_item} == {3}

    # What the server stored is what the annotators decided, resolved to response ids.
    stored = dict(
        sql(
            "SELECT id, (payload->>'preferred')::bigint FROM annotations WHERE project_id = %s", pid
        )
    )
    assert {v.annotation_id: v.order[0] for v in stats.votes} == stored

    accuracy, agreement = stats.accuracy(), stats.agreement()
    assert stats.expected["agreement"] == pytest.approx(0.66, abs=1e-3)
    assert accuracy["value"] == pytest.approx(accuracy["expected_for_these_votes"], abs=0.06)
    assert accuracy["value"] == pytest.approx(stats.expected["accuracy"], abs=0.07)
    assert agreement["vote_pairs"] == 1800 and agreement["items"] == 600
    assert agreement["value"] == pytest.approx(0.66, abs=0.08)


def test_position_bias_shows_in_what_the_server_stored(
    live_server: str, researcher: Actor, tmp_path: Path
) -> None:
    # 480 items: the share chosen first has sd 0.012 here (0.022 over 120, failed once in CI).
    _, built = build(researcher, tmp_path, overlap=2, size=480, seed=22)
    pid = built.project.id
    team = enlist(pid, 4)
    config = AnnotatorConfig(accuracy=0.6, position_bias=0.9, spread=0.0, **FAST)
    stats = run_annotators(live_server, pid, [e.token for e in team], _oracle(tmp_path), config)
    assert stats.counts()["submitted"] == 960
    # Measured from the server's data: the stored shown order against the stored preference.
    rows = sql(
        "SELECT (payload->>'preferred')::bigint = shown_order[1] FROM annotations"
        " WHERE project_id = %s",
        pid,
    )
    first_rate = sum(1 for (chose_first,) in rows if chose_first) / len(rows)
    expected = stats.first_position()["expected_for_these_votes"]
    assert expected > 0.75  # 0.5 + 0.4 x (share of guesses, about 0.8)
    assert first_rate == pytest.approx(expected, abs=0.08)
    assert first_rate == pytest.approx(stats.first_position()["value"])


def test_ranking_annotators_send_whole_orders_of_response_ids(
    live_server: str, researcher: Actor, tmp_path: Path
) -> None:
    _, built = build(researcher, tmp_path, overlap=2, size=40, seed=23, kind="ranking", responses=4)
    pid = built.project.id
    team = enlist(pid, 3)
    stats = run_annotators(
        live_server,
        pid,
        [e.token for e in team],
        _oracle(tmp_path),
        AnnotatorConfig(accuracy=0.85, **FAST),
    )
    assert stats.counts()["submitted"] == 80
    rows = sql(
        "SELECT a.payload->'order', array_agg(r.id) FROM annotations a"
        " JOIN responses r ON r.item_id = a.item_id WHERE a.project_id = %s GROUP BY a.id",
        pid,
    )
    for order, response_ids in rows:
        assert sorted(order) == sorted(response_ids)
    assert stats.accuracy()["value"] == pytest.approx(0.85, abs=0.1)
    assert stats.first_position()["votes"] == 0  # a pairwise measure


def test_skips_and_task_budgets_are_honoured(
    live_server: str, researcher: Actor, tmp_path: Path
) -> None:
    _, built = build(researcher, tmp_path, overlap=1, size=60, seed=24)
    pid = built.project.id
    team = enlist(pid, 3)
    config = AnnotatorConfig(skip_rate=0.3, max_tasks=10, **FAST)
    stats = run_annotators(live_server, pid, [e.token for e in team], _oracle(tmp_path), config)
    for a in stats.annotators:
        assert a.submitted + a.skipped == 10 and a.stopped == "task budget"
    counts = stats.counts()
    assert 0 < counts["skipped"] < 20
    skipped = sql(
        "SELECT skip_reason, count(*) FROM assignments WHERE project_id = %s AND"
        " status = 'skipped' GROUP BY 1",
        pid,
    )
    assert skipped == [(SKIP_REASON, counts["skipped"])]
    assert sql("SELECT count(*) FROM annotations WHERE project_id = %s", pid) == [
        (counts["submitted"],)
    ]


def test_items_without_truth_are_skipped_and_counted(
    live_server: str, researcher: Actor, tmp_path: Path
) -> None:
    _, built = build(researcher, tmp_path, overlap=1, size=10, seed=25)
    pid = built.project.id
    extra = [
        {"external_id": "stranger", "prompt": "p", "responses": [{"text": "a"}, {"text": "b"}]}
    ]
    r = researcher.client.post(f"/api/v1/projects/{pid}/items", json=extra)
    assert r.status_code == 201, r.text
    team = enlist(pid, 1)
    stats = run_annotators(
        live_server, pid, [team[0].token], _oracle(tmp_path), AnnotatorConfig(**FAST)
    )
    assert stats.counts()["submitted"] == 10 and stats.counts()["no_truth"] == 1
    assert sql(
        "SELECT skip_reason FROM assignments a JOIN items i ON i.id = a.item_id"
        " WHERE i.external_id = 'stranger'"
    ) == [(NO_TRUTH_REASON,)]


def test_reward_annotators_follow_the_gold_reward(
    live_server: str, researcher: Actor, tmp_path: Path
) -> None:
    reward = get_reward("polite_concise")
    polite = [
        "Thank you for asking! Happy to help: {} works well here.",
        "Good question, thanks. Please try {} first; hope this helps.",
    ]
    rude = ["Obviously {}. Whatever.", "Just google it: {} is stupid easy."]
    rows = [
        {
            "prompt": f"How do I use tool {n}?",
            "responses": [rude[n % 2].format(f"tool {n}"), polite[n % 2].format(f"tool {n}")],
        }
        for n in range(30)
    ]
    world = world_from_rows(rows, reward, source="reward-test")
    r = researcher.client.post("/api/v1/projects", json={"name": "gold", "kind": "pairwise"})
    pid = r.json()["id"]
    r = researcher.client.post(f"/api/v1/projects/{pid}/items", json=world.items)
    assert r.status_code == 201, r.text
    team = enlist(pid, 2)
    stats = run_annotators(
        live_server,
        pid,
        [e.token for e in team],
        RewardOracle(reward),
        AnnotatorConfig(accuracy=0.95, **FAST),
    )
    assert stats.counts()["submitted"] == 30
    assert stats.accuracy()["value"] >= 0.8
    polite_ids = {
        rid
        for (rid,) in sql(
            "SELECT id FROM responses WHERE text LIKE 'Thank you%%' OR text LIKE 'Good question%%'"
        )
    }
    preferred = [p for (p,) in sql("SELECT (payload->>'preferred')::bigint FROM annotations")]
    assert sum(p in polite_ids for p in preferred) >= 24


def test_a_time_budget_ends_the_run_and_leaves_no_lease_behind(
    live_server: str, researcher: Actor, tmp_path: Path
) -> None:
    _, built = build(researcher, tmp_path, overlap=3, size=50, seed=26)
    pid = built.project.id
    team = enlist(pid, 2)
    config = AnnotatorConfig(think_seconds=0.6, think_sigma=0.0, spread=0, max_seconds=1.5)
    started = time.monotonic()
    stats = run_annotators(live_server, pid, [e.token for e in team], _oracle(tmp_path), config)
    assert time.monotonic() - started < 10
    assert {a.stopped for a in stats.annotators} == {"time budget"}
    assert 2 <= stats.counts()["submitted"] <= 12
    assert sql(
        "SELECT count(*) FROM assignments WHERE project_id = %s AND status = 'leased'", pid
    ) == [(0,)]


def test_a_stop_leaves_the_task_in_hand_to_its_lease(
    live_server: str, researcher: Actor, tmp_path: Path
) -> None:
    _, built = build(researcher, tmp_path, overlap=1, size=5, seed=27)
    pid = built.project.id
    team = enlist(pid, 1)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    stats = run_annotators(
        live_server,
        pid,
        [team[0].token],
        _oracle(tmp_path),
        AnnotatorConfig(think_seconds=60),
        stop=stop,
    )
    assert stats.annotators[0].stopped == "stopped" and stats.counts()["submitted"] == 0
    assert sql("SELECT status FROM assignments WHERE project_id = %s", pid) == [("leased",)]


def test_a_refused_token_stops_that_annotator_with_the_servers_answer(
    live_server: str, researcher: Actor, tmp_path: Path
) -> None:
    _, built = build(researcher, tmp_path, overlap=1, size=5, seed=28)
    pid = built.project.id
    team = enlist(pid, 1)
    stats = run_annotators(
        live_server, pid, [team[0].token, "not-a-token"], _oracle(tmp_path), AnnotatorConfig(**FAST)
    )
    good, bad = stats.annotators
    assert good.stopped == "no more tasks" and good.submitted == 5
    assert bad.stopped == "error" and bad.error is not None and "answered 401" in bad.error


def test_annotators_stop_on_a_kind_they_cannot_label(
    live_server: str, project_factory: Callable[..., dict[str, object]]
) -> None:
    project = project_factory("critique", items=2)
    pid = int(str(project["id"]))
    team = enlist(pid, 1)
    stats = run_annotators(
        live_server,
        pid,
        [team[0].token],
        RewardOracle(get_reward("on_topic")),
        AnnotatorConfig(**FAST),
    )
    (run,) = stats.annotators
    assert run.stopped == "error" and run.submitted == 0
    assert run.error == "simulated annotators label pairwise and ranking tasks, not critique"
