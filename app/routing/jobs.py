"""Job kinds of the routing domain: the route job (and its dry run)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.auth.models import Role
from app.jobs import queues
from app.jobs.context import JobContext
from app.jobs.specs import JobSpec, Mode


def run_route(ctx: JobContext) -> dict[str, Any]:
    from app.routing.route import run

    return run(ctx)


ROUTE = JobSpec(
    kind="routing.route",
    mode=Mode.external,
    handler=run_route,
    queue=queues.DEFAULT,
    max_attempts=3,
    time_limit=timedelta(hours=2),
    visible_to=Role.researcher,
)
