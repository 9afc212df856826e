"""Gold rewards: deterministic, in [0, 1], and each feature moves the score the documented way."""

from __future__ import annotations

import pytest

from app.errors import Invalid
from app.simulate.rewards import FEATURES, REWARDS, get_reward, prompt_terms


def test_every_registered_reward_is_a_documented_mix_in_the_unit_interval() -> None:
    texts = ["", "ok", "Thank you! " * 50, "Obviously, whatever. " * 3, "First, then, finally."]
    for reward in REWARDS.values():
        assert set(reward.weights) <= set(FEATURES)
        assert sum(reward.weights.values()) == pytest.approx(1.0)
        for text in texts:
            score = reward.score("How do I bake bread?", text)
            assert 0.0 <= score <= 1.0
            assert score == reward.score("How do I bake bread?", text)  # deterministic


def test_polite_concise_prefers_polite_short_and_civil() -> None:
    r = get_reward("polite_concise")
    prompt = "How do I reverse a list?"
    polite = (
        "Happy to help! Use slicing: items[::-1] returns a reversed copy. Hope this helps, thanks."
    )
    plain = "Use slicing: items[::-1] returns a reversed copy of the list you have there today."
    rude = "Obviously use slicing: items[::-1] returns a reversed copy. Hope this helps, thanks."
    rambling = polite + " " + "It also works on strings and tuples of any length. " * 12
    assert r.score(prompt, polite) > r.score(prompt, plain)
    assert r.score(prompt, polite) > r.score(prompt, rude)
    assert r.score(prompt, polite) > r.score(prompt, rambling)
    feats = r.features(prompt, rude)
    assert feats["no_forbidden"] == 0.5 and feats["politeness"] == 1.0


def test_on_topic_counts_the_prompts_content_words() -> None:
    r = get_reward("on_topic")
    prompt = "Explain how photosynthesis turns sunlight into sugar in plants."
    assert prompt_terms(prompt) == ("photosynthesis", "turns", "sunlight", "sugar", "plants")
    on = "Photosynthesis turns sunlight into sugar inside plants."
    off = "The stock market closed higher on Tuesday after a quiet session."
    assert r.features(prompt, on)["prompt_terms"] == 1.0
    assert r.features(prompt, off)["prompt_terms"] == 0.0


def test_structured_rewards_its_keyword_set_and_length_peaks_at_the_target() -> None:
    r = get_reward("structured")
    assert r.features("p", "First mix, then bake; finally eat, for example.")["keywords"] == 0.8
    at_target = " ".join(["word"] * r.target_words)
    assert r.features("p", at_target)["length"] == pytest.approx(1.0)
    assert r.features("p", at_target * 3)["length"] < 0.6


def test_rewards_are_looked_up_by_name_and_version() -> None:
    assert get_reward("on_topic@1") is REWARDS["on_topic"]
    with pytest.raises(Invalid, match="Unknown reward 'kind'; the rewards are: on_topic,"):
        get_reward("kind")
    with pytest.raises(Invalid, match="this version of Tandem has on_topic@1"):
        get_reward("on_topic@2")
