"""Registry errors a client must tell apart."""

from __future__ import annotations

from app.errors import Conflict


class ModelInUse(Conflict):
    """A version that another version or a training run depends on cannot be deleted."""

    code = "model_in_use"
