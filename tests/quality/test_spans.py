import pytest

from app.quality.spans import SpanTable, agreement_rows, span_agreement, span_f1, span_f1_versus


def test_span_f1_exact_and_overlap_by_hand() -> None:
    predicted = [(0, 5, "error"), (10, 12, "style"), (20, 22, "error")]
    reference = [(0, 5, "error"), (9, 11, "style")]
    exact = span_f1(predicted, reference, "exact")
    assert (exact.precision, exact.recall) == (pytest.approx(1 / 3), pytest.approx(1 / 2))
    assert exact.f1 == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    overlap = span_f1(predicted, reference, "overlap")
    assert (overlap.precision, overlap.recall) == (pytest.approx(2 / 3), 1.0)
    assert overlap.f1 == pytest.approx(0.8)


def test_overlap_needs_the_same_label_and_a_shared_code_point() -> None:
    assert span_f1([(0, 5, "a")], [(0, 5, "b")], "overlap").f1 == 0.0
    assert span_f1([(0, 5, "a")], [(5, 9, "a")], "overlap").f1 == 0.0  # [0,5) and [5,9) touch
    assert span_f1([(0, 5, "a")], [(4, 9, "a")], "overlap").f1 == 1.0


def test_empty_sides() -> None:
    assert span_f1([], [], "exact").f1 is None
    assert span_f1([], [(0, 1, "a")], "exact").f1 == 0.0
    assert span_f1([(0, 1, "a")], [], "overlap").f1 == 0.0


def test_offsets_are_code_points() -> None:
    text = "ok 😀 wrong fact here"
    quote = "wrong fact"
    start = text.index(quote)  # a code point offset: the emoji counts once
    utf16_start = len(text[:start].encode("utf-16-le")) // 2  # the emoji counts twice
    assert utf16_start == start + 1
    by_code_points = [{"start": start, "end": start + len(quote), "label": "fact"}]
    by_utf16 = [{"start": utf16_start, "end": utf16_start + len(quote), "label": "fact"}]
    assert span_f1(by_code_points, by_code_points, "exact").f1 == 1.0
    assert span_f1(by_code_points, by_utf16, "exact").f1 == 0.0
    assert span_f1(by_code_points, by_utf16, "overlap").f1 == 1.0


def three_annotators() -> SpanTable:
    return SpanTable.from_annotations(
        [
            (1, 10, [(0, 5, "x"), (10, 12, "y")]),
            (1, 11, [(0, 5, "x"), (9, 11, "y"), (0, 5, "x")]),  # a repeated span counts once
            (1, 12, []),  # marked nothing: still a pair partner
            (2, 10, [(0, 3, "x")]),  # annotated once: no pair
            (3, 10, []),
            (3, 11, []),  # nobody marked anything: no information
        ]
    )


def test_pooled_pairwise_agreement_by_hand() -> None:
    table = three_annotators()
    # Item 1: 3 annotators with 2, 2, 0 spans; every span is compared with the 2 others:
    # total = (2 + 2 + 0) * 2 = 8. Exact: the two x spans match each other -> 2 of 8.
    # Overlap: the y spans [10,12) and [9,11) overlap too -> 4 of 8.
    items, exact = agreement_rows(table, "exact")
    assert items.tolist() == [1, 3]
    assert exact.tolist() == [[2.0, 8.0], [0.0, 0.0]]
    assert agreement_rows(table, "overlap")[1].tolist() == [[4.0, 8.0], [0.0, 0.0]]
    assert span_agreement(table, "exact").value == pytest.approx(0.25)
    assert span_agreement(table, "overlap").value == pytest.approx(0.5)
    assert span_agreement(table, "overlap").n == 2


def test_pooled_agreement_of_two_annotators_is_their_f1() -> None:
    a = [(0, 4, "x"), (6, 9, "x"), (12, 15, "y"), (20, 30, "y")]
    b = [(1, 3, "x"), (12, 15, "y"), (40, 41, "y")]
    table = SpanTable.from_annotations([(1, 1, a), (1, 2, b)])
    for mode in ("exact", "overlap"):
        pooled = span_agreement(table, mode).value  # type: ignore[arg-type]
        pair = span_f1(a, b, mode)  # type: ignore[arg-type]
        # Pooled over the two ordered pairs: (matched_a + matched_b) / (|a| + |b|).
        assert pair.precision is not None and pair.recall is not None
        assert pooled == pytest.approx((pair.precision * 4 + pair.recall * 3) / 7)


def test_overlap_matching_counts_each_other_annotator_once_per_span() -> None:
    # Annotator 1's long span overlaps two spans of annotator 2: matched once, not twice.
    table = SpanTable.from_annotations(
        [(1, 1, [(0, 20, "x")]), (1, 2, [(0, 5, "x"), (10, 15, "x")])]
    )
    assert agreement_rows(table, "overlap")[1].tolist() == [[3.0, 3.0]]


def test_judge_against_a_reference_micro_averaged_over_items() -> None:
    judge = SpanTable.from_annotations(
        [(1, 0, [(0, 5, "x"), (10, 12, "y")]), (2, 0, [(3, 4, "y")]), (9, 0, [(0, 1, "x")])]
    )
    gold = SpanTable.from_annotations(
        [(1, 1, [(9, 11, "y"), (0, 5, "x"), (20, 25, "x")]), (2, 1, [])]
    )
    exact = span_f1_versus(judge, gold, "exact")
    assert exact.precision == pytest.approx(1 / 3)  # item 9 has no reference: left out
    assert exact.recall == pytest.approx(1 / 3)
    assert exact.f1.value == pytest.approx(1 / 3)
    assert exact.f1.n == 2
    overlap = span_f1_versus(judge, gold, "overlap")
    assert (overlap.precision, overlap.recall) == (pytest.approx(2 / 3), pytest.approx(2 / 3))


def test_label_codes_are_matched_by_name_across_tables() -> None:
    judge = SpanTable.from_annotations([(1, 0, [(0, 2, "b"), (5, 7, "a")])])
    gold = SpanTable.from_annotations([(1, 1, [(5, 7, "a"), (0, 2, "b")])])
    assert judge.labels == ("b", "a") and gold.labels == ("a", "b")
    assert span_f1_versus(judge, gold, "exact").f1.value == 1.0


def test_bad_spans_and_repeated_annotations_are_refused() -> None:
    with pytest.raises(ValueError, match="start < end"):
        SpanTable.from_annotations([(1, 1, [(5, 5, "x")])])
    with pytest.raises(ValueError, match="more than one annotation"):
        agreement_rows(SpanTable.from_annotations([(1, 1, []), (1, 1, [])]), "exact")
    with pytest.raises(ValueError, match="mode"):
        span_f1([], [], "fuzzy")  # type: ignore[arg-type]
