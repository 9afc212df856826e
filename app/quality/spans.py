"""Span F1, exact and overlap, between two annotations and pooled over every annotator pair.

Offsets are code points (Python string indices), [start, end), as payloads store them. A span
matches another annotation when that annotation has a span with the same label and the same
offsets (exact) or at least one code point in common (overlap). Agreement among annotators is
the pairwise F1 pooled over all ordered pairs of annotations of an item (Hripcsak & Rothschild,
2005): matched spans over all spans, each counted once per other annotator, which makes
precision and recall equal. Items where nobody marked anything carry no information.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from app.quality.arrays import FloatArray, IntArray, ints, same_length
from app.quality.bootstrap import N_BOOT, Estimate, bootstrap, finite, ratio

Mode = Literal["exact", "overlap"]
MODES: tuple[Mode, ...] = ("exact", "overlap")

SpanLike = Mapping[str, Any] | tuple[int, int, str]


def _triple(span: SpanLike) -> tuple[int, int, str]:
    if isinstance(span, Mapping):
        start, end, label = span["start"], span["end"], span["label"]
    else:
        start, end, label = span
    if not (isinstance(start, int) and isinstance(end, int)) or not 0 <= start < end:
        raise ValueError(f"a span needs 0 <= start < end, got [{start}, {end}).")
    return start, end, str(label)


@dataclass(frozen=True, slots=True)
class SpanScore:
    precision: float | None
    recall: float | None
    f1: float | None


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        # One side marked nothing: the other side's precision or recall is 0, and so is F1.
        return None if precision is None and recall is None else 0.0
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def span_f1(predicted: Iterable[SpanLike], reference: Iterable[SpanLike], mode: Mode) -> SpanScore:
    """Precision, recall and F1 of one annotation's spans against another's.

    Precision: the share of predicted spans that match a reference span; recall: the share of
    reference spans matched by a predicted one; each None when its side has no spans. F1 is 0
    when one side is empty, None when both are (nothing to compare).
    """
    if mode not in MODES:
        raise ValueError("mode must be 'exact' or 'overlap'.")
    pred, ref = sorted({_triple(s) for s in predicted}), sorted({_triple(s) for s in reference})

    def hit(span: tuple[int, int, str], others: list[tuple[int, int, str]]) -> bool:
        if mode == "exact":
            return span in others
        return any(o[2] == span[2] and o[0] < span[1] and span[0] < o[1] for o in others)

    precision = sum(hit(s, ref) for s in pred) / len(pred) if pred else None
    recall = sum(hit(s, pred) for s in ref) / len(ref) if ref else None
    return SpanScore(precision, recall, _f1(precision, recall))


@dataclass(frozen=True, slots=True)
class SpanTable:
    """Annotations and their spans, columnar.

    Annotation k is by `rater[k]` on `item[k]` (an annotation may have no spans); span s
    belongs to annotation `owner[s]` and has `label` as a code (see `labels`).
    """

    item: IntArray
    rater: IntArray
    owner: IntArray
    start: IntArray
    end: IntArray
    label: IntArray
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        same_length(item=self.item, rater=self.rater)
        same_length(owner=self.owner, start=self.start, end=self.end, label=self.label)
        if len(self.owner) and (self.owner.min() < 0 or self.owner.max() >= len(self.item)):
            raise ValueError("owner must index the annotations.")
        if len(self.start) and (self.start.min() < 0 or np.any(self.end <= self.start)):
            raise ValueError("a span needs 0 <= start < end.")

    @classmethod
    def from_annotations(
        cls, annotations: Iterable[tuple[int, int, Iterable[SpanLike]]]
    ) -> SpanTable:
        """From (item, rater, spans) per annotation; spans as stored ({start, end, label})."""
        items: list[int] = []
        raters: list[int] = []
        owner: list[int] = []
        starts: list[int] = []
        ends: list[int] = []
        labels: list[int] = []
        codes: dict[str, int] = {}
        for k, (item, rater, spans) in enumerate(annotations):
            items.append(item)
            raters.append(rater)
            for span in spans:
                start, end, label = _triple(span)
                owner.append(k)
                starts.append(start)
                ends.append(end)
                labels.append(codes.setdefault(label, len(codes)))
        return cls(
            ints(items, "items"),
            ints(raters, "raters"),
            ints(owner, "owner"),
            ints(starts, "start"),
            ints(ends, "end"),
            ints(labels, "label"),
            tuple(codes),
        )


def _distinct_spans(t: SpanTable) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """owner, start, end, label with an annotation's repeated identical spans kept once."""
    if len(t.owner) == 0:
        return t.owner, t.start, t.end, t.label
    rows = np.unique(np.column_stack([t.owner, t.start, t.end, t.label]), axis=0)
    return rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]


def _matched(
    item: IntArray, owner: IntArray, start: IntArray, end: IntArray, label: IntArray, mode: Mode
) -> IntArray:
    """Per span: how many other annotations of its item have a matching span."""
    n = len(owner)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if mode == "exact":
        _, inverse, count = np.unique(
            np.column_stack([item, start, end, label]),
            axis=0,
            return_inverse=True,
            return_counts=True,
        )
        return (count[inverse.reshape(-1)] - 1).astype(np.int64)
    # Overlap: sort by (item, label, start); span i overlaps the later spans j of its group with
    # start_j < end_i, a contiguous run found by searchsorted, so only overlapping pairs are made.
    order = np.lexsort((start, label, item))
    it, ow, st, en, lb = item[order], owner[order], start[order], end[order], label[order]
    _, group = np.unique(np.column_stack([it, lb]), axis=0, return_inverse=True)
    group = group.reshape(-1).astype(np.int64)
    scale = int(en.max()) + 1
    key = group * scale + st
    stop = np.searchsorted(key, group * scale + en, side="left")
    partners = stop - np.arange(n) - 1
    left = np.repeat(np.arange(n), partners)
    offset = np.arange(len(left)) - np.repeat(np.cumsum(partners) - partners, partners)
    right = left + 1 + offset
    other = ow[left] != ow[right]
    left, right = left[other], right[other]
    # Both directions: (span, the other annotation) pairs, each counted once per span.
    span_ann = np.unique(np.column_stack([np.r_[left, right], np.r_[ow[right], ow[left]]]), axis=0)
    matched_sorted = np.bincount(span_ann[:, 0], minlength=n)
    matched = np.empty(n, dtype=np.int64)
    matched[order] = matched_sorted
    return matched


