"""Review candidates of span and critique items, and the review page's span lines."""

from __future__ import annotations

import pytest

from app.annotations.models import AnnotationSource
from app.annotations.votes import CritiqueVote, SpanVote
from app.errors import Invalid
from app.quality import review, review_form

HUMAN = AnnotationSource.human


def _span_vote(aid: int, item: int, *spans: tuple[int, int, str]) -> SpanVote:
    marks = [{"start": a, "end": b, "label": c} for a, b, c in spans]
    return SpanVote(aid, item, HUMAN, aid, None, "t", marks, None)  # type: ignore[arg-type]


def _critique_vote(aid: int, item: int, text: str, rating: int | None) -> CritiqueVote:
    return CritiqueVote(aid, item, HUMAN, aid, None, "t", text, None, rating)


def test_critique_agreement_by_rating_gap_else_word_overlap() -> None:
    # Ratings 1, 4, 7: gaps 3, 6, 3 -> mean 4 of 6.
    assert review.critique_agreement([1, 4, 7], ["a", "b", "c"]) == pytest.approx(1 - 4 / 6)
    assert review.critique_agreement([5, 5], ["x", "y"]) == 1.0
    # One rating only: the critiques' words decide ({too, long} vs {too, short}: 1 of 3).
    assert review.critique_agreement([3, None], ["Too long.", "too SHORT"]) == pytest.approx(1 / 3)
    assert review.critique_agreement([None], ["alone"]) == 1.0


def test_candidates_leave_out_single_and_unanimous_items() -> None:
    spans = [
        _span_vote(1, 10, (0, 4, "bad")),
        _span_vote(2, 10, (0, 4, "bad")),  # item 10: identical marks
        _span_vote(3, 11, (0, 4, "bad")),
        _span_vote(4, 11, (2, 6, "bad")),  # item 11: half of each mark shared
        _span_vote(5, 12, (0, 4, "bad")),  # item 12: one annotation
    ]
    [c] = review.span_candidates(spans)
    assert (c.item_id, c.votes, c.answers) == (11, 2, {"3": 1, "4": 1})
    assert c.top_share == pytest.approx(0.5)  # code-point F1: 2 shared of 4 + 4
    critiques = [
        _critique_vote(1, 20, "fine", 6),
        _critique_vote(2, 20, "fine", 6),
        _critique_vote(3, 21, "bad", 1),
        _critique_vote(4, 21, "good", 7),
    ]
    [c] = review.critique_candidates(critiques)
    assert (c.item_id, c.top_share, c.answers) == (21, 0.0, {"3": 1, "4": 7})


def test_span_support_counts_the_votes_touching_each_final_span() -> None:
    votes = [[{"start": 0, "end": 4, "label": "bad"}], [{"start": 3, "end": 9, "label": "good"}]]
    final = [{"start": 5, "end": 8, "label": "good"}, {"start": 2, "end": 3, "label": "bad"}]
    assert review.span_support(final, votes) == [
        {"start": 2, "end": 3, "label": "bad", "votes": 1, "agreement": 0.5},
        {"start": 5, "end": 8, "label": "good", "votes": 1, "agreement": 0.5},
    ]


def test_span_lines_round_trip_and_refuse_garbage() -> None:
    text = "The moon is made of cheese."
    spans = [{"start": 4, "end": 8, "label": "bad#1"}, {"start": 20, "end": 26, "label": "ok"}]
    lines = review_form.span_lines(text, spans)
    assert lines.splitlines()[0] == '4-8 bad#1  # "moon"'
    assert review_form.parse_spans(lines + "\n\n  # a comment line\n") == spans
    with pytest.raises(Invalid, match="line 2"):
        review_form.parse_spans("1-2 bad\nmoon bad")


def test_segments_cut_the_text_at_every_boundary() -> None:
    spans = [{"start": 0, "end": 5, "label": "a"}, {"start": 3, "end": 8, "label": "b"}]
    got = [(s.text, s.labels) for s in review_form.segments("0123456789", spans)]
    assert got == [("012", ("a",)), ("34", ("a", "b")), ("567", ("b",)), ("89", ())]
