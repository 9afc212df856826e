"""GET /stats, /leaderboard and /annotators/{uid}/quality: the cached snapshot end to end."""

from __future__ import annotations

import json
from typing import Any

from app.jobs import runner
from tests.factories import create_item, create_project, create_user
from tests.helpers import Actor, sql, sql_value
from tests.stats.helpers import insert_pairwise_votes, refresh


def _no_nan(text: str) -> None:
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text)  # strict JSON


def _researcher_project(researcher: Actor, kind: str = "pairwise", **settings: Any) -> Any:
    from tests.factories import add_member

    project = create_project(kind, **settings)
    user = sql("SELECT id FROM users WHERE id = %s", researcher.id)
    assert user
    from app.auth.models import User
    from app.db import session_scope

    with session_scope() as s:
        add_member(project, s.get_one(User, researcher.id))
    return project


def test_empty_project_is_an_explained_empty_answer(researcher: Actor) -> None:
    project = _researcher_project(researcher)
    r = researcher.client.get(f"/api/v1/projects/{project.id}/stats")
    assert r.status_code == 200, r.text
    _no_nan(r.text)
    body = r.json()
    assert body["empty"] is True
    assert "No annotations yet" in body["explanation"]
    assert body["counts"]["items"] == 0
    # The refreshed snapshot of an empty project says why too, without NaN anywhere.
    body = refresh(researcher, project.id)
    assert body["empty"] is True and body["snapshot_at"] is not None
    assert "no items yet" in body["explanation"]
    assert body["agreement"][0]["value"] is None


def test_stats_counts_agreement_judges_and_throughput(researcher: Actor) -> None:
    project = _researcher_project(researcher, overlap=3)
    annotators = [create_user() for _ in range(3)]
    items = [create_item(project, models=["big", "small"]) for _ in range(30)]
    votes = []
    for n, item in enumerate(items):
        truth = "a" if n % 3 else "b"
        for k, user in enumerate(annotators):
            # The third annotator disagrees on every fifth item.
            choice = truth if (k < 2 or n % 5) else ("b" if truth == "a" else "a")
            votes.append((item, user.id, None, choice, 1000 + 100 * k))
        votes.append((item, None, 77, truth, None))  # judge 77 agrees with the majority
    insert_pairwise_votes(project.id, votes)
    body = refresh(researcher, project.id)
    assert body["stale"] is False and body["snapshot_at"]
    assert body["counts"]["annotations"] == {"human": 90, "ai": 30}
    assert body["counts"]["annotators"] == 3 and body["counts"]["judges"] == 1
    alpha = next(a for a in body["agreement"] if a["key"] == "alpha_nominal")
    assert 0.5 < alpha["value"] <= 1.0 and alpha["low"] <= alpha["value"] <= alpha["high"]
    [judge] = body["judges"]
    assert judge["judge_id"] == 77 and judge["agreement"]["value"] == 1.0
    assert {a["user_id"] for a in body["annotators"]} == {u.id for u in annotators}
    third = next(a for a in body["annotators"] if a["user_id"] == annotators[2].id)
    assert third["annotations"] == 30 and third["time_p50_ms"] == 1200
    assert third["majority_agreement"] < 1.0
    assert body["time_per_task"]["n"] == 90
    assert sum(b["count"] for b in body["label_balance"]) == 90
    assert body["progress"]["cumulative"][-1] == 120
    assert body["bias"]["humans"]["first_position"]["n"] == 90
    # Cohen's kappa per pair of human raters (30 shared items each), against scikit-learn.
    from sklearn.metrics import cohen_kappa_score

    pairs = body["rater_pairs"]
    assert pairs["statistic"] == "Cohen's kappa" and pairs["pairs"] == pairs["defined"] == 3
    codes = {u.id: [] for u in annotators}  # type: dict[int, list[str]]
    for _item, uid, _, choice, _ in votes:
        if uid is not None:
            codes[uid].append(choice)
    lowest = pairs["lowest"]
    assert len(lowest) == 3 and lowest[-1]["kappa"] == 1.0  # annotators 0 and 1 always agree
    assert {lowest[0]["rater_a"], lowest[0]["rater_b"]} & {annotators[2].id}
    for row in lowest:
        want = cohen_kappa_score(codes[row["rater_a"]], codes[row["rater_b"]])
        assert abs(row["kappa"] - want) < 1e-9 and row["n"] == 30
        assert row["low"] <= row["kappa"] <= row["high"]
    assert pairs["p10"] <= pairs["median"] <= pairs["p90"]

    # The snapshot is stale once a new vote arrives; GET asks for a refresh (debounced).
    insert_pairwise_votes(project.id, [(items[0], None, 78, "a", None)])
    again = researcher.client.get(f"/api/v1/projects/{project.id}/stats").json()
    # Within the debounce interval of the last request, no new job.
    assert again["stale"] is True and again["refresh_job_id"] is None
    sql("UPDATE project_stats SET requested_at = now() - interval '1 minute'")
    again = researcher.client.get(f"/api/v1/projects/{project.id}/stats").json()
    assert again["stale"] is True and again["refresh_job_id"] is not None
    assert runner.run_job(again["refresh_job_id"]) == "done"
    fresh = researcher.client.get(f"/api/v1/projects/{project.id}/stats").json()
    assert fresh["stale"] is False and fresh["counts"]["judges"] == 2


