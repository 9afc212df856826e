"""Errors of the annotate loop that a client must tell apart (its outbox acts on each)."""

from __future__ import annotations

from app.errors import Conflict, Forbidden


class AssignmentClosed(Conflict):
    """The assignment was skipped or submitted already: ask for a new task."""

    code = "assignment_closed"


class SubmissionIdReused(Conflict):
    """This client_submission_id already stored an annotation on another assignment."""

    code = "submission_id_reused"


class NotYourAssignment(Forbidden):
    code = "not_your_assignment"
