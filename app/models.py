"""Imports every domain's models so that Base.metadata is complete (Alembic, tests)."""

from app.annotations.models import Annotation
from app.assignments.models import Assignment
from app.audit.models import AuditEntry
from app.auth.models import ApiToken, User
from app.db import Base
from app.exports.models import Export
from app.items.models import Item, Response
from app.jobs.models import Job, JobBlob
from app.judges.models import Judge, JudgeOutput, JudgeRun, JudgeTemplate
from app.projects.models import Project, ProjectMember
from app.routing.models import (
    ProjectRouting,
    RoutingBudget,
    RoutingDecision,
    RoutingModel,
    RoutingPolicy,
    RoutingPolicyVersion,
)

__all__ = [
    "Annotation",
    "ApiToken",
    "Assignment",
    "AuditEntry",
    "Base",
    "Export",
    "Item",
    "Job",
    "JobBlob",
    "Judge",
    "JudgeOutput",
    "JudgeRun",
    "JudgeTemplate",
    "Project",
    "ProjectMember",
    "ProjectRouting",
    "Response",
    "RoutingBudget",
    "RoutingDecision",
    "RoutingModel",
    "RoutingPolicy",
    "RoutingPolicyVersion",
    "User",
]
