"""Project rules: creation, settings, and the membership check every project route goes through."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import storage
from app.audit.service import record
from app.auth.models import Role, User
from app.auth.service import Principal, require_role
from app.errors import Conflict, Invalid, JobsRunning, NotFound
from app.exports.jobs import FILES as EXPORT_FILES
from app.exports.models import Export
from app.items.models import Item
from app.jobs.models import UNFINISHED, Job
from app.pagination import Keyset, like_pattern
from app.projects.errors import UnknownEmail
from app.projects.models import Project, ProjectMember
from app.projects.rules import TaskKind
from app.projects.schemas import MemberOut, ProjectCreate, ProjectPatch, ProjectSettings
from app.registry.models import ModelVersion
from app.validation import storable_text


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """The SQL condition "this project is visible to the caller": admins see all, others members;
    annotators do not see archived projects."""
    if principal.is_admin:
        return true()
    member = exists().where(
        ProjectMember.project_id == Project.id, ProjectMember.user_id == principal.id
    )
    if principal.has_role(Role.researcher):
        return member
    return and_(member, Project.archived_at.is_(None))


def get_project(
    session: Session, principal: Principal, project_id: int, *, for_update: bool = False
) -> Project:
    """The project if the caller may see it; else 404, so others' project ids leak nothing."""
    stmt = select(Project).where(Project.id == project_id, visible_to(principal))
    if for_update:
        stmt = stmt.with_for_update()
    project = session.scalars(stmt).one_or_none()
    if project is None:
        raise NotFound(f"Project {project_id} does not exist or you are not a member of it.")
    return project


def _check_kind_settings(kind: TaskKind, s: ProjectSettings) -> None:
    if s.span_labels is not None and kind is not TaskKind.span and s.span_labels:
        raise Invalid("span_labels only apply to span projects.")
    if s.aspects and kind is not TaskKind.pairwise:
        raise Invalid("aspects only apply to pairwise projects.")


def create_project(session: Session, principal: Principal, body: ProjectCreate) -> Project:
    require_role(principal, Role.researcher)
    _check_kind_settings(body.kind, body)
    if body.kind is TaskKind.span and not body.span_labels:
        raise Invalid("A span project needs at least one entry in span_labels.")
    values = body.model_dump(exclude_none=True, exclude={"kind"})
    project = Project(**values, kind=body.kind.value, created_by=principal.id)
    session.add(project)
    session.flush()
    # The creator works in the project like any member.
    session.add(ProjectMember(project_id=project.id, user_id=principal.id))
    record(session, principal.id, "project.create", "project", project.id, name=project.name)
    session.flush()
    session.refresh(project)
    return project


def update_project(
    session: Session, principal: Principal, project_id: int, body: ProjectPatch
) -> Project:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id, for_update=True)
    kind = TaskKind(project.kind)
    _check_kind_settings(kind, body)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if kind is TaskKind.span and changes.get("span_labels") == []:
        raise Invalid("A span project needs at least one entry in span_labels.")
    if "overlap" in changes and changes["overlap"] != project.overlap:
        # remaining = overlap - taken stays exact under a shift of overlap. Items that routing
        # holds or sent to AI only have a human target of 0, which the overlap does not move.
        session.execute(
            update(Item)
            .where(
                Item.project_id == project.id,
                or_(Item.routing.is_(None), Item.routing.in_(("human", "both"))),
            )
            .values(remaining=Item.remaining + (changes["overlap"] - project.overlap))
        )
    for field, value in changes.items():
        setattr(project, field, value)
    record(session, principal.id, "project.update", "project", project.id, **changes)
    session.flush()
    session.refresh(project)
    return project


def list_projects(
    session: Session,
    principal: Principal,
    page: Keyset,
    *,
    query: str = "",
    newest_first: bool = False,
) -> list[Project]:
    """Up to limit+1 projects the caller sees, oldest first (the API's order) or newest first
    (the pages'); `query` matches part of the name, case-insensitively."""
    order = Project.id.desc() if newest_first else Project.id
    stmt = select(Project).where(visible_to(principal)).order_by(order).limit(page.limit + 1)
    if query.strip():
        stmt = stmt.where(Project.name.ilike(like_pattern(query.strip()), escape="\\"))
    if page.after_id is not None:
        after = Project.id < page.after_id if newest_first else Project.id > page.after_id
        stmt = stmt.where(after)
    return list(session.scalars(stmt))


