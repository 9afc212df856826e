"""The annotator model without a server: calibration to the target, biases, skips, determinism."""

from __future__ import annotations

from itertools import combinations

import pytest
from pydantic import ValidationError

from app.errors import Invalid
from app.simulate.behaviour import AnnotatorConfig, Decision, Knowledge, Panel, multipliers
from app.simulate.draws import Draws
from app.simulate.oracle import RewardOracle, TruthOracle
from app.simulate.rewards import get_reward
from app.simulate.world import World, WorldConfig, generate_world

WORLDS: dict[tuple[str, int, float], World] = {}


def _world(kind: str = "pairwise", size: int = 3000, length_correlation: float = 0.3) -> World:
    key = (kind, size, length_correlation)
    if key not in WORLDS:
        responses = 2 if kind == "pairwise" else 4
        WORLDS[key] = generate_world(
            WorldConfig(
                kind=kind,  # type: ignore[arg-type]
                responses=responses,
                size=size,
                seed=11,
                length_correlation=length_correlation,
            )
        )
    return WORLDS[key]


def _simulate(world: World, panel: Panel, per_item: int = 3) -> dict[str, float]:
    """Each item shown to `per_item` distinct annotators in fresh shuffles, as the server does."""
    oracle = TruthOracle({t.external_id: t for t in world.truths})
    right = total = agree = pairs = 0
    first = decisive = wrong = wrong_first = wrong_longer = skips = 0
    n = len(panel.profiles)
    for i, item in enumerate(world.items):
        ids = list(range(10 * i, 10 * i + len(item["responses"])))
        annotators = Draws("test", "who", i).sample(range(n), per_item)
        orders = []
        for a in annotators:
            shown = Draws("test", "shown", i, a).shuffled(
                list(zip(ids, item["responses"], strict=True))
            )
            task = {
                "external_id": item["external_id"],
                "responses": [{"id": rid, "text": r["text"]} for rid, r in shown],
            }
            facts = oracle.know(task)
            assert facts is not None
            d: Decision = panel.decide(a, item["external_id"], [rid for rid, _ in shown], facts)
            if d.skip:
                skips += 1
                continue
            orders.append(d.order)
            place = {rid: p for p, rid in enumerate(d.order)}
            for x, y in combinations(facts.order, 2):
                total += 1
                right += place[x] < place[y]
            if len(ids) == 2:
                decisive += 1
                chose_first = d.order[0] == shown[0][0]
                first += chose_first
                if d.order[0] != facts.order[0]:
                    wrong += 1
                    wrong_first += chose_first
                    lengths = facts.lengths
                    wrong_longer += lengths[d.order[0]] > lengths[d.order[1]]
        for va, vb in combinations(orders, 2):
            pa = {r: p for p, r in enumerate(va)}
            pb = {r: p for p, r in enumerate(vb)}
            for x, y in combinations(ids, 2):
                pairs += 1
                agree += (pa[x] < pa[y]) == (pb[x] < pb[y])
    return {
        "accuracy": right / total,
        "agreement": agree / pairs,
        "first": first / decisive if decisive else 0.0,
        "wrong_first": wrong_first / wrong if wrong else 0.0,
        "wrong_longer": wrong_longer / wrong if wrong else 0.0,
        "skip": skips / (len(world.items) * per_item),
    }


def test_the_default_panel_agrees_at_066_and_measures_so() -> None:
    world = _world()
    oracle = TruthOracle({t.external_id: t for t in world.truths})
    panel = Panel.calibrate(AnnotatorConfig(), oracle.facts(), 6)
    expected = panel.expected(oracle.facts())
    assert expected["agreement"] == pytest.approx(0.66, abs=1e-3)
    assert 0.72 < expected["accuracy"] < 0.82
    measured = _simulate(world, panel)
    assert measured["agreement"] == pytest.approx(0.66, abs=0.03)
    assert measured["accuracy"] == pytest.approx(expected["accuracy"], abs=0.03)
    assert measured["first"] == pytest.approx(0.5, abs=0.03)
    # Annotators differ in skill around the panel's mean.
    accuracies = sorted(p.expected_accuracy for p in panel.profiles)
    assert accuracies[0] < expected["accuracy"] < accuracies[-1]


