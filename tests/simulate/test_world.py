"""Generated worlds: deterministic per seed, truth consistent with the items, configured effects."""

from __future__ import annotations

import io
import math
from collections import defaultdict
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.errors import Invalid
from app.items.schemas import ItemIn
from app.simulate.rewards import get_reward
from app.simulate.truth import ItemTruth, load_truth, text_digest, write_truth
from app.simulate.world import WorldConfig, generate_world, world_from_rows


def test_the_same_seed_gives_the_same_world_and_another_seed_another() -> None:
    a = generate_world(WorldConfig(size=50, seed=7))
    b = generate_world(WorldConfig(size=50, seed=7))
    c = generate_world(WorldConfig(size=50, seed=8))
    assert a.items == b.items
    assert [t.to_json() for t in a.truths] == [t.to_json() for t in b.truths]
    assert a.world_id == b.world_id != c.world_id
    assert [i["prompt"] for i in a.items] != [i["prompt"] for i in c.items]


def test_a_bigger_world_starts_with_the_smaller_worlds_items() -> None:
    small = generate_world(WorldConfig(size=20, seed=3, kind="ranking", responses=4))
    big = generate_world(WorldConfig(size=60, seed=3, kind="ranking", responses=4))
    assert small.world_id == big.world_id
    assert big.items[:20] == small.items
    assert [t.to_json() for t in big.truths[:20]] == [t.to_json() for t in small.truths]


@pytest.mark.parametrize(("kind", "responses"), [("pairwise", 2), ("ranking", 5)])
def test_truth_and_items_agree(kind: str, responses: int) -> None:
    world = generate_world(
        WorldConfig(kind=kind, responses=responses, size=300, seed=1, gold_fraction=0.2)  # type: ignore[arg-type]
    )
    assert len(world.items) == len(world.truths) == 300
    assert len({i["external_id"] for i in world.items}) == 300
    for item, truth in zip(world.items, world.truths, strict=True):
        ItemIn.model_validate(item)  # importable as it is
        assert truth.external_id == item["external_id"]
        ids = [r["id"] for r in item["responses"]]
        assert len(ids) == responses and sorted(truth.order) == sorted(ids)
        assert [r.id for r in truth.responses] == ids
        for r, t in zip(item["responses"], truth.responses, strict=True):
            assert t.text_sha256 == text_digest(r["text"]) and t.chars == len(r["text"])
            assert t.model == r["model"]
        assert len({r["text"] for r in item["responses"]}) == responses
        assert len({r["model"] for r in item["responses"]}) == responses
        ranked = [truth.scores[rid] for rid in truth.order]
        assert ranked == sorted(ranked, reverse=True) and len(set(ranked)) == len(ranked)
        assert 0 < truth.difficulty < 1
        assert dict(truth.categories) == item["metadata"]  # categories, never the truth
        assert "difficulty" not in item["metadata"]
        if item.get("is_gold"):
            positions = [ids.index(rid) for rid in truth.order]
            expected = (
                {"choice": "ab"[positions[0]]} if kind == "pairwise" else {"order": positions}
            )
            assert item["gold_answer"] == expected
        if kind == "pairwise":
            assert truth.to_json()["winner"] == truth.order[0]
    assert 0.1 < world.stats()["gold_items"] / 300 < 0.3


def test_categories_follow_the_mix_and_complexity_sets_difficulty() -> None:
    mix = {
        "safety": {"none": 0.5, "moderate": 0.5},
        "complexity": {"easy": 1, "hard": 1},
        "domain": {"code": 3, "prose": 1},
    }
    world = generate_world(WorldConfig(size=2000, seed=5, mix=mix))
    stats = world.stats()["categories"]
    assert set(stats) == {"safety", "complexity", "domain"}
    assert abs(stats["domain"]["code"] / 2000 - 0.75) < 0.05
    assert abs(stats["safety"]["moderate"] / 2000 - 0.5) < 0.05
    by_level: dict[str, list[float]] = defaultdict(list)
    for t in world.truths:
        by_level[t.categories["complexity"]].append(t.difficulty)
    easy = sum(by_level["easy"]) / len(by_level["easy"])
    hard = sum(by_level["hard"]) / len(by_level["hard"])
    assert easy < 0.35 < 0.55 < hard
    moderate_prompts = [i["prompt"] for i in world.items if i["metadata"]["safety"] == "moderate"]
    assert any("lock" in p or "pills" in p or "dose" in p for p in moderate_prompts)


