"""Annotator trust: Dawid-Skene (EM, crowd-kit) confusion matrices, accuracies and item labels.

Works for any categorical labels; pairwise votes enter as FIRST/SECOND/TIE codes
(labels.pairwise_codes). Worker-side only: crowd-kit and pandas are imported inside
`dawid_skene`, never when this module is imported.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.quality.arrays import FloatArray, IntArray, codes, ints, same_length


@dataclass(frozen=True, slots=True)
class Trust:
    """Dawid-Skene estimates; arrays follow the sorted distinct item and rater ids."""

    items: IntArray
    label: IntArray  # the most probable true label per item
    posterior: FloatArray  # (items, labels): P(true label | votes)
    raters: IntArray
    votes: IntArray  # votes per rater
    accuracy: FloatArray  # per rater: sum over c of prior[c] * P(says c | true c)
    confusion: FloatArray  # (raters, true, said): P(rater says column | true label is row)
    prior: FloatArray  # (labels,)
    iterations: int

    def rater_rows(self) -> list[dict[str, float | int | list[list[float]]]]:
        return [
            {
                "rater": int(self.raters[i]),
                "votes": int(self.votes[i]),
                "accuracy": float(self.accuracy[i]),
                "confusion": self.confusion[i].round(6).tolist(),
            }
            for i in range(len(self.raters))
        ]


def dawid_skene(
    items: npt.ArrayLike,
    raters: npt.ArrayLike,
    labels: npt.ArrayLike,
    n_labels: int,
    *,
    gold_items: npt.ArrayLike | None = None,
    gold_labels: npt.ArrayLike | None = None,
    n_iter: int = 100,
    tol: float = 1e-5,
) -> Trust:
    """Fit Dawid-Skene to votes given as (item, rater, label code) triples.

    Known answers (`gold_items`, `gold_labels`) pin those items' posteriors during EM, so gold
    anchors every annotator's confusion matrix. A label nobody used gets prior 0.
    """
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    it, rt, lab = ints(items, "items"), ints(raters, "raters"), codes(labels, n_labels)
    same_length(items=it, raters=rt, labels=lab)
    item_ids, item_index = np.unique(it, return_inverse=True)
    rater_ids, rater_index = np.unique(rt, return_inverse=True)
    n_items, n_raters = len(item_ids), len(rater_ids)
    if len(it) == 0:
        empty = np.zeros(0)
        return Trust(
            item_ids,
            np.zeros(0, dtype=np.int64),
            np.zeros((0, n_labels)),
            rater_ids,
            np.zeros(0, dtype=np.int64),
            empty,
            np.zeros((0, n_labels, n_labels)),
            np.zeros(n_labels),
            0,
        )
    data = pd.DataFrame(
        {"task": item_index.reshape(-1), "worker": rater_index.reshape(-1), "label": lab}
    )
    true_labels = None
    if gold_items is not None or gold_labels is not None:
        gi = ints(gold_items if gold_items is not None else [], "gold_items")
        gl = codes(gold_labels if gold_labels is not None else [], n_labels, "gold_labels")
        same_length(gold_items=gi, gold_labels=gl)
        pos = np.searchsorted(item_ids, gi)
        known = (pos < n_items) & (item_ids[np.minimum(pos, n_items - 1)] == gi)
        if known.any():
            true_labels = pd.Series(gl[known], index=pos[known])
    with warnings.catch_warnings():
        # crowd-kit 1.4 still passes pandas keywords that pandas 3 deprecates (copy=, inplace=).
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"crowdkit\.")
        model = DawidSkene(n_iter=n_iter, tol=tol).fit(data, true_labels=true_labels)

    probas, priors, errors = model.probas_, model.priors_, model.errors_
    if probas is None or priors is None or errors is None:
        raise RuntimeError("crowd-kit's DawidSkene returned no estimates.")
    posterior = np.zeros((n_items, n_labels))
    cols = np.asarray(probas.columns, dtype=np.int64)
    posterior[np.asarray(probas.index, dtype=np.int64)[:, None], cols[None, :]] = probas.to_numpy()
    prior = np.zeros(n_labels)
    prior[np.asarray(priors.index, dtype=np.int64)] = priors.to_numpy()

    # errors_: rows (worker, said label), columns true label, P(said | true).
    confusion = np.zeros((n_raters, n_labels, n_labels))
    workers = np.asarray(errors.index.get_level_values(0), dtype=np.int64)
    said = np.asarray(errors.index.get_level_values(1), dtype=np.int64)
    true_cols = np.asarray(errors.columns, dtype=np.int64)
    values = errors.to_numpy()
    for j, true in enumerate(true_cols):
        confusion[workers, true, said] = values[:, j]
    accuracy = (prior[None, :] * confusion[:, np.arange(n_labels), np.arange(n_labels)]).sum(axis=1)
    return Trust(
        items=item_ids,
        label=posterior.argmax(axis=1).astype(np.int64),
        posterior=posterior,
        raters=rater_ids,
        votes=np.bincount(rater_index.reshape(-1), minlength=n_raters).astype(np.int64),
        accuracy=accuracy,
        confusion=confusion,
        prior=prior,
        iterations=len(model.loss_history_),
    )