def add_member(session: Session, principal: Principal, project_id: int, user_id: int) -> None:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    if session.get(User, user_id) is None:
        raise NotFound(f"User {user_id} does not exist.")
    session.execute(
        insert(ProjectMember)
        .values(project_id=project.id, user_id=user_id)
        .on_conflict_do_nothing()
    )
    record(session, principal.id, "project.member_add", "project", project.id, user_id=user_id)


def remove_member(session: Session, principal: Principal, project_id: int, user_id: int) -> None:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    member = session.get(ProjectMember, (project.id, user_id))
    if member is None:
        raise NotFound(f"User {user_id} is not a member of project {project.id}.")
    session.delete(member)
    record(session, principal.id, "project.member_remove", "project", project.id, user_id=user_id)


def list_members(
    session: Session, principal: Principal, project_id: int, page: Keyset | None = None
) -> Sequence[MemberOut]:
    """Members by user id; with a page, up to limit+1 of them after its cursor."""
    project = get_project(session, principal, project_id)
    stmt = (
        select(User.id, User.email, User.role, ProjectMember.created_at)
        .join(ProjectMember, ProjectMember.user_id == User.id)
        .where(ProjectMember.project_id == project.id)
        .order_by(User.id)
    )
    if page is not None:
        stmt = stmt.limit(page.limit + 1)
        if page.after_id is not None:
            stmt = stmt.where(User.id > page.after_id)
    rows = session.execute(stmt)
    return [MemberOut(user_id=r[0], email=r[1], role=r[2], added_at=r[3]) for r in rows]


def add_member_by_email(
    session: Session, principal: Principal, project_id: int, email: str
) -> User:
    """Add the user with this email (the pages' member form); UnknownEmail when there is none
    (only to those who may add members: the rules are checked first)."""
    require_role(principal, Role.researcher)
    get_project(session, principal, project_id)
    try:
        address = storable_text(email).strip().lower()
    except ValueError as exc:
        raise Invalid(f"email: {exc}.") from None
    user = session.scalars(select(User).where(User.email == address)).one_or_none()
    if user is None:
        raise UnknownEmail(address)
    add_member(session, principal, project_id, user.id)
    return user


def set_archived(
    session: Session, principal: Principal, project_id: int, archived: bool
) -> Project:
    """Archive (hidden from annotators, no new tasks, kept for export) or unarchive; asking for
    the state a project is already in changes nothing."""
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id, for_update=True)
    if archived == (project.archived_at is not None):
        return project
    project.archived_at = func.now() if archived else None
    action = "project.archive" if archived else "project.unarchive"
    record(session, principal.id, action, "project", project.id)
    session.flush()
    session.refresh(project)
    return project


def delete_project(session: Session, principal: Principal, project_id: int) -> None:
    """Delete a project and everything in it (admins only). Refused while any of its jobs is
    queued or running: an import or export would write into what is being removed. Snapshot
    files go once the delete commits."""
    require_role(principal, Role.admin)
    project = get_project(session, principal, project_id, for_update=True)
    running = session.scalars(
        select(Job.id).where(
            Job.project_id == project.id, Job.status.in_([s.value for s in UNFINISHED])
        )
    ).all()
    if running:
        ids = ", ".join(str(j) for j in running[:5])
        raise JobsRunning(
            f"Project {project.id} has {len(running)} unfinished job(s) ({ids}); wait for them"
            " to end or cancel them, then delete the project."
        )
    trained = session.scalars(
        select(ModelVersion.id)
        .where(ModelVersion.project_id == project.id)
        .order_by(ModelVersion.id)
    ).all()
    if trained:
        # Their lineage names this project's labels: delete those versions first, on purpose.
        raise Conflict(
            f"Project {project.id} trained model version(s)"
            f" {', '.join(str(v) for v in trained[:5])}; delete them before the project.",
            models=list(trained),
        )
    for export_id in session.scalars(select(Export.id).where(Export.project_id == project.id)):
        storage.remove_after_commit(session, EXPORT_FILES, export_id)
    record(session, principal.id, "project.delete", "project", project.id, name=project.name)
    # Items, responses, assignments, annotations, exports and jobs go with it (ON DELETE CASCADE).
    session.execute(delete(Project).where(Project.id == project.id))
