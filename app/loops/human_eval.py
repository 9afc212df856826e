"""A policy's win rate by humans, on a small sample: evaluation items in the loop's project.

For each sampled prompt an evaluation item shows the candidate policy's answer (iteration i)
and the baseline's (iteration 0, or the previous one) side by side, in an order drawn from the
seed, so annotators cannot learn which side is which. The items are ordinary pairwise items
for the assignment engine (humans label them in the browser as usual) but carry
`metadata.tandem_eval` (app.annotations.votes.EVAL_KEY): exports leave them out unless asked
(`eval_items=exclude` is the default), so labels that measure a policy never train the next
one. Their responses name the versions that wrote them (`responses.model_version_id`), like
generated items.

In a project with routing the items are released to humans directly (routing `human`, the
project's overlap as their target): a judge's vote is not a human evaluation.

The win rate is per item: the candidate wins an item when most of its human votes prefer the
candidate's answer, ties it on an even split or a tie vote, loses it otherwise; the share
(ties half) comes with Wilson's 95% interval (app.simulate.gold_eval.win_interval).

Writes run in the caller's transaction; creating the items twice (a re-delivered job) adds
nothing, because their external ids are fixed by (loop, iteration, index). The loops' evaluate
step calls `create_items` and GET /loops/{id} calls `win_rate` (the interface agreed in the
helpers' notes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.annotations.votes import EVAL_KEY
from app.errors import Invalid, NotFound
from app.items.importer import import_rows
from app.projects.models import Project
from app.projects.rules import TaskKind
from app.simulate.draws import Draws
from app.simulate.gold_eval import WinRate, win_interval


@dataclass(frozen=True, slots=True)
class EvalPair:
    """One prompt with the candidate's and the baseline's answers to it, and the versions
    that wrote them (when known: they go on the responses, for lineage)."""

    prompt: str
    candidate: str
    baseline: str
    candidate_model_id: int | None = None
    baseline_model_id: int | None = None


@dataclass(frozen=True, slots=True)
class HumanEval:
    """Where a human evaluation stands: items, how many have human votes, and the win rate
    over those (None until one has)."""

    items: int
    labelled: int
    win: WinRate | None

    @property
    def pending(self) -> int:
        return self.items - self.labelled

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "labelled": self.labelled,
            "pending": self.pending,
            "win": None if self.win is None else self.win.as_dict(),
        }


def external_id(loop_id: int, iteration: int, index: int) -> str:
    return f"eval-{loop_id}-{iteration}-{index}"


def _policies(session: Session, loop_id: int, iteration: int) -> tuple[int | None, int | None]:
    """(the iteration's new policy, iteration 0's policy) of a loop, where recorded."""
    from app.loops.models import LoopIteration

    rows = {
        it.iteration: it
        for it in session.scalars(
            select(LoopIteration).where(
                LoopIteration.loop_id == loop_id, LoopIteration.iteration.in_((1, iteration))
            )
        )
    }
    candidate = rows[iteration].new_policy_model_id if iteration in rows else None
    baseline = rows[1].policy_model_id if 1 in rows else None
    return candidate, baseline


def create_items(
    session: Session,
    *,
    loop_id: int,
    iteration: int,
    project_id: int,
    pairs: Sequence[EvalPair | tuple[str, str, str]],
    seed: int,
    candidate_model_id: int | None = None,
    baseline_model_id: int | None = None,
    priority: int = 0,
) -> list[int]:
    """Add one evaluation item per pair (answers in a seeded random order), released to
    humans; returns the item ids, in pair order (a pair with an empty answer makes none). A
    second call with the same loop and iteration adds nothing and returns the same ids. Model
    ids: the pair's own, else these arguments, else the loop's (the iteration's new policy
    against iteration 0's)."""
    if candidate_model_id is None and baseline_model_id is None:
        candidate_model_id, baseline_model_id = _policies(session, loop_id, iteration)
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"Project {project_id} does not exist.")
    if project.kind is not TaskKind.pairwise:
        raise Invalid(
            f"A human evaluation compares two answers: project {project_id} is"
            f" {project.kind.value}, not pairwise."
        )
    rows: list[tuple[int, dict[str, Any]]] = []
    made: dict[str, tuple[int, int | None, int | None]] = {}  # ext id -> (first, cand, base)
    for k, raw in enumerate(pairs):
        pair = raw if isinstance(raw, EvalPair) else EvalPair(*raw)
        cand = (
            pair.candidate_model_id if pair.candidate_model_id is not None else candidate_model_id
        )
        base = pair.baseline_model_id if pair.baseline_model_id is not None else baseline_model_id
        if cand is not None and cand == base:
            raise Invalid("A human evaluation compares two different model versions.")
        if not pair.candidate.strip() or not pair.baseline.strip():
            continue  # an item needs two non-empty answers: this prompt is not compared
        ext = external_id(loop_id, iteration, k)
        first = 0 if Draws(seed, "human-eval", loop_id, iteration, k).chance(0.5) else 1
        made[ext] = (first, cand, base)
        texts = [(pair.candidate, cand), (pair.baseline, base)]
        if first == 1:
            texts.reverse()
        rows.append(
            (
                k + 1,
                {
                    "external_id": ext,
                    "prompt": pair.prompt,
                    "priority": priority,
                    "responses": [
                        {"text": t, **({"model": f"model {m}"} if m is not None else {})}
                        for t, m in texts
                    ],
                    "metadata": {
                        EVAL_KEY: {
                            "loop_id": loop_id,
                            "iteration": iteration,
                            "candidate_position": first,
                            "candidate_model_id": cand,
                            "baseline_model_id": base,
                        }
                    },
                },
            )
        )
    if not rows:
        return []
    import_rows(session, project, rows)
    item_rows = session.execute(
        text(
            "SELECT id, external_id FROM items WHERE project_id = :pid"
            " AND external_id = ANY(CAST(:ids AS text[]))"
        ),
        {"pid": project.id, "ids": list(made)},
    ).all()
    by_ext = {str(e): int(i) for i, e in item_rows}
    # The versions behind each answer (lineage), where known.
    for ext, (first, cand, base) in made.items():
        session.execute(
            text(
                "UPDATE responses SET model_version_id = CASE WHEN position = :cand_pos"
                " THEN CAST(:cm AS bigint) ELSE CAST(:bm AS bigint) END"
                " WHERE item_id = :iid AND model_version_id IS NULL"
            ),
            {"cand_pos": first, "cm": cand, "bm": base, "iid": by_ext[ext]},
        )
    # Under routing the items came in held: they go to humans, never to a judge.
    session.execute(
        text(
            "UPDATE items SET routing = 'human', remaining = remaining + :target"
            " WHERE id = ANY(CAST(:ids AS bigint[])) AND routing = 'held'"
        ),
        {"target": project.overlap, "ids": list(by_ext.values())},
    )
    return [by_ext[e] for e in made]


