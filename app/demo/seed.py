"""A demo to try right after `make run`: one project of each kind, an admin and an annotator."""

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
from app.projects.models import Project
from app.projects.rules import TaskKind
from app.projects.schemas import ProjectCreate
from app.projects.service import add_member, create_project

ADMIN_EMAIL = "admin@demo.tandem"
ANNOTATOR_EMAIL = "annotator@demo.tandem"

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
    return creds
