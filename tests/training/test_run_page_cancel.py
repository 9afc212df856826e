"""The run page's cancel button on a run that ended meanwhile: back to the run's page with the
message (post-redirect-get, app/web/flash.py), not an error page at the POST address."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from tests.helpers import Actor, sql  # noqa: E402
from tests.training.helpers import save_tiny_model, vocabulary  # noqa: E402
from tests.training.runs_helpers import (  # noqa: E402
    TINY,
    ProjectFactory,
    preference_project,
    register,
)
from tests.web.test_pages import _browser, _csrf  # noqa: E402


def test_cancelling_an_ended_run_comes_back_to_its_page(
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    app_client_factory: Callable[[], httpx.Client],
    tmp_path: Path,
) -> None:
    base = register(admin, save_tiny_model(tmp_path / "base", vocabulary()))
    pid = preference_project(researcher, project_factory, make_user, n_items=8)
    body = {"kind": "reward_model", "project_id": pid, "base_model_id": base["id"], "config": TINY}
    run = researcher.client.post("/api/v1/training-runs", json=body).json()
    # The job ended (failed) between the page's render and the click.
    sql("UPDATE jobs SET status = 'failed' WHERE id = %s", run["job_id"])
    browser = _browser(app_client_factory, researcher)
    here = f"/training/{run['id']}"
    csrf = _csrf(browser.get(here).text)
    r = browser.post(f"{here}/cancel", data={"csrf_token": csrf})
    assert [h.status_code for h in r.history] == [303] and r.url.path == here
    assert r.status_code == 200 and "already failed; there is nothing to cancel." in r.text
    assert 'data-testid="form-error"' in r.text
    assert "nothing to cancel" not in browser.get(here).text  # shown once
