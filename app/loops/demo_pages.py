"""The demo project's button: POST /projects/{pid}/demo-loop queues the closed-loop demo."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.auth.deps import DbSession
from app.errors import DomainError
from app.loops.demo_job import DemoLoopStart, request_demo_loop
from app.validation import PathId
from app.web.deps import FormUser, PageRoute
from app.web.flash import redirect_with_error

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.post("/projects/{project_id}/demo-loop")
async def start_demo_loop(
    project_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k in ("seed", "iterations")}
    back = f"/projects/{project_id}#demo-loop"
    try:
        body = DemoLoopStart.model_validate(values)
        job = await run_in_threadpool(request_demo_loop, session, principal, project_id, body)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        return redirect_with_error(back, {"demo_loop": problems}, values)
    except DomainError as exc:
        session.rollback()
        if exc.status_code in (403, 404):
            raise
        return redirect_with_error(back, {"demo_loop": exc.message}, values)
    del job  # shown in the project's Background jobs
    return RedirectResponse(f"/projects/{project_id}?notice=demo_loop#jobs", status_code=303)
