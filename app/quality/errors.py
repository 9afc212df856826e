"""Errors of the quality domain that clients must tell apart."""

from __future__ import annotations

from app.errors import Forbidden, Invalid


class AnnotatorPaused(Forbidden):
    """The annotator is paused in this project (gold checks, or by a researcher)."""

    code = "annotator_paused"


class NoLeaderboard(Invalid):
    """The project can never have a leaderboard: its kind, or responses without `model`."""

    code = "no_leaderboard"