# Each human vote on the evaluation items, with the response the candidate wrote.
_VOTES = text(
    """
    SELECT a.item_id, (a.payload->>'preferred')::bigint AS preferred, cand.id AS candidate
    FROM annotations a
    JOIN items i ON i.id = a.item_id
    JOIN responses cand ON cand.item_id = i.id
         AND cand.position = CAST(i.metadata->:key->>'candidate_position' AS int)
    WHERE a.item_id = ANY(CAST(:ids AS bigint[])) AND a.source = 'human'
      AND jsonb_exists(i.metadata, :key)
    """
)


def human_win_rate(session: Session, item_ids: Sequence[int]) -> WinRate | None:
    """The candidate's win rate (`.rate`, `.low`, `.high`, counts) over the evaluation items
    that have human votes; None until one has."""
    return human_evaluation(session, item_ids).win


def human_evaluation(session: Session, item_ids: Sequence[int]) -> HumanEval:
    """How many of the items humans labelled, and the candidate's win rate over those."""
    tally: dict[int, list[float]] = {int(i): [] for i in item_ids}
    for item_id, preferred, candidate in session.execute(
        _VOTES, {"key": EVAL_KEY, "ids": list(tally)}
    ):
        # A tie vote (no preferred answer) counts half for each side.
        score = 0.5 if preferred is None else 1.0 if preferred == candidate else 0.0
        tally[int(item_id)].append(score)
    wins = ties = losses = labelled = 0
    for votes in tally.values():
        if not votes:
            continue
        labelled += 1
        share = sum(votes) / len(votes)
        if share > 0.5:
            wins += 1
        elif share < 0.5:
            losses += 1
        else:
            ties += 1
    win = win_interval(wins, ties, losses) if labelled else None
    return HumanEval(items=len(tally), labelled=labelled, win=win)


def win_rate(session: Session, *, loop_id: int, iteration: int) -> dict[str, Any] | None:
    """The loop's view of one iteration's human evaluation (GET /loops/{id}, the loop page):
    None until a human labelled one of its items."""
    project_id = session.scalar(
        text("SELECT project_id FROM loops WHERE id = :id"), {"id": loop_id}
    )
    if project_id is None:
        return None
    result = human_evaluation(session, loop_items(session, int(project_id), loop_id, iteration))
    if result.win is None:
        return None
    return {
        "labelled": result.labelled,
        "of": result.items,
        "win_rate": result.win.rate,
        "low": result.win.low,
        "high": result.win.high,
        "wins": result.win.wins,
        "ties": result.win.ties,
        "losses": result.win.losses,
    }


def loop_items(session: Session, project_id: int, loop_id: int, iteration: int) -> list[int]:
    """The evaluation items a loop's iteration created, by id."""
    return [
        int(i)
        for i in session.scalars(
            text(
                "SELECT id FROM items WHERE project_id = :pid AND jsonb_exists(metadata, :key)"
                " AND (metadata->:key->>'loop_id')::bigint = :loop"
                " AND (metadata->:key->>'iteration')::int = :it ORDER BY id"
            ),
            {"pid": project_id, "key": EVAL_KEY, "loop": loop_id, "it": iteration},
        )
    ]
