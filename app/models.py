"""Imports every domain's models so that Base.metadata is complete (Alembic, tests)."""

from app.annotations.models import Annotation
from app.assignments.models import Assignment
from app.audit.models import AuditEntry
from app.auth.models import ApiToken, Invitation, User
from app.db import Base
from app.exports.models import Export
from app.items.models import Item, Response
from app.jobs.models import Job, JobBlob
from app.judges.models import Judge, JudgeOutput, JudgeRun, JudgeTemplate
from app.loops.models import Loop, LoopIteration, LoopStep
from app.projects.models import Project, ProjectMember
from app.prompts.models import PromptSet
from app.quality.models import (
    Adjudication,
    AnnotatorPause,
    ProjectStats,
    QualitySettings,
    ReviewCandidate,
)
from app.registry.models import ModelVersion
from app.routing.models import (
    ProjectRouting,
    RoutingBudget,
    RoutingDecision,
    RoutingModel,
    RoutingPolicy,
    RoutingPolicyVersion,
)
from app.training.runs.models import TrainingRun

__all__ = [
    "Adjudication",
    "Annotation",
    "AnnotatorPause",
    "ApiToken",
    "Assignment",
    "AuditEntry",
    "Base",
    "Export",
    "Invitation",
    "Item",
    "Job",
    "JobBlob",
    "Judge",
    "JudgeOutput",
    "JudgeRun",
    "JudgeTemplate",
    "Loop",
    "LoopIteration",
    "LoopStep",
    "ModelVersion",
    "Project",
    "ProjectMember",
    "ProjectRouting",
    "ProjectStats",
    "PromptSet",
    "QualitySettings",
    "Response",
    "ReviewCandidate",
    "RoutingBudget",
    "RoutingDecision",
    "RoutingModel",
    "RoutingPolicy",
    "RoutingPolicyVersion",
    "TrainingRun",
    "User",
]