@pytest.mark.parametrize(
    ("rho", "low", "high"), [(0.8, 0.85, 1.0), (0.0, 0.45, 0.55), (-0.6, 0.0, 0.25)]
)
def test_length_correlates_with_the_truth_as_configured(
    rho: float, low: float, high: float
) -> None:
    world = generate_world(WorldConfig(size=2000, seed=2, length_correlation=rho))
    longer = world.stats()["best_is_longer"]
    # Pairwise: P(best is longer) = Phi(sqrt(2) rho / sqrt(1 - rho^2)), before clipping lengths.
    predicted = 0.5 * (1 + math.erf(rho / math.sqrt(1 - rho * rho)))
    assert low <= longer <= high
    assert abs(longer - predicted) < 0.05


def test_stronger_models_win_more_often() -> None:
    world = generate_world(WorldConfig(size=3000, seed=4, models=4))
    wins: dict[str, list[int]] = defaultdict(list)
    for t in world.truths:
        models = {r.id: r.model for r in t.responses}
        winner = t.order[0]
        for rid, model in models.items():
            assert model is not None
            wins[model].append(rid == winner)
    rate = {m: sum(v) / len(v) for m, v in wins.items()}
    strengths = world.model_strengths
    by_strength = sorted(rate, key=lambda m: -strengths[m])
    assert [rate[m] for m in by_strength] == sorted(rate.values(), reverse=True)
    assert rate[by_strength[0]] > 0.65 > 0.35 > rate[by_strength[-1]]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"kind": "pairwise", "responses": 3}, "a pairwise world has 2 responses"),
        ({"kind": "ranking", "responses": 6, "models": 4}, "need at least as many models"),
        ({"mix": {"complexity": {"extreme": 1.0}}}, "has no level 'extreme'"),
        ({"mix": {"safety": {"none": 0.0}}}, "needs at least one level with a weight > 0"),
        ({"size": 0}, "greater than or equal to 1"),
        ({"length_correlation": 1.0}, "less than or equal to 0.95"),
    ],
)
def test_bad_world_configs_are_refused(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WorldConfig.model_validate(config)


def test_a_world_of_given_rows_takes_its_truth_from_the_reward() -> None:
    reward = get_reward("polite_concise")
    polite = "Thank you for asking! Please keep the dough warm and let it rise overnight."
    rude = "Obviously just google it, whatever."
    rows = [
        {"prompt": "How do I bake bread?", "responses": [rude, polite]},
        {
            "prompt": "Help?",
            "responses": [{"text": polite, "model": "m1"}, {"text": rude}],
            "external_id": "given-2",
            "metadata": {"topic": "help"},
        },
    ]
    world = world_from_rows(rows, reward, source="test")
    assert world.kind == "pairwise" and world.reward == "polite_concise@1"
    first, second = world.truths
    assert first.order == (f"{world.world_id}-000001-r1", f"{world.world_id}-000001-r0")
    assert second.external_id == "given-2" and second.order[0] == "given-2-r0"
    assert second.categories == {"topic": "help"}
    gap = reward.score("Help?", polite) - reward.score("Help?", rude)
    assert second.difficulty == pytest.approx(math.exp(-gap / 0.1), abs=1e-4)
    assert world.items[1]["responses"][0] == {"text": polite, "model": "m1", "id": "given-2-r0"}

    with pytest.raises(Invalid, match="row 1: the responses of one row must have different"):
        world_from_rows([{"prompt": "p", "responses": ["x", "x"]}], reward)
    with pytest.raises(Invalid, match="row 2: a pairwise world needs 2 responses"):
        world_from_rows([rows[0], {"prompt": "p", "responses": ["a", "b", "c"]}], reward)
    ranking = world_from_rows([{"prompt": "p", "responses": ["a", "b", "c please"]}], reward)
    assert ranking.kind == "ranking" and len(ranking.truths[0].order) == 3


def test_the_truth_file_round_trips_and_names_bad_lines(tmp_path: Path) -> None:
    world = generate_world(WorldConfig(size=30, seed=9, kind="ranking", responses=3))
    buffer = io.BytesIO()
    write_truth(buffer, world.truths)
    path = tmp_path / "truth.jsonl"
    path.write_bytes(buffer.getvalue())
    loaded = load_truth(path)
    assert [t.to_json() for t in loaded.values()] == [t.to_json() for t in world.truths]
    assert isinstance(next(iter(loaded.values())), ItemTruth)

    lines = buffer.getvalue().splitlines()
    path.write_bytes(b"\n".join([lines[0], b"{not json"]))
    with pytest.raises(Invalid, match="line 2"):
        load_truth(path)
    path.write_bytes(b"\n".join([lines[0], lines[0]]))
    with pytest.raises(Invalid, match="twice"):
        load_truth(path)
    path.write_bytes(b'{"external_id": "x"}\n')
    with pytest.raises(Invalid, match="line 1: not a truth row"):
        load_truth(path)
    with pytest.raises(Invalid, match="Cannot read the truth file"):
        load_truth(tmp_path / "missing.jsonl")
