"""The ledger under concurrent route jobs: reservations never add up past the total."""

from __future__ import annotations

import threading

import pytest

from app.jobs import runner
from tests.helpers import Actor, sql, sql_value
from tests.routing.helpers import budget, policy, routed_project


@pytest.mark.parametrize("jobs", [6])
def test_concurrent_route_jobs_never_exceed_the_budget(
    admin: Actor, researcher: Actor, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    from app.routing import route as route_module

    # Small chunks, so that the jobs interleave item by item rather than one taking all.
    monkeypatch.setattr(route_module, "CHUNK", 7)
    p = policy(admin, "random", params={"fraction": 0.8}, human_budget=61, human_cost=1.5)
    pid = routed_project(admin, researcher, p["id"], items=200, overlap=2)
    ids = []
    for _ in range(jobs):
        r = researcher.client.post(f"/api/v1/projects/{pid}/route", json={"limit": 200})
        assert r.status_code == 202
        ids.append(r.json()["job_id"])
    start = threading.Barrier(jobs)
    outcomes: list[str] = []

    def work(job_id: int) -> None:
        start.wait()
        outcomes.append(runner.run_job(job_id))

    threads = [threading.Thread(target=work, args=(j,)) for j in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert outcomes == ["done"] * jobs
    # Every item decided exactly once, by some job.
    assert sql_value("SELECT count(*) FROM routing_decisions WHERE project_id = %s", pid) == 200
    assert sql_value("SELECT count(*) FROM items WHERE routing = 'held'") == 0
    human = sql_value(
        "SELECT count(*) FROM routing_decisions WHERE project_id = %s AND decision <> 'ai'", pid
    )
    reserved = sql_value(
        "SELECT sum(reserved_units * unit_cost) FROM routing_decisions WHERE project_id = %s",
        pid,
    )
    # 61 / (1.5 * 2) = 20 items at most; the sum of the decisions is what the ledger holds.
    assert human <= 20
    assert float(reserved) == human * 3.0
    got = budget(researcher, pid)
    assert got["reserved"] == float(reserved) <= 61
    # The engine's invariant: released items have exactly the overlap open.
    assert sql(
        "SELECT DISTINCT remaining FROM items WHERE project_id = %s AND routing <> 'ai'", pid
    ) in ([(2,)], [])
    # The jobs really ran side by side: several of them decided items.
    assert (
        sql_value("SELECT count(DISTINCT job_id) FROM routing_decisions WHERE project_id = %s", pid)
        > 1
    )
    assert human == 20  # 160 wanted humans, the budget ran out: nothing left unspent
