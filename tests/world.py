"""A small complete world for the suites that sweep every route (authz, fuzz, bad input).

Users of each role, each with an API token and a browser session; project `project` (pairwise,
two items) whose members are `researcher_member` (its creator) and `annotator_member`, who
holds a lease; an export of it with its job; and `other_project`, where the two outsiders are
members. Built through the services in one transaction, so a fresh world costs milliseconds.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

CALLERS = (
    "anonymous",
    "bad_token",
    "annotator_outsider",
    "annotator_member",
    "researcher_outsider",
    "researcher_member",
    "admin",
)


@dataclass
class Person:
    id: int
    email: str
    role: str
    token: str  # bearer
    session: str  # browser session cookie
    csrf: str  # the session's CSRF token


@dataclass
class World:
    people: dict[str, Person]
    project: int
    other_project: int
    assignment: int
    export: int
    job: int
    invitation: int
    invite_token: str
    policy: int = 0
    items: list[int] = field(default_factory=list)
    judge: int = 0  # a simulated judge, and a queued run of it on `project`
    judge_run: int = 0
    template: int = 0  # the pairwise template that run uses
    model: int = 0  # a registered base model (admin's) that nothing uses
    training_run: int = 0  # a queued training run of `project` (researcher_member's)
    loop: int = 0  # a running loop on `project` (researcher_member's), its generation queued
    prompt_set: int = 0  # a prompt set of `project` that no job names

    def ids(self) -> dict[str, int]:
        """Path parameters by name; {user_id} is the annotator member (removable)."""
        return {
            "project_id": self.project,
            "assignment_id": self.assignment,
            "export_id": self.export,
            "job_id": self.job,
            "user_id": self.people["annotator_member"].id,
            "invitation_id": self.invitation,
            "token": self.invite_token,
            "item_id": self.items[0],
            "judge_id": self.judge,
            "run_id": self.judge_run,
            "template_id": self.template,
            "model_id": self.model,
            "training_run_id": self.training_run,
            "policy_id": self.policy,
            "loop_id": self.loop,
            "prompt_set_id": self.prompt_set,
        }


ROWS = [
    {"external_id": f"w-{n}", "prompt": f"prompt {n}", "responses": [{"text": "a"}, {"text": "b"}]}
    for n in range(2)
]


def build_world(password_hash: str) -> World:
    from app.assignments import engine
    from app.auth.invitations import create_invitation, token_of
    from app.auth.models import InvitedRole, Role, TokenKind, User
    from app.auth.service import Principal, issue_token
    from app.auth.tokens import csrf_token
    from app.config import get_settings
    from app.db import session_scope
    from app.exports.schemas import ExportOptions
    from app.exports.service import request_snapshot
    from app.items.importer import import_rows
    from app.judges import service as judges
    from app.judges.schemas import JudgeCreate, JudgeRunCreate
    from app.projects.models import Project, ProjectMember
    from app.projects.schemas import ProjectCreate
    from app.projects.service import create_project
    from app.prompts.models import PromptSource
    from app.prompts.service import create_prompt_set
    from app.routing.schemas import PolicyCreate, RoutingSet
    from app.routing.service import create_policy, set_routing

    secret = get_settings().resolved_secret_key()
    people: dict[str, Person] = {}
    principals: dict[str, Any] = {}
    with session_scope() as s:
        for name in CALLERS[2:]:
            role = name.split("_")[0]
            email = f"{name}-{uuid.uuid4().hex[:6]}@example.org"
            user = User(email=email, password_hash=password_hash, role=role)
            s.add(user)
            s.flush()
            token, _ = issue_token(s, user, TokenKind.api, 3600)
            cookie, _ = issue_token(s, user, TokenKind.session, 3600)
            people[name] = Person(user.id, email, role, token, cookie, csrf_token(secret, cookie))
            principals[name] = Principal(user.id, email, Role(role), token)
        project = create_project(
            s, principals["researcher_member"], ProjectCreate(name="world", kind="pairwise")
        )
        s.add(ProjectMember(project_id=project.id, user_id=people["annotator_member"].id))
        other = create_project(
            s, principals["researcher_outsider"], ProjectCreate(name="elsewhere", kind="pairwise")
        )
        s.add(ProjectMember(project_id=other.id, user_id=people["annotator_outsider"].id))
        s.flush()
        import_rows(s, s.get_one(Project, project.id), enumerate(ROWS, start=1))
        task = engine.next_task(s, principals["annotator_member"], project.id)
        assert task is not None
        export, job = request_snapshot(
            s, principals["researcher_member"], project.id, ExportOptions()
        )
        model, training_run = _training(s, principals, project.id)
        invitation = create_invitation(
            s, principals["researcher_member"], project.id,
            f"invitee-{uuid.uuid4().hex[:6]}@example.org", InvitedRole.annotator,
        )  # fmt: skip
        judge = judges.create_judge(
            s,
            principals["admin"],
            JudgeCreate(
                name=f"world judge {uuid.uuid4().hex[:8]}",
                backend="simulated",
                model="sim",
                params={"truth": {"metadata_key": "truth"}},
            ),
        )
        run, _ = judges.start_run(
            s, principals["researcher_member"], project.id, JudgeRunCreate(judge_id=judge.id)
        )
        policy = create_policy(
            s,
            principals["admin"],
            PolicyCreate(name=f"world-{uuid.uuid4().hex[:6]}", strategy="all_ai"),
        )
        set_routing(
            s,
            principals["admin"],
            project.id,
            RoutingSet(policy_id=policy.id, judge_ids=[judge.id]),
        )
        prompt_set = create_prompt_set(
            s, principals["researcher_member"], project.id, "world prompts",
            ["Say hello.", "Count to three."], PromptSource.list,
        )  # fmt: skip
        items = list(
            s.scalars(
                text("SELECT id FROM items WHERE project_id = :p ORDER BY id"), {"p": project.id}
            )
        )
        loop = _loop(s, principals, project.id)
        return World(
            people=people,
            project=project.id,
            other_project=other.id,
            assignment=task["assignment_id"],
            export=export.id,
            job=job.id,
            invitation=invitation.id,
            invite_token=token_of(invitation),
            policy=policy.id,
            items=items,
            judge=judge.id,
            judge_run=run.id,
            template=run.template_id,
            model=model,
            training_run=training_run,
            loop=loop,
            prompt_set=prompt_set.id,
        )


def model_folder() -> str:
    """A folder that registers as a model (config.json and a .safetensors file)."""
    from app.config import get_settings

    folder = get_settings().data_dir / "world-models" / uuid.uuid4().hex[:8]
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    return str(folder)


def _training(s: Any, principals: dict[str, Any], project_id: int) -> tuple[int, int]:
    """Two base models registered by the admin, and a queued reward-model run on `project`
    that trains the second (so the first can be deleted)."""
    from app.registry.schemas import BaseModelCreate
    from app.registry.service import register_base
    from app.training.runs.schemas import RunCreate
    from app.training.runs.service import create_run

    model = register_base(
        s, principals["admin"], BaseModelCreate(name="world model", path=model_folder())
    )
    base = register_base(
        s, principals["admin"], BaseModelCreate(name="world base", path=model_folder())
    )
    body = RunCreate(kind="reward_model", project_id=project_id, base_model_id=base.id)
    run, _ = create_run(s, principals["researcher_member"], body)
    return model.id, run.id


def loop_body(project_id: int, policy_id: int) -> dict[str, Any]:
    """A valid loop on `project_id` (the API's body) sampling from `policy_id`."""
    return {
        "project_id": project_id,
        "policy_model_id": policy_id,
        "reward_model": {"base_model_id": policy_id, "config": {"max_steps": 2}},
        "update": {"kind": "dpo", "config": {"max_steps": 2}},
        "iterations": 2,
        "prompts_per_iteration": 1,
        "prompts": ["Say hello.", "Say goodbye."],
    }


def _loop(s: Any, principals: dict[str, Any], project_id: int) -> int:
    """A loop of researcher_member's on `project`, sampling from a model of its own (so that
    the world's `model` stays deletable)."""
    from app.loops.schemas import LoopCreate
    from app.loops.service import create_loop
    from app.registry.schemas import BaseModelCreate
    from app.registry.service import register_base

    policy = register_base(
        s, principals["admin"], BaseModelCreate(name="world policy", path=model_folder())
    )
    body = LoopCreate.model_validate(loop_body(project_id, policy.id))
    loop, _ = create_loop(s, principals["researcher_member"], body)
    return loop.id


def row_counts() -> dict[str, int]:
    """Rows in every table of the schema (what a rejected request must leave unchanged)."""
    from app.db import session_scope
    from app.models import Base

    tables = sorted(Base.metadata.tables)
    query = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in tables)
    with session_scope() as s:
        return {name: n for name, n in s.execute(text(query))}
