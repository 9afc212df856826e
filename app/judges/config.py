"""A judge's parameters: its backend's, plus sampling settings and the chunk size."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import Invalid
from app.inference import registry
from app.inference.base import SamplingParams

JUDGE_KEYS = ("sampling", "chunk_size")
DEFAULT_CHUNK = 16
MAX_CHUNK = 1024
# Enough tokens for each kind's answer format; a judge's sampling.max_tokens overrides it.
DEFAULT_MAX_TOKENS = {"pairwise": 8, "ranking": 64, "span": 512, "critique": 512}
DEFAULT_TOP_LOGPROBS = 5


@dataclass(frozen=True, slots=True)
class JudgeConfig:
    """A judge's stored params, split and checked."""

    backend: dict[str, Any]
    sampling: dict[str, Any]
    chunk_size: int

    def sampling_for(self, kind: str) -> SamplingParams:
        values = {
            "temperature": 0.0,
            "max_tokens": DEFAULT_MAX_TOKENS[kind],
            "top_logprobs": DEFAULT_TOP_LOGPROBS,
            **self.sampling,
        }
        return registry.sampling_params(values)


def judge_config(backend: str, params: Mapping[str, Any]) -> JudgeConfig:
    """Split and check a judge's params (422 naming the problem)."""
    backend_part = {k: v for k, v in params.items() if k not in JUDGE_KEYS}
    registry.validate_params(backend, backend_part)
    sampling = params.get("sampling", {})
    if not isinstance(sampling, dict):
        raise Invalid("params.sampling must be an object.", field="params")
    registry.sampling_params(sampling)
    if sampling.get("n", 1) != 1:
        raise Invalid("params.sampling.n must be 1: a judge gives one answer.", field="params")
    chunk = params.get("chunk_size", DEFAULT_CHUNK)
    if not isinstance(chunk, int) or isinstance(chunk, bool) or not 1 <= chunk <= MAX_CHUNK:
        raise Invalid(
            f"params.chunk_size must be an integer from 1 to {MAX_CHUNK}.", field="params"
        )
    return JudgeConfig(backend_part, dict(sampling), chunk)
