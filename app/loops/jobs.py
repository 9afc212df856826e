"""Job kinds of loops: the evaluation step's job, and the periodic advance of every active loop.

Cheap to import (the web process enqueues from here): the evaluation's heavy imports are inside
its handler.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from app.auth.models import Role
from app.jobs import queues
from app.jobs.specs import JobSpec, Mode, PeriodicSpec

if TYPE_CHECKING:
    from app.jobs.context import JobContext


def run_evaluation(ctx: JobContext) -> dict[str, Any]:
    from app.loops.evaluate import evaluate

    return evaluate(ctx)


def advance_loops() -> object:
    from app.loops.advance import advance_all

    return advance_all()


def human_eval_module() -> Any:
    """app/loops/human_eval.py (evaluation by humans on a sample), where installed; else None."""
    try:
        from app.loops import human_eval  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        return None
    return human_eval


EVALUATE = JobSpec(
    kind="loops.evaluate",
    mode=Mode.external,
    handler=run_evaluation,
    queue=queues.gpu_else(queues.CPU_TRAIN),
    max_attempts=3,
    time_limit=timedelta(hours=6),
    visible_to=Role.researcher,
)

# Every sweeper tick: settle each active loop's step whose job ended, start the next one, and
# check the labels of loops waiting for them (deadline and stop rule).
ADVANCE = PeriodicSpec(name="loops.advance", run=advance_loops, every=timedelta(0))