@pytest.mark.parametrize("kind", ["pairwise", "ranking"])
def test_a_configured_accuracy_is_what_the_panel_measures(kind: str) -> None:
    world = _world(kind, 1500)
    oracle = TruthOracle({t.external_id: t for t in world.truths})
    panel = Panel.calibrate(AnnotatorConfig(accuracy=0.85, spread=0.2), oracle.facts(), 5)
    assert panel.expected(oracle.facts())["accuracy"] == pytest.approx(0.85, abs=1e-3)
    measured = _simulate(world, panel)
    assert measured["accuracy"] == pytest.approx(0.85, abs=0.025)


def test_position_and_length_bias_show_among_wrong_answers() -> None:
    world = _world(length_correlation=0.0)  # length says nothing of the truth here
    oracle = TruthOracle({t.external_id: t for t in world.truths})
    config = AnnotatorConfig(accuracy=0.65, position_bias=0.8, length_bias=0.6)
    measured = _simulate(world, Panel.calibrate(config, oracle.facts(), 4))
    # Among wrong answers (all guesses) the first shown and the longer win as configured.
    assert measured["wrong_first"] == pytest.approx(0.8, abs=0.04)
    assert measured["wrong_longer"] == pytest.approx(0.6, abs=0.05)
    assert measured["first"] > 0.65
    assert measured["accuracy"] == pytest.approx(0.65, abs=0.025)


def test_category_effects_make_items_harder_for_the_panel() -> None:
    world = _world()
    oracle = TruthOracle({t.external_id: t for t in world.truths})
    plain = Panel.calibrate(AnnotatorConfig(accuracy=0.8), oracle.facts(), 3)
    harsh = AnnotatorConfig(accuracy=0.8, effects={"safety": {"moderate": 0.0}})
    panel = Panel.calibrate(harsh, oracle.facts(), 3)
    assert panel.scale > plain.scale  # the rest must make up for coin flips on moderate safety
    moderate = next(t for t in world.truths if t.categories["safety"] == "moderate")
    facts = Knowledge(list(range(2)), moderate.difficulty, moderate.categories, {0: 5, 1: 5})
    sure = [panel.decide(0, f"k{n}", [0, 1], facts).sure for n in range(200)]
    assert not any(sure)


def test_skips_follow_the_skip_rate_and_decisions_repeat() -> None:
    world = _world()
    oracle = TruthOracle({t.external_id: t for t in world.truths})
    panel = Panel.calibrate(AnnotatorConfig(skip_rate=0.2), oracle.facts(), 3)
    assert _simulate(world, panel)["skip"] == pytest.approx(0.2, abs=0.02)
    facts = oracle.know(
        {
            "external_id": world.items[0]["external_id"],
            "responses": [
                {"id": n, "text": r["text"]} for n, r in enumerate(world.items[0]["responses"])
            ],
        }
    )
    assert facts is not None
    again = Panel.calibrate(AnnotatorConfig(skip_rate=0.2), oracle.facts(), 3)
    assert panel.decide(1, "x", [0, 1], facts) == again.decide(1, "x", [0, 1], facts)


def test_think_time_follows_the_configured_median() -> None:
    panel = Panel.calibrate(
        AnnotatorConfig(think_seconds=10, spread=0),
        RewardOracle(get_reward("polite_concise")).facts(),
        1,
    )
    facts = Knowledge([0, 1], 0.5, {}, {0: 1, 1: 2})
    times = sorted(panel.decide(0, f"t{n}", [0, 1], facts).think_s for n in range(999))
    median = times[499] / panel.profiles[0].speed
    assert median == pytest.approx(10.0, rel=0.15)  # 10 s x (0.75 + 0.5 / 2)


