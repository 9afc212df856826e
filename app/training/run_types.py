"""Types the run entry point and the sampling kinds share."""

from __future__ import annotations

from collections.abc import Callable

from app.inference.base import Backend
from app.training.config import Sampling

# Opens a sampling backend for a model path with the run's sampling settings (the job builds it
# from the inference registry: `transformers` on a CPU worker, `vllm` on a GPU worker).
BackendFactory = Callable[[str, Sampling], Backend]