def test_critique_ratings_agree_as_ordinal_and_interval(researcher: Actor) -> None:
    """Ratings 1..7 get Krippendorff's alpha at both levels (checked against the
    `krippendorff` package on the same reliability matrix) and weighted rater-pair kappas."""
    import krippendorff
    import numpy as np

    from tests.factories import create_annotation

    project = _researcher_project(researcher, "critique")
    users = [create_user() for _ in range(2)]
    matrix = [[], []]  # type: list[list[float]]
    for n in range(12):
        item = create_item(project)
        for k, user in enumerate(users):
            rating = 1 + (n + k * (n % 3)) % 7
            answer = {"kind": "critique", "critique": "ok", "rating": rating}
            create_annotation(item, user=user, answer=answer)
            matrix[k].append(rating)
    body = refresh(researcher, project.id)
    got = {a["key"]: a for a in body["agreement"]}
    for level in ("ordinal", "interval"):
        want = krippendorff.alpha(
            reliability_data=np.asarray(matrix),
            level_of_measurement=level,
            value_domain=list(range(1, 8)),
        )
        assert abs(got[f"alpha_{level}"]["value"] - want) < 1e-9, level
    pairs = body["rater_pairs"]
    assert pairs["statistic"] == "Cohen's kappa (linear weights)" and pairs["pairs"] == 1


def test_leaderboard_json_and_csv(researcher: Actor) -> None:
    project = _researcher_project(researcher)
    users = [create_user() for _ in range(2)]
    votes = []
    for n in range(40):
        item = create_item(project, models=["strong", "weak"])
        for u in users:
            votes.append((item, u.id, None, "a" if n % 4 else "b", None))
    insert_pairwise_votes(project.id, votes)
    refresh(researcher, project.id)
    r = researcher.client.get(f"/api/v1/projects/{project.id}/leaderboard")
    assert r.status_code == 200, r.text
    _no_nan(r.text)
    board = r.json()
    assert [x["model"] for x in board["ratings"]] == ["strong", "weak"]
    top = board["ratings"][0]
    assert top["low"] <= top["score"] <= top["high"] and board["battles"] == 80
    lc = researcher.client.get(
        f"/api/v1/projects/{project.id}/leaderboard", params={"length_control": "true"}
    ).json()
    assert lc["length_control"] is True and "length_effect" in lc
    ai = researcher.client.get(
        f"/api/v1/projects/{project.id}/leaderboard", params={"source": "ai"}
    ).json()
    assert ai["ratings"] == [] and "No ai votes" in ai["explanation"]
    r = researcher.client.get(
        f"/api/v1/projects/{project.id}/leaderboard",
        params={"source": "human", "length_control": "true"},
    )
    assert r.status_code == 200 and r.json()["length_control"] is True
    assert [x["model"] for x in r.json()["ratings"]] == ["strong", "weak"]
    csv_r = researcher.client.get(
        f"/api/v1/projects/{project.id}/leaderboard", params={"format": "csv"}
    )
    assert csv_r.status_code == 200 and csv_r.headers["content-type"].startswith("text/csv")
    lines = csv_r.text.splitlines()
    assert (
        lines[0] == "rank,model,score,low,high,battles,wins" and lines[1].split(",")[1] == "strong"
    )


