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
nothing, because their external ids are fixed by (loop, iteration, baseline, index).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
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
    """One prompt with the candidate's and the baseline's answers to it."""

    prompt: str
    candidate: str
    baseline: str


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


def external_id(loop_id: int, iteration: int, baseline_model_id: int, index: int) -> str:
    return f"eval-{loop_id}-{iteration}-{baseline_model_id}-{index}"


def create_items(
    session: Session,
    project_id: int,
    *,
    loop_id: int,
    iteration: int,
    candidate_model_id: int,
    baseline_model_id: int,
    pairs: Sequence[EvalPair],
    seed: int,
    priority: int = 0,
) -> list[int]:
    """Add one evaluation item per pair (answers in a seeded random order) and release them to
    humans; returns their item ids in pair order (the existing ones on a second call)."""
    if candidate_model_id == baseline_model_id:
        raise Invalid("A human evaluation compares two different model versions.")
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"Project {project_id} does not exist.")
    if project.kind is not TaskKind.pairwise:
        raise Invalid(
            f"A human evaluation compares two answers: project {project_id} is"
            f" {project.kind.value}, not pairwise."
        )
    rows: list[tuple[int, dict[str, Any]]] = []
    firsts: dict[str, int] = {}
    for k, pair in enumerate(pairs):
        if not pair.candidate.strip() or not pair.baseline.strip():
            continue  # an item needs two non-empty answers: this prompt is not compared
        ext = external_id(loop_id, iteration, baseline_model_id, k)
        first = 0 if Draws(seed, "human-eval", loop_id, iteration, k).chance(0.5) else 1
        firsts[ext] = first
        texts = [(pair.candidate, candidate_model_id), (pair.baseline, baseline_model_id)]
        if first == 1:
            texts.reverse()
        rows.append(
            (
                k + 1,
                {
                    "external_id": ext,
                    "prompt": pair.prompt,
                    "priority": priority,
                    "responses": [{"text": t, "model": f"model {m}"} for t, m in texts],
                    "metadata": {
                        EVAL_KEY: {
                            "loop_id": loop_id,
                            "iteration": iteration,
                            "candidate_model_id": candidate_model_id,
                            "baseline_model_id": baseline_model_id,
                        }
                    },
                },
            )
        )
    if not rows:
        return []
    import_rows(session, project, rows)
    ids = list(firsts)
    # The versions behind each answer (lineage), and the release to humans under routing.
    item_rows = session.execute(
        text(
            "SELECT id, external_id FROM items WHERE project_id = :pid"
            " AND external_id = ANY(CAST(:ids AS text[]))"
        ),
        {"pid": project.id, "ids": ids},
    ).all()
    by_ext = {str(e): int(i) for i, e in item_rows}
    for ext, first in firsts.items():
        session.execute(
            text(
                "UPDATE responses SET model_version_id = CASE WHEN position = :cand"
                " THEN CAST(:cm AS bigint) ELSE CAST(:bm AS bigint) END"
                " WHERE item_id = :iid AND model_version_id IS NULL"
            ),
            {"cand": first, "cm": candidate_model_id, "bm": baseline_model_id, "iid": by_ext[ext]},
        )
    session.execute(
        text(
            "UPDATE items SET routing = 'human', remaining = remaining + :target"
            " WHERE id = ANY(CAST(:ids AS bigint[])) AND routing = 'held'"
        ),
        {"target": project.overlap, "ids": list(by_ext.values())},
    )
    return [by_ext[e] for e in ids]


# Each human vote on the evaluation items, with the response the candidate wrote.
_VOTES = text(
    """
    SELECT a.item_id, (a.payload->>'preferred')::bigint AS preferred, cand.id AS candidate
    FROM annotations a
    JOIN items i ON i.id = a.item_id
    JOIN responses cand ON cand.item_id = i.id
         AND cand.model_version_id = CAST(i.metadata->:key->>'candidate_model_id' AS bigint)
    WHERE a.item_id = ANY(CAST(:ids AS bigint[])) AND a.source = 'human'
      AND jsonb_exists(i.metadata, :key)
    """
)


def human_win_rate(session: Session, item_ids: Sequence[int]) -> HumanEval:
    """The candidate's win rate over the evaluation items that have human votes."""
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
