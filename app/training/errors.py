"""Errors a training run reports to the person who started it (bad input, missing model)."""

from __future__ import annotations

from app.errors import Invalid


class TrainingInputError(Invalid):
    """The snapshot or the config cannot make this kind of run (wrong schema, no usable rows)."""


class ModelNotFound(Invalid):
    """A model path in the config names no folder or file that can be loaded."""
