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
    """How to sample one request. Hashable: backends batch together requests with equal params."""

    n: int = 1
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    max_tokens: int = 256
    # Makes sampling repeatable: the same seed and request give the same completions (on the
    # same backend, model and hardware; transformers seeds the batch the request is in).
    seed: int | None = None
    # How many alternatives to report per generated token (0: only the chosen token's
    # log-probability, None: no logprobs at all).
    top_logprobs: int | None = None
    stop: tuple[str, ...] = ()  # generation ends before the first of these strings

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be at least 1")
        if self.temperature < 0:
            raise ValueError("temperature must not be negative")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if self.top_logprobs is not None and not 0 <= self.top_logprobs <= 20:
            raise ValueError("top_logprobs must be between 0 and 20")
        if any(not s for s in self.stop):
            raise ValueError("stop strings must not be empty")


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One prompt: chat messages (chat templates applied by the backend) or a raw text prompt.

    `context` carries structured facts for backends that do not read text (the simulated judge
    reads the shown order and the item's metadata there, see `app.inference.context`); real
    models ignore it.
    """

    messages: tuple[ChatMessage, ...] = ()
    prompt: str | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    context: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if bool(self.messages) == (self.prompt is not None):
            raise ValueError("a request has either chat messages or a prompt, not both or none")


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str  # the token's text as decoded
    logprob: float
    top: tuple[tuple[str, float], ...] = ()  # the most likely alternatives here, best first


@dataclass(frozen=True, slots=True)
class Completion:
    """One sampled answer.

    `tokens_in` is the prompt's length, the same on each of a request's `n` completions (count
    it once per request for costs); `tokens_out` this completion's own length; both 0 when a
    server does not report usage. `latency_s` is how long the caller waited for it (the whole
    batch it came in for local backends; retries included for servers). `model` names what
    produced it: the served model's name, or `simulated:<seed>` for the simulated judge.
    `logprobs` is None unless the request asked for them and the backend could give them;
    a backend's end-of-sequence token is never in it.
    """

    text: str
    tokens_in: int
    tokens_out: int
    latency_s: float
    model: str
    finish_reason: str = "stop"  # "stop" | "length" (or what a server said otherwise)
    logprobs: tuple[TokenLogprob, ...] | None = None


class BackendError(Exception):
    """A request failed; `retryable` says whether the same request may succeed later.

    `message` is a sentence for the judge run's error column: it never contains an API key.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class Backend(Protocol):
    """A loaded model (or a client of a server) that answers batches of requests."""

    name: str  # the registry name: "openai", "vllm", "transformers", "simulated"
    model: str  # the model as configured (a server's model name, a path, ...)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """For each request, `params.n` completions, in request order.

        All or nothing: raises BackendError rather than return a partial batch.
        """

    def close(self) -> None:
        """Release what this instance holds (connections, threads).

        Local models stay in the per-process cache (`app.inference.cache`) for the next job.
        """
