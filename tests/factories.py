"""Database-level factories: users, projects, items, assignments and annotations in one call each.

Each `create_*` writes through the app's models in its own committed transaction and returns
what it wrote, keeping the invariants the services keep: an item's `remaining` counts its live
leases and counted human annotations, a human annotation has a submitted assignment, and an
answer given in the client's form (`answer={"choice": "a"}`) is resolved to response ids by the
same code as a submit. Tests that are about the API use it; the others set up their data here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update

from app.annotations.models import Annotation, AnnotationSource
from app.annotations.payloads import SCHEMA_VERSION, TaskContext, parse, resolve
from app.assignments.models import Assignment, AssignmentStatus
from app.auth.models import Role, User
from app.db import session_scope
from app.items.models import Item, Response
from app.projects.models import Project, ProjectMember
from app.projects.rules import TaskKind, TaskRules
from tests.helpers import RESPONSES_PER_KIND

_serial = itertools.count(1)
# One Argon2 hash of tests.helpers.PASSWORD, made once: hashing is slow on purpose.
_password_hash: str | None = None


def password_hash() -> str:
    global _password_hash
    if _password_hash is None:
        from app.auth.passwords import hash_password
        from tests.helpers import PASSWORD

        _password_hash = hash_password(PASSWORD)
    return _password_hash


def create_user(role: Role | str = Role.annotator, email: str | None = None) -> User:
    """A user who can log in with tests.helpers.PASSWORD."""
    role = Role(role)
    email = email or f"{role.value}-{next(_serial)}@example.org"
    with session_scope() as session:
        user = User(email=email, password_hash=password_hash(), role=role)
        session.add(user)
    return user


def create_project(
    kind: TaskKind | str = TaskKind.pairwise,
    *,
    created_by: User | None = None,
    members: Sequence[User] = (),
    name: str | None = None,
    **settings: Any,
) -> Project:
    """A project (span projects get labels "bad" and "good" unless given) with these members."""
    kind = TaskKind(kind)
    if kind is TaskKind.span:
        settings.setdefault("span_labels", ["bad", "good"])
    with session_scope() as session:
        project = Project(
            name=name or f"{kind.value} project {next(_serial)}",
            kind=kind,
            created_by=None if created_by is None else created_by.id,
            **settings,
        )
        session.add(project)
        session.flush()
        for user in (*([created_by] if created_by else []), *members):
            session.add(ProjectMember(project_id=project.id, user_id=user.id))
        session.flush()
        session.refresh(project)
    return project


def add_member(project: Project, user: User) -> None:
    with session_scope() as session:
        session.add(ProjectMember(project_id=project.id, user_id=user.id))


@dataclass(frozen=True, slots=True)
class CreatedItem:
    """An item as written: its id, its project's rules, its responses in import order."""

    id: int
    rules: TaskRules
    response_ids: list[int]
    texts: list[str]
    external_id: str | None


def create_item(
    project: Project,
    responses: Sequence[str] | None = None,
    *,
    prompt: str | None = None,
    external_id: str | None = None,
    models: Sequence[str | None] | None = None,
    metadata: dict[str, Any] | None = None,
    priority: int = 0,
    is_gold: bool = False,
    gold_answer: dict[str, Any] | None = None,
) -> CreatedItem:
    """An item with its responses (default: as many as the kind compares, numbered texts).

    `gold_answer` is stored as given (the import's resolved form: import positions).
    """
    n = next(_serial)
    rules = project.rules()
    texts = list(responses or [f"response {n}.{j}" for j in range(RESPONSES_PER_KIND[rules.kind])])
    with session_scope() as session:
        item = Item(
            project_id=project.id,
            external_id=external_id,
            prompt=prompt if prompt is not None else f"prompt {n}",
            meta=metadata or {},
            priority=priority,
            is_gold=is_gold,
            gold_answer=gold_answer,
            remaining=project.overlap,
        )
        session.add(item)
        session.flush()
        rows = [
            Response(
                item_id=item.id,
                position=pos,
                text=t,
                model=(models[pos] if models else f"model-{pos}"),
            )
            for pos, t in enumerate(texts)
        ]
        session.add_all(rows)
        session.flush()
        return CreatedItem(item.id, rules, [r.id for r in rows], texts, external_id)


