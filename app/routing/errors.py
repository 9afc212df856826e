"""Routing's own error cases."""

from __future__ import annotations

from app.errors import Conflict


class NoRouting(Conflict):
    """The project has no routing policy attached."""

    code = "no_routing"


class BudgetBelowCommitted(Conflict):
    """A new budget would be below what is already reserved and spent."""

    code = "budget_below_committed"
