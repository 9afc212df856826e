"""Membership errors: the caller's own work in a project they are no longer a member of."""

from __future__ import annotations

from app.errors import NotFound


class NotAMember(NotFound):
    """Raised only where the caller already knows the project exists (their own assignment);
    elsewhere a project they cannot see is a plain not_found, so ids leak nothing."""

    code = "not_a_member"


class UnknownEmail(NotFound):
    """No account has this email: the member form offers an invitation instead."""

    def __init__(self, email: str) -> None:
        super().__init__(
            f"No user has the email {email}. Invite them with the form below: they choose a"
            " password and land in this project."
        )
        self.email = email