def agreement_rows(table: SpanTable, mode: Mode) -> tuple[IntArray, FloatArray]:
    """Per item annotated twice or more (sorted ids): [matched, total] of pooled pairwise F1."""
    if mode not in MODES:
        raise ValueError("mode must be 'exact' or 'overlap'.")
    if len(np.unique(np.column_stack([table.item, table.rater]), axis=0)) != len(table.item):
        raise ValueError("a rater has more than one annotation on an item.")
    owner, start, end, label = _distinct_spans(table)
    matched = _matched(table.item[owner], owner, start, end, label, mode)
    items, ann_item = np.unique(table.item, return_inverse=True)
    ann_item = ann_item.reshape(-1)
    m = np.bincount(ann_item, minlength=len(items))
    spans_per_ann = np.bincount(owner, minlength=len(table.item))
    total = np.bincount(ann_item, weights=spans_per_ann * (m[ann_item] - 1), minlength=len(items))
    hits = np.bincount(ann_item[owner], weights=matched, minlength=len(items))
    keep = m >= 2
    return items[keep], np.column_stack([hits[keep], total[keep]])


def span_agreement(
    table: SpanTable, mode: Mode = "exact", *, n_boot: int = N_BOOT, seed: int = 0
) -> Estimate:
    """Pairwise F1 pooled over the pairs of annotators of each item; bootstrap over items."""
    _, rows = agreement_rows(table, mode)
    return bootstrap(rows, ratio, n_boot=n_boot, seed=seed)


@dataclass(frozen=True, slots=True)
class SpanVersus:
    """Micro precision/recall over items, and F1 with its bootstrap interval."""

    precision: float | None
    recall: float | None
    f1: Estimate


def _f1_from_sums(sums: FloatArray) -> FloatArray:
    """F1 from summed [matched predicted, predicted, matched reference, reference] rows."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = sums[:, 0] / sums[:, 1]
        r = sums[:, 2] / sums[:, 3]
        f = 2 * p * r / (p + r)
    some = (sums[:, 1] > 0) | (sums[:, 3] > 0)
    zero = some & ((sums[:, 0] == 0) | (sums[:, 2] == 0))
    return np.asarray(np.where(zero, 0.0, np.where(some, f, np.nan)))


def span_f1_versus(
    predicted: SpanTable,
    reference: SpanTable,
    mode: Mode = "exact",
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> SpanVersus:
    """A predictor's spans (a judge's, one annotation per item) against a reference (gold, a
    human consensus), micro-averaged over the items both have. Raters are ignored."""
    if mode not in MODES:
        raise ValueError("mode must be 'exact' or 'overlap'.")
    for name, t in (("predicted", predicted), ("reference", reference)):
        if len(np.unique(t.item)) != len(t.item):
            raise ValueError(f"{name} must have one annotation per item.")
    if bool(predicted.labels) != bool(reference.labels):
        raise ValueError("give label names for both tables or for neither.")
    common = np.intersect1d(predicted.item, reference.item)
    names = sorted(set(predicted.labels) | set(reference.labels))
    parts: list[tuple[IntArray, IntArray, IntArray, IntArray, IntArray]] = []
    offset = 0
    for t in (predicted, reference):
        keep_ann = np.isin(t.item, common)
        new_index = np.cumsum(keep_ann) - 1 + offset
        offset += int(keep_ann.sum())
        owner, start, end, label = _distinct_spans(t)
        keep = keep_ann[owner]
        if t.labels:  # codes are per table: translate them through the names
            label = np.array([names.index(x) for x in t.labels], dtype=np.int64)[label]
        kept = owner[keep]
        parts.append((t.item[kept], new_index[kept], start[keep], end[keep], label[keep]))
    (pi, po, ps, pe, pl), (ri, ro, rs, re, rl) = parts
    item: IntArray = np.concatenate([pi, ri])
    matched = _matched(item, np.r_[po, ro], np.r_[ps, rs], np.r_[pe, re], np.r_[pl, rl], mode)
    matched = np.minimum(matched, 1)  # one other annotation: matched or not
    index = np.searchsorted(common, item)
    n_pred = len(po)
    c = len(common)
    rows = np.column_stack(
        [
            np.bincount(index[:n_pred], weights=matched[:n_pred], minlength=c),
            np.bincount(index[:n_pred], minlength=c),
            np.bincount(index[n_pred:], weights=matched[n_pred:], minlength=c),
            np.bincount(index[n_pred:], minlength=c),
        ]
    ).astype(np.float64)
    sums = rows.sum(axis=0)
    f1 = bootstrap(rows, _f1_from_sums, n_boot=n_boot, seed=seed)
    return SpanVersus(
        precision=finite(sums[0] / sums[1]) if sums[1] else None,
        recall=finite(sums[2] / sums[3]) if sums[3] else None,
        f1=f1,
    )