def test_leaderboard_every_source_with_and_without_length_control(researcher: Actor) -> None:
    """Humans here favour the longer response and the judge the shorter: each source's
    length-controlled board fits its own length effect (positive for humans, negative for the
    judge), and every source x length control x format answers."""
    import random

    project = _researcher_project(researcher)
    users = [create_user() for _ in range(2)]
    rng = random.Random(3)
    models = ["m-a", "m-b", "m-c"]
    votes = []
    for n in range(60):
        pair = [models[n % 3], models[(n + 1) % 3]]
        lengths = [rng.randint(5, 200), rng.randint(5, 200)]
        if lengths[0] == lengths[1]:
            lengths[1] += 7
        item = create_item(project, ["x" * k for k in lengths], models=pair)
        longer, shorter = ("a", "b") if lengths[0] > lengths[1] else ("b", "a")
        for u in users:
            votes.append((item, u.id, None, longer, None))
        votes.append((item, None, 91, shorter, None))
    insert_pairwise_votes(project.id, votes)
    refresh(researcher, project.id)
    url = f"/api/v1/projects/{project.id}/leaderboard"
    effect: dict[str, float] = {}
    for source in ("all", "human", "ai"):
        for lc in ("false", "true"):
            r = researcher.client.get(url, params={"source": source, "length_control": lc})
            assert r.status_code == 200, r.text
            _no_nan(r.text)
            board = r.json()
            assert board["source"] == source and board["length_control"] is (lc == "true")
            assert sorted(x["model"] for x in board["ratings"]) == models
            assert board["battles"] == {"all": 180, "human": 120, "ai": 60}[source]
            if lc == "true":
                effect[source] = board["length_effect"]["value"]
            else:
                assert board["length_effect"] is None
            got = researcher.client.get(
                url, params={"source": source, "length_control": lc, "format": "csv"}
            )
            assert got.status_code == 200 and source in got.headers["content-disposition"]
            lines = got.text.splitlines()
            assert lines[0] == "rank,model,score,low,high,battles,wins" and len(lines) == 4
            assert [ln.split(",")[1] for ln in lines[1:]] == [x["model"] for x in board["ratings"]]
    assert effect["human"] > 0 > effect["ai"]


def test_leaderboard_without_models_or_on_spans_is_a_422(researcher: Actor) -> None:
    project = _researcher_project(researcher)
    create_item(project, models=[None, None])
    r = researcher.client.get(f"/api/v1/projects/{project.id}/leaderboard")
    assert r.status_code == 422 and r.json()["error"] == "no_leaderboard"
    assert "model" in r.json()["detail"]
    spans = _researcher_project(researcher, "span")
    r = researcher.client.get(f"/api/v1/projects/{spans.id}/leaderboard", params={"format": "csv"})
    assert r.status_code == 422 and r.json()["error"] == "no_leaderboard"


def test_annotator_quality_and_unknown_ids(researcher: Actor) -> None:
    project = _researcher_project(researcher)
    user = create_user()
    item = create_item(project)
    insert_pairwise_votes(project.id, [(item, user.id, None, "a", 500)])
    refresh(researcher, project.id)
    r = researcher.client.get(f"/api/v1/projects/{project.id}/annotators/{user.id}/quality")
    assert r.status_code == 200, r.text
    assert r.json()["annotations"] == 1 and r.json()["pause"] is None
    stranger = create_user()
    r = researcher.client.get(f"/api/v1/projects/{project.id}/annotators/{stranger.id}/quality")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = researcher.client.get(f"/api/v1/projects/{project.id}/annotators/999999999/quality")
    assert r.status_code == 404
    r = researcher.client.get("/api/v1/projects/999999999/stats")
    assert r.status_code == 404
    r = researcher.client.get(f"/api/v1/projects/{project.id}/annotators/0/quality")
    assert r.status_code == 422


def test_refresh_is_debounced_and_not_doubled(researcher: Actor) -> None:
    project = _researcher_project(researcher)
    first = researcher.client.post(f"/api/v1/projects/{project.id}/stats/refresh").json()
    second = researcher.client.post(f"/api/v1/projects/{project.id}/stats/refresh").json()
    assert first == second  # the queued one is answered, not a second job
    assert sql_value("SELECT count(*) FROM jobs WHERE kind = 'stats.refresh'") == 1