def test_targets_that_cannot_be_met_are_refused() -> None:
    facts = TruthOracle({t.external_id: t for t in _world().truths}).facts()
    with pytest.raises(Invalid, match="below what guessing alone gives"):
        Panel.calibrate(AnnotatorConfig(agreement=0.6, length_bias=1.0), facts, 3)
    with pytest.raises(Invalid, match="cannot be reached"):
        Panel.calibrate(
            AnnotatorConfig(
                accuracy=0.9, effects={"complexity": {"easy": 0.0, "moderate": 0.0, "hard": 0.0}}
            ),
            facts,
            3,
        )
    with pytest.raises(ValidationError, match="accuracy or agreement, not both"):
        AnnotatorConfig(accuracy=0.8, agreement=0.7)
    with pytest.raises(ValidationError, match="leave no room"):
        AnnotatorConfig(position_bias=0.9, length_bias=0.8)
    with pytest.raises(ValidationError, match=r"greater than 0\.5"):
        AnnotatorConfig(accuracy=0.4)


def test_panel_skill_multipliers_average_one_for_any_size() -> None:
    for n in (1, 2, 5, 40):
        m = multipliers(AnnotatorConfig(spread=0.3), n)
        assert sum(m) / n == pytest.approx(1.0)
    assert multipliers(AnnotatorConfig(spread=0.3, seed=1), 5) != multipliers(
        AnnotatorConfig(spread=0.3, seed=2), 5
    )


def test_the_reward_oracle_orders_shown_responses_by_the_reward() -> None:
    oracle = RewardOracle(get_reward("polite_concise"))
    task = {
        "prompt": "Hi",
        "responses": [
            {"id": 7, "text": "Whatever, obviously."},
            {"id": 3, "text": "Thank you for asking, happy to help with the question you have."},
        ],
    }
    facts = oracle.know(task)
    assert facts is not None and facts.order == [3, 7]
    assert 0 < facts.difficulty < 0.1
    assert facts.lengths == {7: 20, 3: 63}


def test_an_answer_does_not_depend_on_the_shown_order_or_the_item_id() -> None:
    """The server shuffles each assignment and ids differ between databases (a generated item's
    external id names the job that made it): an annotator's choice on an item (the demo loop's
    labels) must not follow either, only (seed, annotator, item content)."""
    from app.simulate.oracle import item_key

    oracle = RewardOracle(get_reward("polite_concise"))
    # Two close answers, so that the annotators often guess rather than know.
    # Two answers the gold reward scores alike (a tie broken by the display order would flip).
    texts = ["Sure, here is the plan, thank you.", "Here is the plan, sure, thank you."]
    panel = Panel.calibrate(AnnotatorConfig(accuracy=0.6, seed=5), oracle.facts(), 3)
    guessed = 0
    for n in range(60):
        prompt = f"Question {n}?"
        forward = {"id": 10 + n, "external_id": f"gen-61-{n}-0", "prompt": prompt, "responses": [
            {"id": 1, "text": texts[0]}, {"id": 2, "text": texts[1]}]}  # fmt: skip
        backward = {"id": 900 + n, "external_id": f"gen-67-{n}-0", "prompt": prompt, "responses": [
            {"id": 2, "text": texts[1]}, {"id": 1, "text": texts[0]}]}  # fmt: skip
        key = oracle.key(forward)
        assert key == oracle.key(backward) != oracle.key({**forward, "prompt": "x"})
        for annotator in range(3):
            a, b = oracle.know(forward), oracle.know(backward)
            assert a is not None and b is not None
            first = panel.decide(annotator, key, [1, 2], a)
            second = panel.decide(annotator, oracle.key(backward), [2, 1], b)
            assert first.order == second.order
            guessed += not first.sure
    assert guessed > 20  # the guesses were compared too, not only sure answers
    # A world's items are known by the external id their truth is filed under.
    assert item_key({"external_id": "w-1", "prompt": "p", "responses": []}) == "w-1"
