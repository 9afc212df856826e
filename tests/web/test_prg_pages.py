"""Post-redirect-get on the exports, judges, routing, training and review pages: a refused form
post ends on the form's GET address with the message (and what was typed), changes nothing, and
the message is shown once (app/web/flash.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from app.jobs import runner
from tests.helpers import Actor, sql_value
from tests.web.test_pages import _browser, _csrf


def _refused(r: httpx.Response, path: str, message: str, client: httpx.Client) -> None:
    assert [h.status_code for h in r.history] == [303], r.text
    assert r.request.method == "GET" and r.url.path == path
    assert r.status_code == 200 and message in r.text, r.text
    assert "tandem_flash" not in client.cookies  # shown once
    assert message not in client.get(path).text


def test_exports_page_refusals_come_back_to_the_exports_page(
    project_factory: Callable[..., dict[str, Any]],
    researcher: Actor,
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    pid = project_factory("critique", items=1)["id"]
    browser = _browser(app_client_factory, researcher)
    here = f"/projects/{pid}/exports"
    csrf = _csrf(browser.get(here).text)
    r = browser.post(here, data={"csrf_token": csrf, "schema": "critique", "span_threshold": "0.3"})
    _refused(r, here, "span_threshold applies to schema spans", browser)
    assert 'value="0.3"' in r.text  # what was typed is back in the form
    assert sql_value("SELECT count(*) FROM exports WHERE project_id = %s", pid) == 0

    r = browser.post(here, data={"csrf_token": csrf, "schema": "raw"}, follow_redirects=False)
    assert r.status_code == 303
    export_id = sql_value("SELECT max(id) FROM exports WHERE project_id = %s", pid)
    # Still queued: the delete is refused until its job ends.
    r = browser.post(f"{here}/{export_id}/delete", data={"csrf_token": csrf})
    assert [h.status_code for h in r.history] == [303] and r.url.path == here
    assert 'data-testid="export-error"' in r.text
    assert sql_value("SELECT count(*) FROM exports WHERE project_id = %s", pid) == 1


def test_judge_pages_refusals_come_back_to_their_forms(
    admin: Actor, app_client_factory: Callable[[], httpx.Client]
) -> None:
    browser = _browser(app_client_factory, admin)
    csrf = _csrf(browser.get("/admin/judges").text)
    form = {"csrf_token": csrf, "name": "typed-name", "backend": "simulated", "model": "m"}
    r = browser.post("/admin/judges", data={**form, "params": "{not json"})
    _refused(r, "/admin/judges", "Parameters are not JSON", browser)
    assert 'value="typed-name"' in r.text
    assert sql_value("SELECT count(*) FROM judges WHERE name = 'typed-name'") == 0

    params = '{"truth": {"metadata_key": "truth"}}'
    r = browser.post("/admin/judges", data={**form, "params": params}, follow_redirects=False)
    judge = r.headers["location"].split("?")[0]
    assert judge.startswith("/admin/judges/"), judge
    r = browser.post(f"{judge}/runs", data={"csrf_token": csrf, "project_id": "x"})
    _refused(r, judge, "Choose a project id.", browser)


def test_routing_pages_refusals_come_back_to_their_forms(
    admin: Actor,
    project_factory: Callable[..., dict[str, Any]],
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    pid = project_factory("pairwise", items=1)["id"]
    browser = _browser(app_client_factory, admin)
    csrf = _csrf(browser.get("/admin/routing").text)
    form = {"csrf_token": csrf, "name": "typed-policy", "strategy": "all_ai"}
    r = browser.post("/admin/routing", data={**form, "params": "{oops"})
    _refused(r, "/admin/routing", "params: not JSON", browser)
    assert 'value="typed-policy"' in r.text
    assert sql_value("SELECT count(*) FROM routing_policies") == 0

    r = browser.post("/admin/routing", data=form, follow_redirects=False)
    assert r.status_code == 303
    policy = r.headers["location"].split("?")[0]
    r = browser.post(policy, data={"csrf_token": csrf, "strategy": "all_ai", "min_human": "["})
    _refused(r, policy, "min human: not JSON", browser)

    here = f"/projects/{pid}/routing"
    r = browser.post(here, data={"csrf_token": csrf, "policy_id": "1", "judge_ids": "a b"})
    _refused(r, here, "judge ids: whole numbers.", browser)


def test_training_form_refusal_comes_back_with_what_was_typed(
    researcher: Actor,
    project_factory: Callable[..., dict[str, Any]],
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    pid = project_factory("pairwise", items=1)["id"]
    browser = _browser(app_client_factory, researcher)
    csrf = _csrf(browser.get("/training/new").text)
    r = browser.post(
        "/training/new",
        data={"csrf_token": csrf, "kind": "reward_model", "project_id": str(pid), "config": "{x"},
    )
    _refused(r, "/training/new", "config is not valid JSON", browser)
    assert "{x</textarea>" in r.text
    assert sql_value("SELECT count(*) FROM training_runs") == 0


def test_review_refusal_comes_back_to_the_review_queue(
    researcher: Actor,
    project_factory: Callable[..., dict[str, Any]],
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    pid = project_factory("pairwise", items=1)["id"]
    item = sql_value("SELECT min(id) FROM items WHERE project_id = %s", pid)
    browser = _browser(app_client_factory, researcher)
    here = f"/projects/{pid}/review"
    csrf = _csrf(browser.get(here).text)
    r = browser.post(f"{here}/{item}", data={"csrf_token": csrf, "preferred": "abc"})
    _refused(r, here, "is not a response id.", browser)


def test_cancelling_a_finished_job_comes_back_to_the_project_page(
    project_factory: Callable[..., dict[str, Any]],
    researcher: Actor,
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    pid = project_factory("pairwise", items=1)["id"]
    browser = _browser(app_client_factory, researcher)
    here = f"/projects/{pid}"
    csrf = _csrf(browser.get(here).text)
    r = browser.post(
        f"{here}/exports", data={"csrf_token": csrf, "schema": "raw"}, follow_redirects=False
    )
    assert r.status_code == 303
    job_id = sql_value("SELECT max(id) FROM jobs WHERE project_id = %s", pid)
    assert runner.run_job(job_id) == "done"
    r = browser.post(f"/jobs/{job_id}/cancel", data={"csrf_token": csrf})
    _refused(r, here, "already succeeded; there is nothing to cancel.", browser)
    assert 'data-testid="jobs-error"' in r.text