def create_items(project: Project, n: int, **kwargs: Any) -> list[CreatedItem]:
    return [create_item(project, **kwargs) for _ in range(n)]


def _counts(status: AssignmentStatus) -> bool:
    """Whether an assignment in this status holds one of the item's overlap slots."""
    return status in (AssignmentStatus.leased, AssignmentStatus.submitted)


def create_assignment(
    item: CreatedItem,
    user: User,
    *,
    status: AssignmentStatus | str = AssignmentStatus.leased,
    shown_order: Sequence[int] | None = None,
    lease_seconds: int | None = None,
    at: datetime | None = None,
) -> Assignment:
    """An assignment of the item to the user; a lease or a submission takes one of its slots."""
    status = AssignmentStatus(status)
    lease = timedelta(seconds=lease_seconds or item.rules.lease_seconds)
    with session_scope() as session:
        leased_at = at or session.scalars(select(func.now())).one()
        done = status is not AssignmentStatus.leased
        assignment = Assignment(
            project_id=item.rules.project_id,
            item_id=item.id,
            user_id=user.id,
            status=status,
            shown_order=list(shown_order or item.response_ids),
            leased_at=leased_at,
            expires_at=leased_at + lease,
            finished_at=leased_at if done else None,
        )
        session.add(assignment)
        if _counts(status):
            session.execute(
                update(Item).where(Item.id == item.id).values(remaining=Item.remaining - 1)
            )
    return assignment


def resolve_answer(
    item: CreatedItem, answer: dict[str, Any], shown_order: Sequence[int]
) -> dict[str, Any]:
    """An answer in the client's form (positions as shown) resolved as submit stores it."""
    ctx = TaskContext(
        item.rules, list(shown_order), dict(zip(item.response_ids, item.texts, strict=True))
    )
    return resolve(parse(item.rules.kind, answer), ctx)


def ensure_judge(judge_id: int) -> None:
    """A judge row with this id (named `judge-<id>`), for AI votes written by hand."""
    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO judges (id, name, backend, model) VALUES (:id, 'judge-' || :id,"
                " 'simulated', 'test') ON CONFLICT DO NOTHING"
            ),
            {"id": judge_id},
        )


def create_annotation(
    item: CreatedItem,
    *,
    user: User | None = None,
    judge_id: int | None = None,
    answer: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    shown_order: Sequence[int] | None = None,
    created_at: datetime | None = None,
    over_quota: bool = False,
    time_spent_ms: int | None = None,
    gold_score: float | None = None,
) -> Annotation:
    """A human annotation (give `user`; it gets a submitted assignment) or an AI one (`judge_id`).

    Give the vote as `answer` (the client's form, resolved against `shown_order`, which defaults
    to import order) or as `payload` (the stored form, written as is). A counted human vote takes
    one of the item's slots; `over_quota=True` keeps it out of the count, as a late submit.
    """
    if (user is None) == (judge_id is None):
        raise ValueError("an annotation has one author: a user (human) or a judge_id (AI)")
    if (answer is None) == (payload is None):
        raise ValueError("give the vote as answer= (client form) or payload= (stored form)")
    shown = list(shown_order or item.response_ids)
    stored = payload if payload is not None else resolve_answer(item, answer or {}, shown)
    assignment_id = None
    if user is not None:
        status = AssignmentStatus.submitted
        a = create_assignment(item, user, status=status, shown_order=shown, at=created_at)
        assignment_id = a.id
        if over_quota:  # the slot went to someone else: give it back
            with session_scope() as session:
                session.execute(
                    update(Item).where(Item.id == item.id).values(remaining=Item.remaining + 1)
                )
    if judge_id is not None:
        ensure_judge(judge_id)
    with session_scope() as session:
        annotation = Annotation(
            project_id=item.rules.project_id,
            item_id=item.id,
            assignment_id=assignment_id,
            source=AnnotationSource.human if user is not None else AnnotationSource.ai,
            user_id=None if user is None else user.id,
            judge_id=judge_id,
            payload=stored,
            schema_version=SCHEMA_VERSION,
            shown_order=shown,
            time_spent_ms=time_spent_ms,
            over_quota=over_quota,
            gold_score=gold_score,
        )
        if created_at is not None:
            annotation.created_at = created_at
        session.add(annotation)
        session.flush()
        session.refresh(annotation)
    return annotation
