"""Every route: the body it takes and who may call it, for the suites that sweep them all.

`API` (JSON routes, bearer tokens) and `PAGES` (HTML routes, session cookies) map
"METHOD /path" to the status each caller gets (in `tests.world.CALLERS` order) and to a valid
request body or form. tests/authz checks the statuses; tests/badinput spoils the bodies.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD
from tests.world import CALLERS, World, loop_body, model_folder

Body = Callable[[World], Any]
NO_CSRF = "session_without_csrf"
COLUMNS = (*CALLERS, NO_CSRF)


@dataclass(frozen=True)
class Rule:
    """Expected status per caller (in CALLERS order), and how to build the request."""

    statuses: tuple[int, int, int, int, int, int, int]
    json: Body | None = None
    # Routes that authenticate nobody (login, health): a cookie without CSRF changes nothing.
    public: bool = False

    def expected(self, caller: str, method: str) -> int:
        if caller == NO_CSRF:
            member = self.statuses[CALLERS.index("researcher_member")]
            return member if self.public or method == "GET" else 403
        return self.statuses[CALLERS.index(caller)]


def login_body(w: World) -> dict[str, str]:
    return {"email": w.people["annotator_member"].email, "password": PASSWORD}


def new_user_body(w: World) -> dict[str, str]:
    return {"email": f"new-{uuid.uuid4().hex[:8]}@example.org", "password": PASSWORD}


def rows_body(w: World) -> list[dict[str, Any]]:
    return [{"prompt": "new", "responses": [{"text": "a"}, {"text": "b"}]}]


def judge_body(w: World) -> dict[str, Any]:
    return {
        "name": f"judge-{uuid.uuid4().hex[:8]}",
        "backend": "simulated",
        "model": "sim",
        "params": {"truth": {"metadata_key": "truth"}},
    }


def loop_form(w: World) -> dict[str, str]:
    """The start-a-loop form as a browser posts it."""
    return {
        "project_id": str(w.project),
        "policy_model_id": str(w.model),
        "rm_base_model_id": str(w.model),
        "update_kind": "dpo",
        "iterations": "2",
        "prompts_per_iteration": "1",
        "prompts": "Say hello.\nSay goodbye.",
        "rm_config": '{"max_steps": 2}',
        "update_config": '{"max_steps": 2}',
        "deadline_hours": "1",
        "min_labels": "1",
        "at_deadline": "proceed",
    }


ANYONE = (200,) * 7
RESEARCHERS = (401, 401, 403, 403, 200, 200, 200)
ADMIN = (401, 401, 403, 403, 403, 403, 200)
NEW_PASSWORD = "a-new-password-42"
SIGNED_IN = (401, 401, 200, 200, 200, 200, 200)
MEMBERS = (401, 401, 404, 200, 404, 200, 200)
RESEARCHER_MEMBERS = (401, 401, 403, 403, 404, 200, 200)
ASSIGNEE = (401, 401, 403, 200, 403, 403, 403)
ADMIN_ONLY = (401, 401, 403, 403, 403, 403, 200)

API: dict[str, Rule] = {
    "POST /api/v1/auth/token": Rule(ANYONE, login_body, public=True),
    "DELETE /api/v1/auth/token": Rule((401, 401, 204, 204, 204, 204, 204)),
    "POST /api/v1/auth/session": Rule(ANYONE, login_body, public=True),
    "DELETE /api/v1/auth/session": Rule((401, 401, 204, 204, 204, 204, 204)),
    "GET /api/v1/me": Rule(SIGNED_IN),
    "POST /api/v1/users": Rule((401, 401, 403, 403, 403, 403, 201), new_user_body),
    "GET /api/v1/users": Rule(ADMIN),
    "GET /api/v1/users/{user_id}": Rule(ADMIN),
    "PATCH /api/v1/users/{user_id}": Rule(ADMIN, lambda w: {"role": "researcher"}),
    "PUT /api/v1/me/password": Rule(
        (401, 401, 204, 204, 204, 204, 204),
        lambda w: {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    ),
    # Researchers see the invitations of the projects they are members of.
    "GET /api/v1/invitations": Rule((401, 401, 403, 403, 200, 200, 200)),
    "POST /api/v1/invitations": Rule(
        (401, 401, 403, 403, 404, 201, 201),
        lambda w: {
            "email": new_user_body(w)["email"],
            "project_id": w.project,
            "role": "annotator",
        },
    ),
    "DELETE /api/v1/invitations/{invitation_id}": Rule((401, 401, 403, 403, 404, 200, 200)),
    # The link's token is the credential: anyone holding it may accept, once.
    "POST /api/v1/auth/accept-invitation": Rule(
        (201,) * 7, lambda w: {"token": w.invite_token, "password": PASSWORD}, public=True
    ),
    "POST /api/v1/projects": Rule(
        (401, 401, 403, 403, 201, 201, 201), lambda w: {"name": "p", "kind": "ranking"}
    ),
    "GET /api/v1/projects": Rule(SIGNED_IN),
    "GET /api/v1/projects/{project_id}": Rule(MEMBERS),
    "PATCH /api/v1/projects/{project_id}": Rule(
        (401, 401, 403, 403, 404, 200, 200), lambda w: {"guidelines": "Be kind."}
    ),
    "GET /api/v1/projects/{project_id}/members": Rule(RESEARCHER_MEMBERS),
    "POST /api/v1/projects/{project_id}/members": Rule(
        (401, 401, 403, 403, 404, 201, 201),
        lambda w: {"user_id": w.people["annotator_outsider"].id},
    ),
    "DELETE /api/v1/projects/{project_id}/members/{user_id}": Rule(
        (401, 401, 403, 403, 404, 204, 204)
    ),
    "GET /api/v1/projects/{project_id}/progress": Rule(MEMBERS),
    "POST /api/v1/projects/{project_id}/archive": Rule((401, 401, 403, 403, 404, 200, 200)),
    "POST /api/v1/projects/{project_id}/unarchive": Rule((401, 401, 403, 403, 404, 200, 200)),
    # Admins only; the world's export job is still queued, so even they are refused (409).
    "DELETE /api/v1/projects/{project_id}": Rule((401, 401, 403, 403, 403, 403, 409)),
    "POST /api/v1/projects/{project_id}/items": Rule(
        (401, 401, 403, 403, 404, 201, 201), rows_body
    ),
    "GET /api/v1/projects/{project_id}/items": Rule(RESEARCHER_MEMBERS),
    "POST /api/v1/projects/{project_id}/tasks/next": Rule(MEMBERS),
    "POST /api/v1/assignments/{assignment_id}/submit": Rule(
        (401, 401, 403, 201, 403, 403, 403), lambda w: {"payload": {"choice": "a"}}
    ),
    "POST /api/v1/assignments/{assignment_id}/skip": Rule(ASSIGNEE, lambda w: {"reason": "x"}),
    "PUT /api/v1/assignments/{assignment_id}/draft": Rule(ASSIGNEE, lambda w: {"draft": {"a": 1}}),
    # One rule by kind (app/jobs/specs.py `visible_to`): the world's job is an export, which
    # its creator, admins and the project's researchers see; annotators do not.
    "GET /api/v1/jobs": Rule(SIGNED_IN),
    "GET /api/v1/jobs/{job_id}": Rule((401, 401, 404, 404, 404, 200, 200)),
    # Its owner (researcher_member) or an admin may cancel it.
    "POST /api/v1/jobs/{job_id}/cancel": Rule((401, 401, 404, 404, 404, 200, 200)),
    "GET /api/v1/projects/{project_id}/export": Rule(RESEARCHER_MEMBERS),
    "GET /api/v1/projects/{project_id}/export/preview": Rule(RESEARCHER_MEMBERS),
    "POST /api/v1/projects/{project_id}/exports": Rule(
        (401, 401, 403, 403, 404, 202, 202), lambda w: {"schema": "raw"}
    ),
    "GET /api/v1/projects/{project_id}/exports": Rule(RESEARCHER_MEMBERS),
    "GET /api/v1/projects/{project_id}/exports/{export_id}": Rule(RESEARCHER_MEMBERS),
    # The world's export is still queued: allowed callers learn it is not ready.
    "GET /api/v1/projects/{project_id}/exports/{export_id}/download": Rule(
        (401, 401, 403, 403, 404, 409, 409)
    ),
    "GET /api/v1/projects/{project_id}/exports/{export_id}/manifest": Rule(
        (401, 401, 403, 403, 404, 409, 409)
    ),
    "GET /api/v1/projects/{project_id}/exports/{export_id}/card": Rule(
        (401, 401, 403, 403, 404, 409, 409)
    ),
    "GET /api/v1/projects/{project_id}/stats": Rule(RESEARCHER_MEMBERS),
    "POST /api/v1/projects/{project_id}/stats/refresh": Rule((401, 401, 403, 403, 404, 202, 202)),
    # The world's responses carry no `model`: allowed callers learn there is no leaderboard.
    "GET /api/v1/projects/{project_id}/leaderboard": Rule((401, 401, 403, 403, 404, 422, 422)),
    "GET /api/v1/projects/{project_id}/annotators/{user_id}/quality": Rule(RESEARCHER_MEMBERS),
    "GET /api/v1/projects/{project_id}/pauses": Rule(RESEARCHER_MEMBERS),
    "PUT /api/v1/projects/{project_id}/annotators/{user_id}/pause": Rule(
        (401, 401, 403, 403, 404, 200, 200), lambda w: {"reason": "checking"}
    ),
    "DELETE /api/v1/projects/{project_id}/annotators/{user_id}/pause": Rule(
        (401, 401, 403, 403, 404, 204, 204)
    ),
    "GET /api/v1/projects/{project_id}/quality-settings": Rule(RESEARCHER_MEMBERS),
    "PATCH /api/v1/projects/{project_id}/quality-settings": Rule(
        (401, 401, 403, 403, 404, 200, 200), lambda w: {"review_below": 0.5}
    ),
    "GET /api/v1/projects/{project_id}/review": Rule(RESEARCHER_MEMBERS),
    "PUT /api/v1/projects/{project_id}/items/{item_id}/adjudication": Rule(
        (401, 401, 403, 403, 404, 200, 200), lambda w: {"tie": True, "note": "n"}
    ),
    "DELETE /api/v1/projects/{project_id}/items/{item_id}/adjudication": Rule(
        (401, 401, 403, 403, 404, 204, 204)
    ),
    # The world's model is a base model (every researcher sees it) registered by the admin,
    # who alone may delete it (nothing depends on it; the world's run trains another one).
    "GET /api/v1/models": Rule(RESEARCHERS),
    "POST /api/v1/models": Rule(
        (401, 401, 403, 403, 403, 403, 201), lambda w: {"name": "m", "path": model_folder()}
    ),
    "GET /api/v1/models/{model_id}": Rule(RESEARCHERS),
    "GET /api/v1/models/{model_id}/lineage": Rule(RESEARCHERS),
    "GET /api/v1/models/{model_id}/lineage/labels": Rule(RESEARCHERS),
    "GET /api/v1/projects/{project_id}/items/{item_id}/lineage": Rule(RESEARCHER_MEMBERS),
    "DELETE /api/v1/models/{model_id}": Rule((401, 401, 403, 403, 403, 403, 204)),
    "POST /api/v1/training-runs": Rule(
        (401, 401, 403, 403, 404, 202, 202),
        lambda w: {"kind": "reward_model", "project_id": w.project, "base_model_id": w.model},
    ),
    "GET /api/v1/training-runs": Rule(RESEARCHERS),
    "POST /api/v1/projects/{project_id}/generate": Rule(
        (401, 401, 403, 403, 404, 202, 202),
        lambda w: {"model_id": w.model, "prompts": ["Say hello."], "n": 1},
    ),
    "POST /api/v1/projects/{project_id}/prompt-sets": Rule(
        (401, 401, 403, 403, 404, 201, 201),
        lambda w: {"name": f"set-{uuid.uuid4().hex[:8]}", "prompts": ["Say hi.", "Wave."]},
    ),
    "GET /api/v1/projects/{project_id}/prompt-sets": Rule(RESEARCHER_MEMBERS),
    "GET /api/v1/projects/{project_id}/prompt-sets/{prompt_set_id}": Rule(RESEARCHER_MEMBERS),
    # The world's set is named by no job: its project's researchers (and admins) delete it.
    "DELETE /api/v1/projects/{project_id}/prompt-sets/{prompt_set_id}": Rule(
        (401, 401, 403, 403, 404, 204, 204)
    ),
    "GET /api/v1/training-runs/{training_run_id}": Rule(RESEARCHER_MEMBERS),
    # Loops: researchers start them on their projects; the creator (researcher_member) or an
    # admin pauses, resumes and cancels (the world's loop is running: each is a 200).
    "POST /api/v1/loops": Rule(
        (401, 401, 403, 403, 404, 202, 202), lambda w: loop_body(w.project, w.model)
    ),
    "GET /api/v1/loops": Rule(RESEARCHERS),
    "GET /api/v1/loops/{loop_id}": Rule(RESEARCHER_MEMBERS),
    "POST /api/v1/loops/{loop_id}/pause": Rule(RESEARCHER_MEMBERS),
    "POST /api/v1/loops/{loop_id}/resume": Rule(RESEARCHER_MEMBERS),
    "POST /api/v1/loops/{loop_id}/cancel": Rule(RESEARCHER_MEMBERS),
    # The world's run is queued: its creator (researcher_member) or an admin cancels it.
    "POST /api/v1/training-runs/{training_run_id}/cancel": Rule(RESEARCHER_MEMBERS),
    # Refused while its job runs: the world's export is still queued.
    "DELETE /api/v1/projects/{project_id}/exports/{export_id}": Rule(
        (401, 401, 403, 403, 404, 409, 409)
    ),
    # Judges and templates: admins write them, researchers read them (to run them).
    "POST /api/v1/judges": Rule((401, 401, 403, 403, 403, 403, 201), judge_body),
    "GET /api/v1/judges": Rule(RESEARCHERS),
    "GET /api/v1/judges/{judge_id}": Rule(RESEARCHERS),
    "PATCH /api/v1/judges/{judge_id}": Rule(ADMIN, lambda w: {"enabled": True}),
    # project_id is a required query parameter (tests/judges/test_metrics.py calls it with
    # one): without it, researchers and admins get a 422 naming it.
    "GET /api/v1/judges/{judge_id}/metrics": Rule((401, 401, 403, 403, 422, 422, 422)),
    "GET /api/v1/judge-templates": Rule(RESEARCHERS),
    "POST /api/v1/judge-templates": Rule(
        (401, 401, 403, 403, 403, 403, 201),
        lambda w: {"kind": "critique", "user": "{guidelines} {prompt} {response}"},
    ),
    "GET /api/v1/judge-templates/{template_id}": Rule(RESEARCHERS),
    "PATCH /api/v1/judge-templates/{template_id}": Rule(ADMIN, lambda w: {"system": "Be fair."}),
    # Runs: researchers who are members of the project, and admins.
    "POST /api/v1/projects/{project_id}/judge-runs": Rule(
        (401, 401, 403, 403, 404, 202, 202), lambda w: {"judge_id": w.judge}
    ),
    "GET /api/v1/projects/{project_id}/judge-runs": Rule(RESEARCHER_MEMBERS),
    "GET /api/v1/projects/{project_id}/judge-runs/{run_id}": Rule(RESEARCHER_MEMBERS),
    "GET /api/v1/projects/{project_id}/judge-runs/{run_id}/outputs": Rule(RESEARCHER_MEMBERS),
    # Routing: policies are the admins'; a project's routing is read and run by its researchers.
    "POST /api/v1/routing-policies": Rule(
        (401, 401, 403, 403, 403, 403, 201),
        lambda w: {
            "name": f"p-{uuid.uuid4().hex[:8]}",
            "strategy": "random",
            "params": {"fraction": 0.5},
            "human_budget": 10,
        },
    ),
    "GET /api/v1/routing-policies": Rule(ADMIN_ONLY),
    "GET /api/v1/routing-policies/{policy_id}": Rule(ADMIN_ONLY),
    "PATCH /api/v1/routing-policies/{policy_id}": Rule(ADMIN_ONLY, lambda w: {"human_budget": 20}),
    "PUT /api/v1/projects/{project_id}/routing": Rule(
        ADMIN_ONLY, lambda w: {"policy_id": w.policy, "judge_ids": [w.judge]}
    ),
    "GET /api/v1/projects/{project_id}/routing": Rule(RESEARCHER_MEMBERS),
    "POST /api/v1/projects/{project_id}/route": Rule(
        (401, 401, 403, 403, 404, 202, 202), lambda w: {"dry_run": True, "sample": 5}
    ),
    "GET /api/v1/projects/{project_id}/routing/decisions": Rule(RESEARCHER_MEMBERS),
    "GET /api/v1/projects/{project_id}/routing/budget": Rule(RESEARCHER_MEMBERS),
    "GET /healthz": Rule(ANYONE, public=True),
    "GET /readyz": Rule(ANYONE, public=True),
    "GET /metrics": Rule(ANYONE, public=True),
}


@dataclass(frozen=True)
class Page:
    """Like Rule, for HTML routes: 303 is the redirect to /login (or a form's success)."""

    statuses: tuple[int, int, int, int, int, int, int]
    form: Callable[[World], dict[str, str]] | None = None
    files: bool = False
    public: bool = False

    def expected(self, caller: str, method: str) -> int:
        if caller == NO_CSRF:
            member = self.statuses[CALLERS.index("researcher_member")]
            return member if self.public or method == "GET" else 403
        return self.statuses[CALLERS.index(caller)]


LOGGED_IN = (303, 303, 200, 200, 200, 200, 200)
PAGE_MEMBERS = (303, 303, 404, 200, 404, 200, 200)
FORM_RESEARCHER_MEMBERS = (303, 303, 403, 403, 404, 303, 303)
PAGE_RESEARCHERS = (303, 303, 403, 403, 200, 200, 200)
PAGE_RESEARCHER_MEMBERS = (303, 303, 403, 403, 404, 200, 200)

ADMIN_PAGE = (303, 303, 403, 403, 403, 403, 200)
ADMIN_FORM = (303, 303, 403, 403, 403, 403, 303)


def judge_form(w: World) -> dict[str, str]:
    return {
        "name": f"judge-{uuid.uuid4().hex[:8]}",
        "backend": "simulated",
        "model": "sim",
        "params": '{"truth": {"metadata_key": "truth"}}',
        "per_call": "0",
        "enabled": "on",
    }


PAGES: dict[str, Page] = {
    "GET /login": Page((200, 200, 303, 303, 303, 303, 303), public=True),
    "POST /login": Page((303,) * 7, public=True),
    "POST /logout": Page((303,) * 7, form=lambda w: {}),
    "GET /": Page(LOGGED_IN),
    "GET /projects/new": Page((303, 303, 403, 403, 200, 200, 200)),
    "POST /projects/new": Page(
        (303, 303, 403, 403, 303, 303, 303), form=lambda w: {"name": "n", "kind": "critique"}
    ),
    "GET /projects/{project_id}/settings": Page((303, 303, 403, 403, 404, 200, 200)),
    "POST /projects/{project_id}/settings": Page(
        FORM_RESEARCHER_MEMBERS, form=lambda w: {"name": "renamed", "allow_tie": "on"}
    ),
    "GET /projects/{project_id}": Page(PAGE_MEMBERS),
    "POST /projects/{project_id}/items": Page(
        FORM_RESEARCHER_MEMBERS, form=lambda w: {}, files=True
    ),
    "POST /projects/{project_id}/members": Page(
        FORM_RESEARCHER_MEMBERS, form=lambda w: {"email": w.people["annotator_outsider"].email}
    ),
    "POST /projects/{project_id}/members/{user_id}/remove": Page(
        FORM_RESEARCHER_MEMBERS, form=lambda w: {}
    ),
    "POST /projects/{project_id}/invitations": Page(
        FORM_RESEARCHER_MEMBERS,
        form=lambda w: {"email": new_user_body(w)["email"], "role": "annotator"},
    ),
    "POST /projects/{project_id}/invitations/{invitation_id}/revoke": Page(
        FORM_RESEARCHER_MEMBERS, form=lambda w: {}
    ),
    "GET /users": Page(ADMIN_PAGE),
    "POST /users": Page(ADMIN_FORM, form=lambda w: {**new_user_body(w), "role": "annotator"}),
    "GET /users/{user_id}": Page(ADMIN_PAGE),
    "POST /users/{user_id}": Page(
        ADMIN_FORM, form=lambda w: {"role": "researcher", "status": "active"}
    ),
    "POST /users/{user_id}/password": Page(ADMIN_FORM, form=lambda w: {"password": NEW_PASSWORD}),
    "GET /account/password": Page(LOGGED_IN),
    "POST /account/password": Page(
        (303,) * 7,
        form=lambda w: {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    ),
    # Public: the invitation link is the credential (each caller gets a fresh world's link).
    "GET /invite/{token}": Page((200,) * 7, public=True),
    "POST /invite/{token}": Page(
        (303,) * 7,
        form=lambda w: {"password": PASSWORD, "confirm_password": PASSWORD},
        public=True,
    ),
    "GET /projects/{project_id}/quality": Page((303, 303, 403, 403, 404, 200, 200)),
    "POST /projects/{project_id}/quality/refresh": Page(FORM_RESEARCHER_MEMBERS, form=lambda w: {}),
    # Not the demo loop project: a member researcher is sent back with the reason (nothing runs).
    "POST /projects/{project_id}/demo-loop": Page(
        FORM_RESEARCHER_MEMBERS, form=lambda w: {"seed": "1", "iterations": "2"}
    ),
    "POST /projects/{project_id}/annotators/{user_id}/lift": Page(
        FORM_RESEARCHER_MEMBERS, form=lambda w: {}
    ),
    "GET /projects/{project_id}/review": Page((303, 303, 403, 403, 404, 200, 200)),
    "POST /projects/{project_id}/review/{item_id}": Page(
        FORM_RESEARCHER_MEMBERS, form=lambda w: {"tie": "1"}
    ),
    "GET /projects/{project_id}/annotate": Page(PAGE_MEMBERS),
    # Judges: admin pages; a judge's metrics page for researcher members (the row has no
    # ?project_id=, which the page asks for with a 422).
    "GET /admin/judges": Page(ADMIN_PAGE),
    "POST /admin/judges": Page(ADMIN_FORM, form=lambda w: judge_form(w)),
    "GET /admin/judges/{judge_id}": Page(ADMIN_PAGE),
    "POST /admin/judges/{judge_id}": Page(
        ADMIN_FORM, form=lambda w: {k: v for k, v in judge_form(w).items() if k != "backend"}
    ),
    "POST /admin/judges/{judge_id}/runs": Page(
        ADMIN_FORM, form=lambda w: {"project_id": str(w.project), "items": "unjudged"}
    ),
    "POST /admin/judges/{judge_id}/try": Page(
        ADMIN_FORM, form=lambda w: {"project_id": str(w.project), "item_id": str(w.items[0])}
    ),
    # {job_id} is the world's export job, not a try: the admin is sent back to the judge.
    "GET /admin/judges/{judge_id}/try/{job_id}": Page(ADMIN_FORM),
    "GET /judges/{judge_id}/metrics": Page((303, 303, 403, 403, 422, 422, 422)),
    "GET /projects/{project_id}/exports": Page(PAGE_RESEARCHER_MEMBERS),
    "POST /projects/{project_id}/exports": Page(
        FORM_RESEARCHER_MEMBERS, form=lambda w: {"schema": "raw"}
    ),
    # The world's export is still queued: deleting it is refused until its job ends, a 303
    # back to the exports page carrying the reason (post-redirect-get, app/web/flash.py).
    "POST /projects/{project_id}/exports/{export_id}/delete": Page(
        (303, 303, 403, 403, 404, 303, 303), form=lambda w: {}
    ),
    "GET /projects/{project_id}/prompt-sets": Page(PAGE_RESEARCHER_MEMBERS),
    "POST /projects/{project_id}/prompt-sets": Page(
        FORM_RESEARCHER_MEMBERS,
        form=lambda w: {"name": f"set-{uuid.uuid4().hex[:8]}", "prompts": "Say hi.\nWave."},
    ),
    "GET /projects/{project_id}/items": Page(PAGE_RESEARCHER_MEMBERS),
    "GET /projects/{project_id}/items/{item_id}": Page(PAGE_RESEARCHER_MEMBERS),
    "GET /jobs": Page((303, 303, 403, 403, 200, 200, 200)),
    # The API's rule: the world's export job is its creator's (researcher_member) or an admin's.
    "POST /jobs/{job_id}/cancel": Page((303, 303, 404, 404, 404, 303, 303), form=lambda w: {}),
    "POST /projects/{project_id}/archive": Page(FORM_RESEARCHER_MEMBERS, form=lambda w: {}),
    "POST /projects/{project_id}/unarchive": Page(FORM_RESEARCHER_MEMBERS, form=lambda w: {}),
    # Admins only, with the name typed again; the world's queued export job refuses it: a
    # 303 back to the project page carrying the reason (post-redirect-get, app/web/flash.py).
    "POST /projects/{project_id}/delete": Page(
        (303, 303, 403, 403, 403, 403, 303), form=lambda w: {"confirm_name": "world"}
    ),
    # The workspace's JSON call: cookie and X-CSRF-Token header, answers like the API.
    "POST /projects/{project_id}/annotate/next": Page((401, 401, 404, 200, 404, 200, 200)),
    "GET /training": Page(PAGE_RESEARCHERS),
    "GET /training/new": Page(PAGE_RESEARCHERS),
    "POST /training/new": Page(
        FORM_RESEARCHER_MEMBERS,
        form=lambda w: {
            "kind": "reward_model",
            "project_id": str(w.project),
            "base_model_id": str(w.model),
            "config": "{}",
        },
    ),
    "GET /training/compare": Page(PAGE_RESEARCHERS),
    "GET /training/{training_run_id}": Page((303, 303, 403, 403, 404, 200, 200)),
    "POST /training/{training_run_id}/cancel": Page(FORM_RESEARCHER_MEMBERS, form=lambda w: {}),
    "GET /loops": Page(PAGE_RESEARCHERS),
    "GET /loops/new": Page(PAGE_RESEARCHERS),
    "POST /loops/new": Page(FORM_RESEARCHER_MEMBERS, form=lambda w: loop_form(w)),
    "GET /loops/{loop_id}": Page((303, 303, 403, 403, 404, 200, 200)),
    # The world's loop is running; its creator (researcher_member) or an admin steers it.
    "POST /loops/{loop_id}/pause": Page(FORM_RESEARCHER_MEMBERS, form=lambda w: {}),
    "POST /loops/{loop_id}/resume": Page(FORM_RESEARCHER_MEMBERS, form=lambda w: {}),
    "POST /loops/{loop_id}/cancel": Page(FORM_RESEARCHER_MEMBERS, form=lambda w: {}),
    "GET /models": Page(PAGE_RESEARCHERS),
    "GET /models/{model_id}": Page(PAGE_RESEARCHERS),
    "GET /admin/routing": Page((303, 303, 403, 403, 403, 403, 200)),
    "POST /admin/routing": Page(
        (303, 303, 403, 403, 403, 403, 303),
        form=lambda w: {"name": f"page-{uuid.uuid4().hex[:8]}", "strategy": "all_ai"},
    ),
    "GET /admin/routing/{policy_id}": Page((303, 303, 403, 403, 403, 403, 200)),
    "POST /admin/routing/{policy_id}": Page(
        (303, 303, 403, 403, 403, 403, 303), form=lambda w: {"strategy": "all_ai"}
    ),
    "GET /projects/{project_id}/routing": Page((303, 303, 403, 403, 404, 200, 200)),
    "POST /projects/{project_id}/routing": Page(
        (303, 303, 403, 403, 403, 403, 303), form=lambda w: {"policy_id": str(w.policy)}
    ),
    "POST /projects/{project_id}/routing/preview": Page(FORM_RESEARCHER_MEMBERS, form=lambda w: {}),
    "POST /projects/{project_id}/routing/run": Page(FORM_RESEARCHER_MEMBERS, form=lambda w: {}),
}
# The OpenAPI document, the docs page and its assets (app/web/docs.py) are public and hold no data.
NOT_ROUTES = {"/openapi.json", "/docs", "/docs/assets/{name}"}


UPLOAD = b'[{"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}]}]'


def path_of(template: str, w: World) -> str:
    return template.format(**w.ids())


def credentials(caller: str, w: World, page: bool) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, cookies) that the caller presents."""
    if caller == "anonymous":
        return {}, {}
    if caller == "bad_token":
        return (
            ({}, {"tandem_session": "not-a-session"})
            if page
            else (
                {"Authorization": "Bearer not-a-token"},
                {},
            )
        )
    if caller == NO_CSRF:
        return {}, {"tandem_session": w.people["researcher_member"].session}
    person = w.people[caller]
    if page:
        return {"X-CSRF-Token": person.csrf}, {"tandem_session": person.session}
    return {"Authorization": f"Bearer {person.token}"}, {}


def call_api(client: TestClient, key: str, rule: Rule, caller: str, w: World) -> httpx.Response:
    method, template = key.split(" ", 1)
    headers, cookies = credentials(caller, w, page=False)
    client.cookies.clear()
    for name, value in cookies.items():
        client.cookies.set(name, value)
    body = rule.json(w) if rule.json else None
    return client.request(method, path_of(template, w), json=body, headers=headers)


def call_page(client: TestClient, key: str, page: Page, caller: str, w: World) -> httpx.Response:
    method, template = key.split(" ", 1)
    headers, cookies = credentials(caller, w, page=True)
    client.cookies.clear()
    for name, value in cookies.items():
        client.cookies.set(name, value)
    if caller == NO_CSRF or "X-CSRF-Token" not in headers:
        headers.pop("X-CSRF-Token", None)
    if key == "POST /login":
        form = client.get("/login", headers=headers)  # the login form's own CSRF token
        token = form.cookies.get("tandem_login_csrf") or client.cookies.get("tandem_login_csrf")
        if token is None:  # already logged in: the form redirected; post with a fresh one
            client.cookies.clear()
            token = client.get("/login").cookies["tandem_login_csrf"]
        data = {**login_body(w), "login_csrf": token, "next": "/"}
        return client.post("/login", data=data, follow_redirects=False)
    if method == "GET" or page.form is None:
        return client.request(method, path_of(template, w), headers=headers, follow_redirects=False)
    data = page.form(w)
    if caller in w.people:
        data["csrf_token"] = w.people[caller].csrf
    files = {
        "file": ("rows.json", b'[{"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}]}]')
    }
    return client.post(
        path_of(template, w),
        data=data,
        files=files if page.files else None,
        headers=headers,
        follow_redirects=False,
    )
