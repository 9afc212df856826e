"""Admins manage users in the browser; researchers invite people into a project; anyone changes
their password; browsers get styled error pages and post-redirect-get; /docs works offline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import DESKTOP, Browsing
from tests.factories import create_user
from tests.helpers import PASSWORD, Actor, sql, sql_value


def _new_browser(b: Browsing) -> tuple[Any, Any]:
    context = b.context.browser.new_context(viewport=DESKTOP, base_url=b.base_url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    return context, page


def test_admin_lists_searches_pages_creates_disables_and_resets_users(
    browsing: Browsing, admin: Actor, make_user: Callable[..., Actor]
) -> None:
    for i in range(55):
        create_user("annotator", email=f"bulk-{i:02d}@crowd.example")
    victim = make_user("annotator")
    b, page = browsing, browsing.page
    b.login(admin.email, PASSWORD, then="/users")
    # Newest first, 50 a page, then the next page.
    assert page.get_by_test_id("user-row").count() == 50
    assert victim.email in page.get_by_test_id("user-table").inner_text()
    b.screenshot("users")
    page.get_by_test_id("next-page").click()
    assert page.get_by_test_id("user-row").count() >= 7
    # Search by part of the email (case-insensitive); a % is taken literally.
    page.get_by_test_id("user-search").fill("BULK-0")
    page.get_by_test_id("user-search").press("Enter")
    assert page.get_by_test_id("user-row").count() == 10
    page.get_by_test_id("user-search").fill("%")
    page.get_by_test_id("user-search").press("Enter")
    page.get_by_test_id("no-users").wait_for()

    # Create a user; a bad password comes back on the form, at its own address.
    b.goto("/users")
    page.get_by_test_id("new-user-email").fill("new.researcher@lab.example")
    page.get_by_test_id("new-user-password").evaluate("e => e.removeAttribute('minlength')")
    page.get_by_test_id("new-user-password").fill("short")
    page.get_by_test_id("new-user-role").select_option("researcher")
    page.get_by_test_id("new-user-submit").click()
    assert "at least 8 characters" in page.get_by_test_id("create-error").inner_text()
    assert page.url == b.base_url + "/users"
    assert page.get_by_test_id("new-user-email").input_value() == "new.researcher@lab.example"
    page.get_by_test_id("new-user-password").fill("a-long-password")
    page.get_by_test_id("new-user-submit").click()
    page.get_by_test_id("notice").filter(has_text="User created").wait_for()
    assert (
        sql_value("SELECT role FROM users WHERE email = %s", "new.researcher@lab.example")
        == "researcher"
    )

    # Disable the victim: their open browser session stops working at once.
    victim_context, victim_page = _new_browser(b)
    victim_page.goto(b.base_url + "/login")
    victim_page.get_by_test_id("login-email").fill(victim.email)
    victim_page.get_by_test_id("login-password").fill(PASSWORD)
    victim_page.get_by_test_id("login-submit").click()
    victim_page.wait_for_url(b.base_url + "/")
    b.goto(f"/users/{victim.id}")
    page.get_by_test_id("user-disabled").check()
    page.get_by_test_id("user-role").select_option("researcher")
    page.get_by_test_id("user-save").click()
    page.get_by_test_id("notice").filter(has_text="Saved").wait_for()
    b.screenshot("user")
    victim_page.goto(b.base_url + "/")
    assert victim_page.url.startswith(b.base_url + "/login")
    assert victim.client.get("/api/v1/me").status_code == 401  # the API token too
    victim_context.close()
    assert sql_value("SELECT is_active FROM users WHERE id = %s", victim.id) is False
    b.goto("/users?status=disabled")
    assert page.get_by_test_id("user-row").count() == 1
    assert victim.email in page.get_by_test_id("user-table").inner_text()
    b.goto(f"/users/{victim.id}")

    # Enable again and reset the password: the new one works, the old one does not.
    page.get_by_test_id("user-active").check()
    page.get_by_test_id("user-save").click()
    page.get_by_test_id("reset-password").fill("brand-new-secret")
    page.get_by_test_id("reset-submit").click()
    page.get_by_test_id("notice").filter(has_text="Password set").wait_for()
    r = victim.client.post(
        "/api/v1/auth/token", json={"email": victim.email, "password": "brand-new-secret"}
    )
    assert r.status_code == 200
    r = victim.client.post("/api/v1/auth/token", json={"email": victim.email, "password": PASSWORD})
    assert r.status_code == 401
    # An admin cannot lock themselves out.
    b.goto(f"/users/{admin.id}")
    page.get_by_test_id("user-disabled").check()
    page.get_by_test_id("user-save").click()
    assert "cannot disable your own account" in page.get_by_test_id("user-error").inner_text()
    b.watch.assert_clean(page)


def test_researcher_invites_an_unknown_email_and_the_invitee_lands_in_the_project(
    browsing: Browsing, researcher: Actor
) -> None:
    r = researcher.client.post("/api/v1/projects", json={"name": "Invited", "kind": "pairwise"})
    pid = r.json()["id"]
    b, page = browsing, browsing.page
    b.login(researcher.email, PASSWORD, then=f"/projects/{pid}")
    # Adding an unknown email points to the invitation form, filled in.
    page.get_by_test_id("member-email").fill("Newcomer@Lab.example")
    page.get_by_test_id("member-add").click()
    assert "Invite them" in page.get_by_test_id("member-error").inner_text()
    assert page.url.split("#")[0] == b.base_url + f"/projects/{pid}"
    assert page.get_by_test_id("invite-email").input_value() == "newcomer@lab.example"
    page.get_by_test_id("invite-submit").click()
    page.get_by_test_id("notice").filter(has_text="Invitation created").wait_for()
    link = page.get_by_test_id("invite-link").input_value()
    assert link.startswith(b.base_url + "/invite/")
    b.screenshot("project-invitations")

    # The invitee, in another browser: chooses a password and lands in the project.
    context, other = _new_browser(b)
    other.goto(link)
    assert other.get_by_test_id("invite-email").inner_text() == "newcomer@lab.example"
    SCREEN = b.page
    b.page = other
    b.screenshot("invite")
    b.page = SCREEN
    other.get_by_test_id("invite-password").fill("my-own-password")
    other.get_by_test_id("invite-confirm").fill("my-own-passwore")
    other.get_by_test_id("invite-submit").click()
    assert "differ" in other.get_by_test_id("invite-error").inner_text()
    other.get_by_test_id("invite-password").fill("my-own-password")
    other.get_by_test_id("invite-confirm").fill("my-own-password")
    other.get_by_test_id("invite-submit").click()
    other.wait_for_url(f"{b.base_url}/projects/{pid}?notice=welcome")
    assert other.get_by_test_id("project-title").inner_text() == "Invited"
    user_id = sql_value("SELECT id FROM users WHERE email = 'newcomer@lab.example'")
    assert sql("SELECT 1 FROM project_members WHERE project_id = %s AND user_id = %s", pid, user_id)
    # Single use: the link now says so.
    other.goto(link)
    assert other.get_by_test_id("error-page").get_attribute("data-status") == "409"
    assert "accepted" in other.get_by_test_id("error-message").inner_text()
    context.close()
    page.reload()
    assert page.get_by_test_id("invite-link").count() == 0  # no longer pending
    assert "newcomer@lab.example" in page.get_by_test_id("member-list").inner_text()
    b.watch.assert_clean(page)


def test_change_my_password(browsing: Browsing, make_user: Callable[..., Actor]) -> None:
    user = make_user("annotator")
    b, page = browsing, browsing.page
    b.login(user.email, PASSWORD)
    page.get_by_test_id("nav-password").click()
    page.get_by_test_id("current-password").fill("not-my-password")
    page.get_by_test_id("new-password").fill("another-password")
    page.get_by_test_id("confirm-password").fill("another-password")
    page.get_by_test_id("password-submit").click()
    assert "current password is wrong" in page.get_by_test_id("password-error").inner_text()
    assert page.url == b.base_url + "/account/password"
    page.get_by_test_id("current-password").fill(PASSWORD)
    page.get_by_test_id("new-password").fill("another-password")
    page.get_by_test_id("confirm-password").fill("another-password")
    page.get_by_test_id("password-submit").click()
    page.get_by_test_id("notice").filter(has_text="password is changed").wait_for()
    b.screenshot("password")
    # This browser stays logged in; the API token from before is ended.
    b.goto("/")
    assert page.url == b.base_url + "/"
    assert user.client.get("/api/v1/me").status_code == 401
    b.watch.assert_clean(page)


def test_browsers_get_error_pages_and_failed_posts_redirect(
    browsing: Browsing, researcher: Actor
) -> None:
    b, page = browsing, browsing.page
    b.login(researcher.email, PASSWORD)
    for path, status, words in [
        ("/no/such/page", 404, "There is no page at /no/such/page"),
        ("/projects/abc", 404, "There is no page at /projects/abc"),
        ("/logout", 405, "only receives forms"),
    ]:
        response = page.goto(b.base_url + path)
        assert response is not None and response.status == status, path
        assert page.get_by_test_id("error-page").get_attribute("data-status") == str(status)
        assert words in page.get_by_test_id("error-message").inner_text()
        assert "project_id" not in page.content()
    b.screenshot("error-page")
    # The API keeps JSON.
    r = researcher.client.get("/api/v1/nothing", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    # A failed form post ends on the form's own (GET) address: a reload re-posts nothing.
    b.goto("/projects/new")
    page.get_by_test_id("project-name").fill("Spans without labels")
    page.get_by_test_id("kind-span").check()
    page.get_by_test_id("project-save").click()
    page.get_by_text("needs at least one span label").wait_for()
    assert page.url == b.base_url + "/projects/new"
    assert page.get_by_test_id("project-name").input_value() == "Spans without labels"
    page.reload()
    assert page.get_by_test_id("project-name").input_value() == ""  # the error was shown once
    b.watch.assert_clean(page)


def test_docs_work_offline_under_the_csp(browsing: Browsing) -> None:
    b, page = browsing, browsing.page
    outside: list[str] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(b.base_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    b.goto("/docs")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() > 20
    assert "Tandem" in page.locator(".title").first.inner_text()
    assert outside == []
    b.screenshot("docs")
    b.watch.assert_clean(page)
