"""The interface every backend implements: batched generation with optional token log-probabilities.

Judges, samplers and generation jobs speak only this. Backends register by name
(`app.inference.registry`) and import their heavy libraries inside their own functions, so
that importing this package costs nothing in the web process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True, slots=True)
class SamplingParams:
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    # How many alternatives to report per generated token (0: none, None: no logprobs at all).
    top_logprobs: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One prompt: chat messages (chat templates applied by the backend) or a raw text prompt.

    `context` carries structured facts for backends that do not read text (the simulated judge
    reads the shown order and the item's metadata there); real models ignore it.
    """

    messages: tuple[ChatMessage, ...] = ()
    prompt: str | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()  # the most likely alternatives at this position


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    tokens_in: int
    tokens_out: int
    latency_s: float
    finish_reason: str = "stop"  # "stop" | "length"
    logprobs: tuple[TokenLogprob, ...] | None = None


class BackendError(Exception):
    """A request failed; `retryable` says whether the same request may succeed later."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class Backend(Protocol):
    """A loaded model (or a client of a server) that answers batches of requests."""

    name: str

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """For each request, `params.n` completions, in request order. Raises BackendError."""

    def close(self) -> None:
        """Release what the backend holds (connections, GPU memory)."""
