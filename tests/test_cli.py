"""The tandem command: users, migrations and the demo seed."""

from __future__ import annotations

from sqlalchemy import text
from typer.testing import CliRunner

from app.cli import cli
from app.db import session_scope
from app.demo.seed import ROUTED_PROJECT
from app.jobs.runner import run_job

runner = CliRunner()


def test_users_create_makes_a_user_who_can_log_in() -> None:
    r = runner.invoke(
        cli,
        [
            "users",
            "create",
            "--email",
            "Boss@Example.org",
            "--password",
            "a-long-pass",
            "--role",
            "admin",
        ],
    )
    assert r.exit_code == 0, r.output
    with session_scope() as s:
        role = s.execute(
            text("SELECT role FROM users WHERE email = 'boss@example.org'")
        ).scalar_one()
    assert role == "admin"
    again = runner.invoke(
        cli, ["users", "create", "--email", "boss@example.org", "--password", "a-long-pass"]
    )
    assert again.exit_code == 1 and "already exists" in again.output


def test_users_create_rejects_a_short_password() -> None:
    r = runner.invoke(cli, ["users", "create", "--email", "a@b.org", "--password", "short"])
    assert r.exit_code == 2 and "password" in r.output


def test_db_upgrade_is_idempotent() -> None:
    r = runner.invoke(cli, ["db", "upgrade"])
    assert r.exit_code == 0, r.output


def test_demo_seeds_each_kind_once() -> None:
    first = runner.invoke(cli, ["demo"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli, ["demo"])
    assert second.exit_code == 0 and second.output == first.output
    with session_scope() as s:
        kinds = s.execute(
            text("SELECT kind, count(*) FROM projects GROUP BY kind ORDER BY kind")
        ).all()
        items = s.execute(text("SELECT count(*) FROM items")).scalar_one()
        members = s.execute(text("SELECT count(*) FROM project_members")).scalar_one()
    assert [tuple(k) for k in kinds] == [
        ("critique", 1),
        ("pairwise", 3),
        ("ranking", 1),
        ("span", 1),
    ]
    assert items == 30 and members == 11  # the closed-loop demo's project: its owner


def test_demo_routes_its_routed_project_through_the_simulated_judge() -> None:
    assert runner.invoke(cli, ["demo"]).exit_code == 0
    with session_scope() as s:
        pid, job_id = s.execute(
            text(
                "SELECT p.id, j.id FROM projects p JOIN jobs j ON j.project_id = p.id"
                " WHERE p.name = :name AND j.kind = 'routing.route'"
            ),
            {"name": ROUTED_PROJECT},
        ).one()
    run_job(job_id)
    with session_scope() as s:
        status = s.execute(text("SELECT status FROM jobs WHERE id = :j"), {"j": job_id}).scalar()
        decisions = dict(
            s.execute(
                text(
                    "SELECT decision, count(*) FROM routing_decisions WHERE project_id = :p"
                    " GROUP BY decision"
                ),
                {"p": pid},
            ).all()
        )
        judged = s.execute(
            text("SELECT count(*) FROM annotations WHERE project_id = :p AND source = 'ai'"),
            {"p": pid},
        ).scalar_one()
    assert status == "succeeded"
    # Six items, at most three human labels in the budget; the judge labelled the AI ones.
    assert sum(decisions.values()) == 6
    assert 0 < decisions.get("human", 0) + decisions.get("both", 0) <= 3
    assert judged >= decisions.get("ai", 0) > 0
