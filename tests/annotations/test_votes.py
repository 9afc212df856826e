"""The vote reader: typed records per kind, filters, and the streamed per-item form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection

from app.annotations.models import AnnotationSource
from app.annotations.votes import (
    CRITIQUE,
    FULL,
    PAIRWISE,
    RANKING,
    SPAN,
    CritiqueVote,
    FullVote,
    PairwiseVote,
    RankingVote,
    Response,
    SpanVote,
    VoteFilter,
    VoteKind,
    count_items,
    iter_item_votes,
    iter_votes,
    read_votes,
    vote_kind,
)
from app.db import get_engine
from app.errors import NotFound
from app.projects.rules import TaskKind
from tests.factories import create_annotation, create_item, create_project, create_user

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UTC_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def conn() -> Iterator[Connection]:
    with get_engine().connect() as c, c.begin():
        yield c


def test_pairwise_votes_are_typed_records_resolved_to_response_ids(conn: Connection) -> None:
    ann = create_user()
    project = create_project(TaskKind.pairwise, members=[ann], aspects=["honesty"], overlap=2)
    item = create_item(project)
    first, second = item.response_ids
    human = create_annotation(
        item,
        user=ann,
        shown_order=[second, first],
        answer={"choice": "a", "strength": 2, "aspects": {"honesty": "b"}},
        created_at=T0,
    )
    ai = create_annotation(item, judge_id=7, answer={"choice": "tie"})

    votes = read_votes(conn, project.id, PAIRWISE)

    assert votes == [
        PairwiseVote(
            annotation_id=human.id,
            item_id=item.id,
            source=AnnotationSource.human,
            annotator_id=ann.id,
            judge_id=None,
            created_at="2026-03-01T12:00:00.000000Z",
            shown_first=second,
            preferred=second,  # "a" was the response shown first
            strength=2,
            aspects={"honesty": first},
        ),
        PairwiseVote(
            annotation_id=ai.id,
            item_id=item.id,
            source=AnnotationSource.ai,
            annotator_id=None,
            judge_id=7,
            created_at=votes[1].created_at,
            shown_first=first,
            preferred=None,
            strength=None,
            aspects=None,  # judged no aspect
        ),
    ]
    assert votes[0].source is AnnotationSource.human and votes[1].source is AnnotationSource.ai
    assert UTC_STAMP.match(votes[1].created_at)


def test_each_kind_reads_its_own_fields(conn: Connection) -> None:
    ann = create_user()
    ranking = create_project(TaskKind.ranking, members=[ann])
    r_item = create_item(ranking)
    ids = r_item.response_ids
    create_annotation(r_item, user=ann, answer={"order": [ids[2], ids[0], ids[3], ids[1]]})
    [r_vote] = read_votes(conn, ranking.id, RANKING)
    assert isinstance(r_vote, RankingVote) and r_vote.order == [ids[2], ids[0], ids[3], ids[1]]
    assert r_vote.shown_order == ids

    span = create_project(TaskKind.span, members=[ann])
    s_item = create_item(span, ["0123456789"])
    marks = [{"start": 5, "end": 7, "label": "good"}, {"start": 0, "end": 3, "label": "bad"}]
    create_annotation(s_item, user=ann, answer={"spans": marks, "overall": 4})
    create_annotation(s_item, judge_id=1, payload={"response_id": s_item.response_ids[0]})
    human_span, ai_span = read_votes(conn, span.id, SPAN)
    assert isinstance(human_span, SpanVote)
    assert human_span.spans == [
        {"start": 0, "end": 3, "label": "bad"},
        {"start": 5, "end": 7, "label": "good"},
    ]
    assert human_span.overall == 4
    assert (ai_span.spans, ai_span.overall) == ([], None)  # a payload without spans reads as none

    critique = create_project(TaskKind.critique, members=[ann])
    c_item = create_item(critique)
    create_annotation(
        c_item, user=ann, answer={"critique": "too long", "rating": 3}, time_spent_ms=900
    )
    [c_vote] = read_votes(conn, critique.id, CRITIQUE)
    assert isinstance(c_vote, CritiqueVote)
    assert (c_vote.critique, c_vote.rewrite, c_vote.rating) == ("too long", None, 3)

    [full] = read_votes(conn, critique.id, FULL)
    assert isinstance(full, FullVote)
    assert full.payload == {
        "response_id": c_item.response_ids[0],
        "critique": "too long",
        "rewrite": None,
        "rating": 3,
    }
    assert (full.time_spent_ms, full.over_quota, full.schema_version) == (900, False, 1)
    assert full.shown_order == c_item.response_ids
    assert full.assignment_id is not None and full.gold_score is None


@pytest.fixture
def pairwise_votes() -> dict[str, Any]:
    """Two items; three humans and two judges vote at one-minute steps, in a known order."""
    humans = [create_user() for _ in range(3)]
    project = create_project(TaskKind.pairwise, members=humans, overlap=3, aspects=["honesty"])
    items = [
        create_item(project, metadata={"lang": "en"}),
        create_item(project, metadata={"lang": "de"}, is_gold=True),
    ]
    ids: list[int] = []
    step = 0
    for item in items:
        for n, user in enumerate(humans):
            aspects = {"honesty": "b"} if n == 0 else {}
            answer = {"choice": "ab"[n % 2], "aspects": aspects}
            at = T0 + timedelta(minutes=step)
            ids.append(create_annotation(item, user=user, answer=answer, created_at=at).id)
            step += 1
        for judge in (1, 2):
            at = T0 + timedelta(minutes=step)
            ids.append(
                create_annotation(item, judge_id=judge, answer={"choice": "a"}, created_at=at).id
            )
            step += 1
    return {"project": project, "items": items, "humans": humans, "ids": ids}


def _ids(votes: list[PairwiseVote]) -> list[int]:
    return [v.annotation_id for v in votes]


def test_filters_select_by_source_author_item_time_and_id(
    conn: Connection, pairwise_votes: dict[str, Any]
) -> None:
    pid, ids = pairwise_votes["project"].id, pairwise_votes["ids"]
    humans, items = pairwise_votes["humans"], pairwise_votes["items"]

    def read(**f: Any) -> list[int]:
        return _ids(read_votes(conn, pid, PAIRWISE, VoteFilter(**f)))

    assert read() == ids
    assert read(source=AnnotationSource.human) == ids[0:3] + ids[5:8]
    assert read(source=AnnotationSource.ai) == ids[3:5] + ids[8:10]
    # Annotators and judges together: votes by any of them.
    assert read(annotator_ids=[humans[1].id], judge_ids=[2]) == [ids[1], ids[4], ids[6], ids[9]]
    assert read(item_ids=[items[1].id]) == ids[5:]
    assert (
        read(created_after=T0 + timedelta(minutes=2), created_before=T0 + timedelta(minutes=4))
        == ids[2:4]
    )
    assert read(max_annotation_id=ids[3]) == ids[:4]
    assert read(gold=False) == ids[:5] and read(gold=True) == ids[5:]
    assert read(item_metadata={"lang": "de"}) == ids[5:]
    assert read(item_metadata={"lang": "fr"}) == []


def test_the_aspect_filter_reads_each_votes_verdict_on_that_aspect(
    conn: Connection, pairwise_votes: dict[str, Any]
) -> None:
    pid, ids, items = pairwise_votes["project"].id, pairwise_votes["ids"], pairwise_votes["items"]
    votes = read_votes(conn, pid, PAIRWISE, VoteFilter(aspect="honesty"))
    # Only the first annotator judged honesty: "b" (the second response, shown in import order).
    assert _ids(votes) == [ids[0], ids[5]]
    assert [v.preferred for v in votes] == [item.response_ids[1] for item in items]
    with pytest.raises(ValueError, match="aspects are pairwise"):
        read_votes(conn, pid, FULL, VoteFilter(aspect="honesty"))


@pytest.mark.parametrize("batch", [1, 1000])
def test_streamed_items_carry_the_same_votes_as_the_flat_read(
    conn: Connection, pairwise_votes: dict[str, Any], batch: int
) -> None:
    pid, items = pairwise_votes["project"].id, pairwise_votes["items"]
    for f in (VoteFilter(), VoteFilter(source=AnnotationSource.ai), VoteFilter(gold=False)):
        streamed = [i for b in iter_item_votes(conn, pid, PAIRWISE, f, batch=batch) for i in b]
        assert [v for i in streamed for v in i.votes] == read_votes(conn, pid, PAIRWISE, f)
        assert list(iter_votes(conn, pid, PAIRWISE, f, batch=batch)) == read_votes(
            conn, pid, PAIRWISE, f
        )
    [first, second] = [i for b in iter_item_votes(conn, pid, PAIRWISE) for i in b]
    assert (first.id, second.id) == (items[0].id, items[1].id)
    assert first.responses == [
        Response(rid, None, text, f"model-{n}")
        for n, (rid, text) in enumerate(zip(items[0].response_ids, items[0].texts, strict=True))
    ]
    assert (first.metadata, first.is_gold, second.is_gold) == ('{"lang": "en"}', False, True)


def test_items_without_a_vote_that_passes_are_left_out(
    conn: Connection, pairwise_votes: dict[str, Any]
) -> None:
    project, humans = pairwise_votes["project"], pairwise_votes["humans"]
    create_item(project)  # no votes at all
    only_first = VoteFilter(annotator_ids=[humans[0].id], gold=False)
    [[item]] = list(iter_item_votes(conn, project.id, PAIRWISE, only_first))
    assert item.id == pairwise_votes["items"][0].id and len(item.votes) == 1
    # Progress counts the items the item conditions let through, votes or not.
    assert count_items(conn, project.id, only_first) == 2
    assert count_items(conn, project.id, VoteFilter()) == 3


def test_a_kind_the_project_does_not_have_is_refused(conn: Connection) -> None:
    project = create_project(TaskKind.pairwise)
    assert vote_kind(TaskKind.pairwise) is PAIRWISE
    assert read_votes(conn, project.id, FULL) == []  # every kind has full records
    kinds: list[VoteKind[Any]] = [RANKING, SPAN, CRITIQUE]
    for kind in kinds:
        with pytest.raises(ValueError, match=f"no {kind.name} votes"):
            read_votes(conn, project.id, kind)
    with pytest.raises(NotFound):
        read_votes(conn, project.id + 1, PAIRWISE)


def test_a_record_type_must_match_the_columns_it_is_read_from() -> None:
    with pytest.raises(TypeError, match="RankingVote: its fields do not match"):
        VoteKind("broken", RankingVote, ("a.payload->'order'",), frozenset({TaskKind.ranking}))
