"""A demo to try right after `make run`: one project of each kind, an admin and an annotator,
a simulated judge, and a routed pairwise project whose items that judge and a routing policy
share out between people and the judge as soon as the worker runs."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Role, User
from app.auth.service import Principal, create_user
from app.items.importer import import_rows
from app.judges.models import Judge
from app.judges.schemas import JudgeCreate
from app.judges.service import create_judge
from app.projects.models import Project
from app.projects.rules import TaskKind
from app.projects.schemas import ProjectCreate
from app.projects.service import add_member, create_project
from app.routing.models import RoutingPolicy
from app.routing.schemas import PolicyCreate, RoutingSet
from app.routing.service import create_policy, set_routing

ADMIN_EMAIL = "admin@demo.tandem"
ANNOTATOR_EMAIL = "annotator@demo.tandem"
DEMO_JUDGE = "demo-simulated-judge"
DEMO_POLICY = "Demo: uncertainty, half the items to people"
ROUTED_PROJECT = "Demo: routed pairwise"
# Where `tandem demo loop` (and its button on this project's page) runs the closed loop.
LOOP_PROJECT = "Demo: closed loop"
LOOP_GUIDELINES = (
    "# Closed-loop demo\n\nPick the better answer. The simulated annotators of the demo follow"
    " a hidden gold reward (polite, concise answers); the policy learns it only through labels."
)

_QA = [
    (
        "How do I reverse a list in Python?",
        "Use slicing: `items[::-1]` returns a reversed copy; `items.reverse()` reverses in place.",
        "Python lists cannot be reversed; convert them to a tuple first.",
    ),
    (
        "What causes the seasons on Earth?",
        "The tilt of Earth's axis (about 23.4°) changes how directly sunlight hits each half.",
        "Seasons happen because Earth is closer to the Sun in summer.",
    ),
    (
        "Explain what a hash map is in one paragraph.",
        "A hash map stores key-value pairs in an array of buckets; a hash function turns each key "
        "into a bucket index, giving average O(1) lookups.",
        "A hash map is a map drawn with hash marks, used in cartography.",
    ),
    (
        "Write a haiku about autumn.",
        "Crisp leaves drift and fall\nthe maple lets go of red\nwind carries the year",
        "Autumn is a season. Leaves fall. It is cold. The end.",
    ),
    ("What is 17 * 23?", "17 * 23 = 391.", "17 * 23 = 401."),
    (
        "Summarise the plot of Romeo and Juliet in two sentences.",
        "Two young lovers from feuding families in Verona marry in secret. A chain of "
        "misunderstandings ends with both taking their own lives, which reconciles their families.",
        "Romeo and Juliet is about a war between Rome and Juliet's kingdom.",
    ),
]


def _rows(kind: TaskKind) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for n, (prompt, good, bad) in enumerate(_QA, start=1):
        if kind is TaskKind.pairwise:
            responses = [{"text": good, "model": "demo-good"}, {"text": bad, "model": "demo-bad"}]
        elif kind is TaskKind.ranking:
            responses = [
                {"text": good, "model": "demo-good"},
                {"text": bad, "model": "demo-bad"},
                {"text": "I'm not sure.", "model": "demo-unsure"},
            ]
        else:
            responses = [{"text": bad if n % 2 else good, "model": "demo"}]
        rows.append(
            (
                n,
                {
                    "external_id": f"demo-{kind.value}-{n}",
                    "prompt": prompt,
                    "responses": responses,
                    "metadata": {"source": "demo"},
                },
            )
        )
    return rows


def _credentials(data_dir: Path) -> dict[str, str]:
    path = data_dir / "demo-credentials.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    creds = {ADMIN_EMAIL: secrets.token_urlsafe(12), ANNOTATOR_EMAIL: secrets.token_urlsafe(12)}
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f)
    return creds


def seed_demo(session: Session, data_dir: Path) -> dict[str, str]:
    """Create the demo users and projects once; return the demo credentials."""
    creds = _credentials(data_dir)
    users = {}
    for email, role in ((ADMIN_EMAIL, Role.admin), (ANNOTATOR_EMAIL, Role.annotator)):
        user = session.scalars(select(User).where(User.email == email)).one_or_none()
        users[email] = user or create_user(session, email, creds[email], role)
    admin = users[ADMIN_EMAIL]
    principal = Principal(id=admin.id, email=admin.email, role=Role.admin, token="")
    for kind in TaskKind:
        name = f"Demo: {kind.value}"
        if session.scalars(select(Project).where(Project.name == name)).first() is not None:
            continue
        body = ProjectCreate(
            name=name,
            kind=kind,
            guidelines=f"# {kind.value.title()} demo\n\nJudge helpfulness and correctness.",
            span_labels=["incorrect", "irrelevant", "unsafe"] if kind is TaskKind.span else None,
            aspects=["helpfulness", "correctness"] if kind is TaskKind.pairwise else None,
        )
        project = create_project(session, principal, body)
        add_member(session, principal, project.id, users[ANNOTATOR_EMAIL].id)
        import_rows(session, project, _rows(kind))
    _seed_routing(session, principal, users[ANNOTATOR_EMAIL].id)
    loop_project(session, principal)
    return creds


def loop_project(session: Session, principal: Principal) -> Project:
    """The closed-loop demo's project (empty until a demo loop generates into it)."""
    project = session.scalars(select(Project).where(Project.name == LOOP_PROJECT)).first()
    if project is None:
        project = create_project(
            session,
            principal,
            ProjectCreate(
                name=LOOP_PROJECT, kind=TaskKind.pairwise, overlap=1, guidelines=LOOP_GUIDELINES
            ),
        )
    return project


def _seed_routing(session: Session, principal: Principal, annotator_id: int) -> None:
    """A simulated judge (80% accurate against the truth in each item's metadata) and a routed
    pairwise project: its import queues a route job, which judges every item in both orders
    and sends the uncertain ones, within a budget of three human labels, to the annotator."""
    judge = session.scalars(select(Judge).where(Judge.name == DEMO_JUDGE)).one_or_none()
    if judge is None:
        judge = create_judge(
            session,
            principal,
            JudgeCreate(
                name=DEMO_JUDGE,
                backend="simulated",
                model="simulated",
                params={"truth": {"metadata_key": "truth"}, "accuracy": 0.8, "seed": 7},
            ),
        )
    policy = session.scalars(
        select(RoutingPolicy).where(RoutingPolicy.name == DEMO_POLICY)
    ).one_or_none()
    policy_id = (
        policy.id
        if policy is not None
        else create_policy(
            session,
            principal,
            PolicyCreate(
                name=DEMO_POLICY,
                strategy="uncertainty",
                human_budget=3,
                human_cost=1,
                human_overlap=1,
                route_after_import=True,
            ),
        ).id
    )
    if session.scalars(select(Project).where(Project.name == ROUTED_PROJECT)).first() is not None:
        return
    project = create_project(
        session,
        principal,
        ProjectCreate(
            name=ROUTED_PROJECT,
            kind=TaskKind.pairwise,
            guidelines="# Routed demo\n\nPick the more helpful and correct response.",
        ),
    )
    add_member(session, principal, project.id, annotator_id)
    set_routing(
        session, principal, project.id, RoutingSet(policy_id=policy_id, judge_ids=[judge.id])
    )
    rows = _rows(TaskKind.pairwise)
    for _, row in rows:
        # The simulated judge reads the truth here: the first response as imported is the better.
        row["metadata"] = {**row["metadata"], "truth": {"choice": "a"}}
    import_rows(session, project, rows)
