"""Reading judges' answers per kind: what becomes a vote, and what stays unparsed."""

from __future__ import annotations

import math

import pytest

from app.inference.base import Completion, TokenLogprob
from app.judges import parsing
from app.judges.jobs import _queue
from app.projects.rules import TaskKind, TaskRules

PAIR = TaskRules(1, TaskKind.pairwise, (), (), True, 900)
NO_TIES = TaskRules(1, TaskKind.pairwise, (), (), False, 900)
RANK = TaskRules(1, TaskKind.ranking, (), (), True, 900)
SPAN = TaskRules(1, TaskKind.span, ("bad", "vague"), (), True, 900)
CRIT = TaskRules(1, TaskKind.critique, (), (), True, 900)
TEXTS = {11: "first", 12: "second"}


def said(text: str, logprobs: tuple[TokenLogprob, ...] | None = None) -> Completion:
    return Completion(text, 10, 1, 0.01, "m", logprobs=logprobs)


def label(token: str, p: float, other: str) -> tuple[TokenLogprob, ...]:
    return (TokenLogprob(token, math.log(p), ((token, math.log(p)), (other, math.log(1 - p)))),)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("A", "A"),
        (" B", "B"),
        ("**A**", "A"),
        ("Response B.", "B"),
        ("Answer: A", "A"),
        ("The answer is A", None),
        ("C", None),
        ("", None),
        ("Both are good", None),
    ],
)
def test_labels_are_read_from_the_start_of_an_answer(text: str, found: str | None) -> None:
    assert parsing.read_label(text, ("A", "B")) == found


def test_pairwise_probability_comes_from_both_orders_logprobs() -> None:
    # Order 1 shows (11, 12) and says A at 0.8; order 2 shows (12, 11) and says B at 0.6.
    answers = [said("A", label("A", 0.8, "B")), said("B", label("B", 0.6, "A"))]
    p = parsing.parse_pairwise(answers, [[11, 12], [12, 11]], PAIR, TEXTS, "low_confidence")
    assert p.status == "parsed" and p.consistent is True
    assert p.probability == pytest.approx((0.8 + 0.6) / 2)
    assert p.payload is not None and p.payload["preferred"] == 11


def test_without_logprobs_the_labels_decide_the_probability() -> None:
    answers = [said("B"), said("A")]  # both name 12
    p = parsing.parse_pairwise(answers, [[11, 12], [12, 11]], PAIR, TEXTS, "low_confidence")
    assert (p.status, p.probability, p.payload and p.payload["preferred"]) == ("parsed", 0.0, 12)


def test_an_inconsistent_swap_is_never_guessed() -> None:
    answers = [said("A"), said("A")]  # the first shown, both times: 11 then 12
    low = parsing.parse_pairwise(answers, [[11, 12], [12, 11]], PAIR, TEXTS, "low_confidence")
    assert (low.status, low.payload, low.probability, low.consistent) == (
        "inconsistent",
        None,
        0.5,
        False,
    )
    tie = parsing.parse_pairwise(answers, [[11, 12], [12, 11]], PAIR, TEXTS, "tie")
    assert tie.status == "parsed" and tie.payload is not None and tie.payload["tie"] is True
    # Where ties are not allowed, the tie rule falls back to no vote.
    none = parsing.parse_pairwise(answers, [[11, 12], [12, 11]], NO_TIES, TEXTS, "tie")
    assert none.status == "inconsistent" and none.payload is None


def test_one_unreadable_order_makes_the_item_unparsed() -> None:
    answers = [said("A"), said("I cannot decide")]
    p = parsing.parse_pairwise(answers, [[11, 12], [12, 11]], PAIR, TEXTS, "tie")
    assert p.status == "unparsed" and p.payload is None and "I cannot decide" in (p.error or "")


@pytest.mark.parametrize(
    ("text", "order"),
    [
        ("B > A > C", [2, 1, 3]),
        ("C, A, B", [3, 1, 2]),
        ("Ranking:\nA > C > B\nbecause", [1, 3, 2]),
        ("A > B", None),  # not all of them
        ("A > A > B", None),  # one twice
        ("A > B > D", None),  # not a label
    ],
)
def test_rankings_must_be_permutations(text: str, order: list[int] | None) -> None:
    p = parsing.parse_ranking(said(text), [1, 2, 3], RANK, ["A", "B", "C"])
    assert (p.payload or {}).get("order") == order
    assert p.status == ("parsed" if order else "unparsed")


def test_span_quotes_are_located_in_code_points_and_repeats_move_on() -> None:
    text = "日本 is wrong; wrong again."
    answer = said(
        '```json\n{"spans": [{"quote": "wrong", "label": "bad"},'
        ' {"quote": "wrong", "label": "vague"}, {"quote": "日本", "label": "bad"}]}\n```'
    )
    p = parsing.parse_span(answer, 7, text, SPAN)
    assert p.status == "parsed" and p.payload is not None
    assert p.payload["spans"] == [
        {"start": 0, "end": 2, "label": "bad"},
        {"start": 6, "end": 11, "label": "bad"},
        {"start": 13, "end": 18, "label": "vague"},
    ]


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ('{"spans": [{"quote": "not there", "label": "bad"}]}', "not in the response"),
        ('{"spans": [{"quote": "wrong", "label": "rude"}]}', "not one of"),
        ('{"spans": [{"quote": "wrong wrong wrong", "label": "bad"}]}', "not in the response"),
        ("no JSON at all", "no JSON object"),
        ('{"spans": "wrong"}', "no JSON object"),
    ],
)
def test_span_answers_that_do_not_fit_are_unparsed_never_stretched(answer: str, why: str) -> None:
    p = parsing.parse_span(said(answer), 7, "it is wrong", SPAN)
    assert p.status == "unparsed" and why in (p.error or ""), p.error


def test_critiques_need_text_and_a_rating_in_range() -> None:
    ok = parsing.parse_critique(
        said('Sure! {"critique": "Too short.", "rewrite": "Longer.", "rating": "3"}'), 5, CRIT, 7
    )
    assert ok.payload == {
        "response_id": 5,
        "critique": "Too short.",
        "rewrite": "Longer.",
        "rating": 3,
    }
    for bad in ('{"critique": "", "rating": 3}', '{"critique": "x", "rating": 9}', "Good."):
        assert parsing.parse_critique(said(bad), 5, CRIT, 7).status == "unparsed"


def test_vllm_judges_go_to_the_gpu_queue_and_servers_to_default() -> None:
    assert _queue({"backend": "vllm"}) == "gpu"
    assert _queue({"backend": "openai"}) == "default"
    assert _queue({"backend": "simulated"}) == "default"
