"""Routing policies, a project's routing, the budget ledger and decisions: the service layer.

The API, the pages and the route job call these. Budget rules: the ledger row is the only
place reservations are made (row-locked, checked by a CHECK constraint as a last line), and
spend is derived from facts (counted human annotations) by `reconcile`, which runs before
every route job and on every budget read.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import CursorResult, func, select, text
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.errors import AlreadyExists, Invalid, NotFound, ValidationFailed
from app.items.models import Item, ItemRouting
from app.jobs import service as jobs
from app.jobs.models import Job
from app.pagination import Keyset
from app.projects.models import Project
from app.projects.rules import TaskKind
from app.projects.service import get_project
from app.routing.errors import BudgetBelowCommitted, NoRouting
from app.routing.models import (
    ProjectRouting,
    RoutingBudget,
    RoutingDecision,
    RoutingPolicy,
    RoutingPolicyVersion,
    Strategy,
)
from app.routing.schemas import (
    BudgetOut,
    DecisionOut,
    PolicyCreate,
    PolicyFields,
    PolicyOut,
    PolicyPatch,
    RouteRequest,
    RoutingOut,
    RoutingSet,
    RulesParams,
    VersionOut,
    parse_params,
)

# Strategies that read the judges' signals before deciding (and so need pairwise items).
SIGNAL_STRATEGIES = (Strategy.uncertainty, Strategy.learned)


# --- policies ---------------------------------------------------------------------------


def _policy_out(session: Session, policy: RoutingPolicy) -> PolicyOut:
    versions = list(
        session.scalars(
            select(RoutingPolicyVersion)
            .where(RoutingPolicyVersion.policy_id == policy.id)
            .order_by(RoutingPolicyVersion.version.desc())
        )
    )
    outs = [VersionOut.model_validate(v) for v in versions]
    return PolicyOut(
        id=policy.id, name=policy.name, created_at=policy.created_at, latest=outs[0], versions=outs
    )


def _add_version(
    session: Session, policy_id: int, version: int, fields: PolicyFields, by: int
) -> RoutingPolicyVersion:
    v = RoutingPolicyVersion(
        policy_id=policy_id,
        version=version,
        strategy=fields.strategy,
        params=fields.params,
        human_budget=Decimal(str(fields.human_budget)),
        human_cost=Decimal(str(fields.human_cost)),
        human_overlap=fields.human_overlap,
        audit_fraction=fields.audit_fraction,
        min_human=fields.min_human,
        route_after_import=fields.route_after_import,
        created_by=by,
    )
    session.add(v)
    session.flush()
    return v


def create_policy(session: Session, principal: Principal, body: PolicyCreate) -> PolicyOut:
    require_role(principal, Role.admin)
    taken = session.scalar(select(RoutingPolicy.id).where(RoutingPolicy.name == body.name))
    if taken is not None:
        raise AlreadyExists(f"A routing policy named {body.name!r} exists (id {taken}).")
    policy = RoutingPolicy(name=body.name, created_by=principal.id)
    session.add(policy)
    session.flush()
    _add_version(session, policy.id, 1, body, principal.id)
    record(session, principal.id, "routing.policy_create", "routing_policy", policy.id)
    session.refresh(policy)
    return _policy_out(session, policy)


def _policy(session: Session, policy_id: int, *, for_update: bool = False) -> RoutingPolicy:
    stmt = select(RoutingPolicy).where(RoutingPolicy.id == policy_id)
    if for_update:
        stmt = stmt.with_for_update()
    policy = session.scalars(stmt).one_or_none()
    if policy is None:
        raise NotFound(f"Routing policy {policy_id} does not exist.")
    return policy


def get_policy(session: Session, principal: Principal, policy_id: int) -> PolicyOut:
    require_role(principal, Role.admin)
    return _policy_out(session, _policy(session, policy_id))


def list_policies(session: Session, principal: Principal, page: Keyset) -> list[PolicyOut]:
    require_role(principal, Role.admin)
    stmt = select(RoutingPolicy).order_by(RoutingPolicy.id).limit(page.limit + 1)
    if page.after_id is not None:
        stmt = stmt.where(RoutingPolicy.id > page.after_id)
    return [_policy_out(session, p) for p in session.scalars(stmt)]


def _latest(session: Session, policy_id: int) -> RoutingPolicyVersion:
    return session.scalars(
        select(RoutingPolicyVersion)
        .where(RoutingPolicyVersion.policy_id == policy_id)
        .order_by(RoutingPolicyVersion.version.desc())
        .limit(1)
    ).one()


def update_policy(
    session: Session, principal: Principal, policy_id: int, body: PolicyPatch
) -> PolicyOut:
    """A new version from the latest one and the fields given; earlier versions never change."""
    require_role(principal, Role.admin)
    policy = _policy(session, policy_id, for_update=True)
    latest = _latest(session, policy.id)
    merged: dict[str, Any] = VersionOut.model_validate(latest).model_dump(
        include=set(PolicyFields.model_fields)
    )
    changes = body.model_dump(exclude_unset=True)
    if "strategy" in changes and "params" not in changes and changes["strategy"] != latest.strategy:
        changes["params"] = {}  # another strategy's params would not fit
    merged.update({k: v for k, v in changes.items() if v is not None or k == "human_overlap"})
    try:
        fields = PolicyFields.model_validate(merged)
    except ValidationError as err:
        raise ValidationFailed.from_pydantic(err, prefix="body") from None
    _add_version(session, policy.id, latest.version + 1, fields, principal.id)
    record(
        session,
        principal.id,
        "routing.policy_version",
        "routing_policy",
        policy.id,
        version=latest.version + 1,
    )
    return _policy_out(session, policy)


# --- a project's routing ----------------------------------------------------------------


def _check_fits(session: Session, project: Project, version: RoutingPolicyVersion) -> None:
    """Refuse a policy that cannot work on this project (kind, rules on absent keys)."""
    strategy = Strategy(version.strategy)
    if strategy in SIGNAL_STRATEGIES and project.kind != TaskKind.pairwise:
        raise Invalid(
            f"The {strategy.value} strategy reads pairwise judge probabilities; project"
            f" {project.id} is a {project.kind} project."
        )
    keys: set[str] = set()
    params = parse_params(strategy, version.params)
    if isinstance(params, RulesParams):
        keys |= {r.key for r in params.rules}
    keys |= set(version.min_human)
    has_items = session.scalar(
        select(func.count()).select_from(Item).where(Item.project_id == project.id)
    )
    if keys and has_items:
        present = set(
            session.scalars(
                text(
                    "SELECT DISTINCT k FROM items, jsonb_object_keys(metadata) k"
                    " WHERE project_id = :pid"
                ),
                {"pid": project.id},
            )
        )
        missing = sorted(keys - present)
        if missing:
            raise Invalid(
                f"The policy's rules use metadata keys that no item of project {project.id}"
                f" has: {', '.join(missing)}."
            )


def set_routing(
    session: Session, principal: Principal, project_id: int, body: RoutingSet
) -> RoutingOut:
    require_role(principal, Role.admin)
    # FOR UPDATE: an import (share lock) sees the routing or not, never half of it.
    project = get_project(session, principal, project_id, for_update=True)
    policy = _policy(session, body.policy_id)
    stmt = select(RoutingPolicyVersion).where(RoutingPolicyVersion.policy_id == policy.id)
    if body.version is None:
        version = _latest(session, policy.id)
    else:
        found = session.scalars(stmt.where(RoutingPolicyVersion.version == body.version))
        version = found.one_or_none()  # type: ignore[assignment]
        if version is None:
            raise NotFound(f"Routing policy {policy.id} has no version {body.version}.")
    _check_fits(session, project, version)
    judge_ids = sorted(set(body.judge_ids))
    _check_judges(session, judge_ids)
    routing = session.get(ProjectRouting, project.id)
    if routing is None:
        session.add(
            ProjectRouting(project_id=project.id, policy_version_id=version.id, judge_ids=judge_ids)
        )
    else:
        routing.policy_version_id = version.id
        routing.judge_ids = judge_ids
    budget = session.get(RoutingBudget, project.id, with_for_update=True)
    if budget is None:
        session.add(RoutingBudget(project_id=project.id, total=version.human_budget))
    else:
        committed = budget.reserved + budget.spent
        if version.human_budget < committed:
            raise BudgetBelowCommitted(
                f"The policy's budget {version.human_budget:f} is below what project"
                f" {project.id} has already reserved and spent ({committed:f})."
            )
        budget.total = version.human_budget
    session.flush()
    record(
        session,
        principal.id,
        "routing.set",
        "project",
        project.id,
        policy_version_id=version.id,
        judge_ids=judge_ids,
    )
    return routing_status(session, principal, project.id)


def _check_judges(session: Session, judge_ids: list[int]) -> None:
    """Every judge of the pool must exist and be enabled."""
    from app.judges.models import Judge

    found = {j.id: j for j in session.scalars(select(Judge).where(Judge.id.in_(judge_ids)))}
    missing = [j for j in judge_ids if j not in found]
    if missing:
        raise Invalid(f"Judges {', '.join(map(str, missing))} do not exist.")
    disabled = [found[j].name for j in judge_ids if not found[j].enabled]
    if disabled:
        raise Invalid(f"Judges {', '.join(disabled)} are disabled; enable them first.")


def load_routing(session: Session, project_id: int) -> tuple[ProjectRouting, RoutingPolicyVersion]:
    routing = session.get(ProjectRouting, project_id)
    if routing is None:
        raise NoRouting(f"Project {project_id} has no routing policy; PUT one first.")
    return routing, session.get_one(RoutingPolicyVersion, routing.policy_version_id)


def routing_status(session: Session, principal: Principal, project_id: int) -> RoutingOut:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    routing, version = load_routing(session, project.id)
    policy = session.get_one(RoutingPolicy, version.policy_id)
    counts = {
        str(decision): int(n)
        for decision, n in session.execute(
            select(RoutingDecision.decision, func.count())
            .where(RoutingDecision.project_id == project.id)
            .group_by(RoutingDecision.decision)
        )
    }
    held = session.scalar(
        select(func.count())
        .select_from(Item)
        .where(Item.project_id == project.id, Item.routing == ItemRouting.held)
    )
    return RoutingOut(
        project_id=project.id,
        policy_id=policy.id,
        policy_name=policy.name,
        version=VersionOut.model_validate(version),
        judge_ids=list(routing.judge_ids),
        budget=reconcile(session, project.id),
        held_items=int(held or 0),
        decisions=counts,
    )


# --- the budget ledger ------------------------------------------------------------------

# Per decision with units still open: counted human annotations so far (capped), and units
# that can no longer be spent (the item's human target was lowered, e.g. a smaller overlap):
# reserved - spent - live leases - open slots. Both only ever grow.
_RECONCILE_DECISIONS = text(
    """
    WITH facts AS (
        SELECT d.id,
               (SELECT count(*) FROM annotations a
                WHERE a.item_id = d.item_id AND a.source = 'human' AND NOT a.over_quota) AS done,
               (SELECT count(*) FROM assignments s
                WHERE s.item_id = d.item_id AND s.status = 'leased') AS live,
               GREATEST(i.remaining, 0) AS open
        FROM routing_decisions d JOIN items i ON i.id = d.item_id
        WHERE d.project_id = :pid AND d.reserved_units > d.spent_units + d.released_units
    ), settled AS (
        SELECT f.id, LEAST(f.done, d.reserved_units - d.released_units) AS spent,
               f.live, f.open, d.reserved_units, d.released_units
        FROM facts f JOIN routing_decisions d ON d.id = f.id
    )
    UPDATE routing_decisions d
    SET spent_units = s.spent,
        released_units = GREATEST(s.released_units,
                                  LEAST(s.reserved_units - s.spent,
                                        s.reserved_units - s.spent - s.live - s.open))
    FROM settled s WHERE d.id = s.id
    """
)

_LEDGER_SUMS = text(
    """
    SELECT COALESCE(sum((reserved_units - spent_units - released_units) * unit_cost), 0),
           COALESCE(sum(spent_units * unit_cost), 0)
    FROM routing_decisions WHERE project_id = :pid
    """
)


def _budget_out(b: RoutingBudget) -> BudgetOut:
    return BudgetOut(
        total=float(b.total),
        reserved=float(b.reserved),
        spent=float(b.spent),
        available=float(b.total - b.reserved - b.spent),
        reconciled_at=b.reconciled_at,
    )


def reconcile(session: Session, project_id: int) -> BudgetOut:
    """Settle spend from the human annotations that arrived and release what cannot be spent."""
    budget = session.get(RoutingBudget, project_id, with_for_update=True, populate_existing=True)
    if budget is None:
        raise NoRouting(f"Project {project_id} has no routing budget; PUT a routing policy first.")
    settled = cast("CursorResult[Any]", session.execute(_RECONCILE_DECISIONS, {"pid": project_id}))
    reserved, spent = session.execute(_LEDGER_SUMS, {"pid": project_id}).one()
    # Written only when something moved: a read that finds nothing new changes nothing.
    if settled.rowcount or (budget.reserved, budget.spent) != (reserved, spent):
        budget.reserved, budget.spent = Decimal(reserved), Decimal(spent)
        budget.reconciled_at = func.now()
        session.flush()
        session.refresh(budget)
    return _budget_out(budget)


def get_budget(session: Session, principal: Principal, project_id: int) -> BudgetOut:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    return reconcile(session, project.id)


def reserve_items(
    session: Session, project_id: int, items: int, units_per_item: int, unit_cost: Decimal
) -> int:
    """Reserve human annotations for up to `items` items; returns how many items were granted.

    The ledger row is locked until the caller's transaction ends, so concurrent route jobs
    take turns and their reservations never add up past the total.
    """
    if items <= 0:
        return 0
    budget = session.get(RoutingBudget, project_id, with_for_update=True, populate_existing=True)
    if budget is None:
        raise NoRouting(f"Project {project_id} has no routing budget.")
    per_item = unit_cost * units_per_item
    if per_item <= 0:
        return items
    available = budget.total - budget.reserved - budget.spent
    granted = max(0, min(items, int(available // per_item)))
    if granted:
        budget.reserved = budget.reserved + per_item * granted
        session.flush()
    return granted


# --- decisions and route requests -------------------------------------------------------


def list_decisions(
    session: Session,
    principal: Principal,
    project_id: int,
    page: Keyset,
    decision: str | None = None,
    reason: str | None = None,
) -> list[DecisionOut]:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    stmt = (
        select(RoutingDecision)
        .where(RoutingDecision.project_id == project.id)
        .order_by(RoutingDecision.id)
        .limit(page.limit + 1)
    )
    if page.after_id is not None:
        stmt = stmt.where(RoutingDecision.id > page.after_id)
    if decision is not None:
        stmt = stmt.where(RoutingDecision.decision == decision)
    if reason is not None:
        stmt = stmt.where(RoutingDecision.reason == reason)
    return [
        DecisionOut(
            id=d.id,
            item_id=d.item_id,
            policy_version_id=d.policy_version_id,
            job_id=d.job_id,
            decision=d.decision,
            score=d.score,
            reason=d.reason,
            predicted_gain=d.predicted_gain,
            reserved_cost=float(d.reserved_cost),
            spent_units=d.spent_units,
            created_at=d.created_at,
        )
        for d in session.scalars(stmt)
    ]


def request_route(
    session: Session, principal: Principal, project_id: int, body: RouteRequest
) -> Job:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    load_routing(session, project.id)
    if body.sample is not None and not body.dry_run:
        raise Invalid("sample is for dry runs; use limit to route part of the held items.")
    from app.routing.jobs import ROUTE

    job = jobs.enqueue(
        session,
        ROUTE,
        {"project_id": project.id, **body.model_dump(exclude_none=True)},
        project_id=project.id,
        created_by=principal.id,
    )
    record(
        session,
        principal.id,
        "routing.route",
        "project",
        project.id,
        job_id=job.id,
        dry_run=body.dry_run,
    )
    return job


def after_import(session: Session, project_id: int) -> Job | None:
    """Called by the importer when held items arrived: route them if the policy says so."""
    _, version = load_routing(session, project_id)
    if not version.route_after_import:
        return None
    from app.routing.jobs import ROUTE

    return jobs.enqueue(session, ROUTE, {"project_id": project_id}, project_id=project_id)


_JUDGE_STATS = text(
    """
    WITH o AS (
        SELECT DISTINCT ON (o.item_id, o.judge_id) o.item_id, o.judge_id, o.probability,
               o.consistent
        FROM judge_outputs o
        WHERE o.project_id = :pid AND o.judge_id = ANY(:judges)
        ORDER BY o.item_id, o.judge_id, o.template_id DESC
    ), h AS (
        SELECT a.item_id,
               count(*) FILTER (WHERE (a.payload->>'preferred')::bigint = r.id) AS first,
               count(*) FILTER (WHERE (a.payload->>'preferred')::bigint <> r.id) AS second
        FROM annotations a JOIN responses r ON r.item_id = a.item_id AND r.position = 0
        WHERE a.project_id = :pid AND a.source = 'human'
        GROUP BY a.item_id
    ), l AS (
        SELECT r.item_id, sum(CASE WHEN r.position = 0 THEN length(r.text) ELSE 0 END) AS a,
               sum(CASE WHEN r.position = 1 THEN length(r.text) ELSE 0 END) AS b
        FROM responses r JOIN o ON o.item_id = r.item_id GROUP BY r.item_id
    )
    SELECT o.judge_id, count(*),
           avg(o.consistent::int),
           avg(((o.probability > 0.5) = (h.first > h.second))::int)
               FILTER (WHERE h.first <> h.second AND o.probability <> 0.5),
           count(*) FILTER (WHERE h.first <> h.second AND o.probability <> 0.5),
           avg(((o.probability > 0.5) = (l.a > l.b))::int)
               FILTER (WHERE o.probability <> 0.5 AND l.a <> l.b)
    FROM o LEFT JOIN h ON h.item_id = o.item_id LEFT JOIN l ON l.item_id = o.item_id
    GROUP BY o.judge_id
    """
)


def judge_summaries(
    session: Session, judge_ids: list[int], project_id: int | None = None
) -> list[dict[str, Any]]:
    """The pool's judges as the routing tab lists them: name, backend, model and, on this
    project, outputs, swap consistency, agreement with the human majority, longer-wins share."""
    from app.judges.models import Judge

    if not judge_ids:
        return []
    stats: dict[int, Any] = {}
    if project_id is not None:
        stats = {
            r[0]: r for r in session.execute(_JUDGE_STATS, {"pid": project_id, "judges": judge_ids})
        }
    out = []
    for j in session.scalars(select(Judge).where(Judge.id.in_(judge_ids)).order_by(Judge.id)):
        row = stats.get(j.id)
        out.append(
            {
                "id": j.id,
                "name": j.name,
                "backend": j.backend,
                "model": j.model,
                "judged": int(row[1]) if row else 0,
                "consistency": None if row is None or row[2] is None else float(row[2]),
                "agreement": None if row is None or row[3] is None else float(row[3]),
                "agreement_n": int(row[4]) if row else 0,
                "longer_wins": None if row is None or row[5] is None else float(row[5]),
            }
        )
    return out
