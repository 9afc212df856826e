"""The `openai` backend: any OpenAI-compatible server (vllm serve, llama.cpp, TGI, hosted APIs).

Chat completions for requests with messages, plain completions for requests with a prompt.
Requests run on a bounded thread pool over one httpx client. 429, 5xx, connection errors,
timeouts and unreadable answers are retried with exponential backoff and jitter (honouring
Retry-After), then fail the whole batch with a BackendError naming the reason; other 4xx fail
at once. The API key is read from the environment variable named by `api_key_env` when the
backend is created: it is never stored, logged, or put in an error message.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator

from app.inference.base import (
    BackendError,
    Completion,
    GenerationRequest,
    TokenLogprob,
)
from app.inference.registry import BackendParams, register

log = logging.getLogger(__name__)
ERROR_SNIPPET = 300


class OpenAIParams(BackendParams):
    base_url: str = Field(description="e.g. http://127.0.0.1:8000/v1")
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="name of the environment variable holding the API key",
    )
    concurrency: int = Field(default=8, ge=1, le=256)
    timeout_s: float = Field(default=60.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    backoff_s: float = Field(default=0.5, gt=0)  # first retry waits about this long, then doubles
    max_backoff_s: float = Field(default=30.0, gt=0)
    max_retry_after_s: float = Field(default=120.0, ge=0)  # a longer Retry-After fails at once
    # Hosted reasoning models take max_completion_tokens; most servers take max_tokens.
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    extra_body: dict[str, Any] = Field(default_factory=dict)  # server-specific request fields
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. an organisation header

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("headers")
    @classmethod
    def _no_auth_header(cls, v: dict[str, str]) -> dict[str, str]:
        if any(k.lower() in ("authorization", "api-key", "x-api-key") for k in v):
            raise ValueError("put the API key in the environment variable named by api_key_env")
        return v


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str
    retryable: bool
    retry_after: float | None = None


class _Cancelled(Exception):
    pass


class OpenAICompatBackend:
    name = "openai"

    def __init__(self, model: str, params: OpenAIParams) -> None:
        self.model = model
        self.params = params
        headers = dict(params.headers)
        self._secret: str | None = None
        if params.api_key_env:
            key = os.environ.get(params.api_key_env)
            if not key:
                raise BackendError(
                    f"The environment variable {params.api_key_env} (api_key_env) is not set "
                    "on this worker."
                )
            self._secret = key
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            base_url=params.base_url,
            headers=headers,
            timeout=httpx.Timeout(params.timeout_s, connect=params.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=params.concurrency, max_keepalive_connections=params.concurrency
            ),
        )
        self._pool = ThreadPoolExecutor(params.concurrency, thread_name_prefix="openai-backend")

    def __repr__(self) -> str:
        return f"OpenAICompatBackend(model={self.model!r}, base_url={self.params.base_url!r})"

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        cancel = threading.Event()
        futures = [self._pool.submit(self._one, request, cancel) for request in requests]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is None:
            return [f.result() for f in futures]
        # All or nothing: stop the others (sleeping retries wake up at once), then report.
        cancel.set()
        for f in futures:
            f.cancel()
        wait(futures)
        error = failed.exception()
        if isinstance(error, BackendError):
            raise error
        raise BackendError(self._redact(f"The request failed: {error!r}")) from error

    # -- one request ---------------------------------------------------------------------

    def _one(self, request: GenerationRequest, cancel: threading.Event) -> list[Completion]:
        started = time.perf_counter()
        sp = request.params
        completions: list[Completion] = []
        # A server may give fewer choices than `n` (llama.cpp gives one): ask again for the rest.
        while len(completions) < sp.n:
            missing = sp.n - len(completions)
            seed = None if sp.seed is None else sp.seed + len(completions)
            if request.messages:
                body = self._chat_body(request, missing, seed)
                data = self._post("/chat/completions", body, cancel)
                parsed = _parse_choices(data, chat=True)
            else:
                body = self._completion_body(request, missing, seed)
                data = self._post("/completions", body, cancel)
                parsed = _parse_choices(data, chat=False)
            if parsed is None:
                raise BackendError("The server answered with no choices.", retryable=True)
            tokens_in, choices = parsed
            latency = time.perf_counter() - started
            for text, finish, logprobs, tokens_out in choices[:missing]:
                completions.append(
                    Completion(
                        text=text,
                        tokens_in=tokens_in,
                        tokens_out=tokens_out,
                        latency_s=latency,
                        model=str(data.get("model") or self.model),
                        finish_reason=finish,
                        logprobs=logprobs if sp.top_logprobs is not None else None,
                    )
                )
        return completions

    def _common(self, request: GenerationRequest, n: int, seed: int | None) -> dict[str, Any]:
        sp = request.params
        body: dict[str, Any] = {
            "model": self.model,
            "n": n,
            "temperature": sp.temperature,
            "top_p": sp.top_p,
            self.params.max_tokens_field: sp.max_tokens,
        }
        if seed is not None:
            body["seed"] = seed
        if sp.stop:
            body["stop"] = list(sp.stop)
        return body

    def _chat_body(self, request: GenerationRequest, n: int, seed: int | None) -> dict[str, Any]:
        body = self._common(request, n, seed)
        body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
        k = request.params.top_logprobs
        if k is not None:
            body["logprobs"] = True
            if k > 0:
                body["top_logprobs"] = k
        body.update(self.params.extra_body)
        return body

    def _completion_body(
        self, request: GenerationRequest, n: int, seed: int | None
    ) -> dict[str, Any]:
        body = self._common(request, n, seed)
        body["prompt"] = request.prompt
        if request.params.top_logprobs is not None:
            body["logprobs"] = request.params.top_logprobs
        body.update(self.params.extra_body)
        return body

    # -- HTTP with retries ---------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any], cancel: threading.Event) -> dict[str, Any]:
        p = self.params
        attempt = 0
        while True:
            if cancel.is_set():
                raise _Cancelled
            failure = self._attempt(path, body)
            if isinstance(failure, dict):
                return failure
            attempt += 1
            if attempt > p.max_retries:
                raise BackendError(
                    self._redact(f"{failure.reason} (gave up after {attempt} attempts)"),
                    retryable=failure.retryable,
                )
            delay = min(p.max_backoff_s, p.backoff_s * 2 ** (attempt - 1))
            delay = delay / 2 + random.uniform(0, delay / 2)  # jitter: clients spread out
            if failure.retry_after is not None:
                if failure.retry_after > p.max_retry_after_s:
                    raise BackendError(
                        self._redact(
                            f"{failure.reason}; the server asks to wait {failure.retry_after:g} s, "
                            f"longer than max_retry_after_s ({p.max_retry_after_s:g} s)"
                        ),
                        retryable=True,
                    )
                delay = max(delay, failure.retry_after)
            log.warning(
                "%s %s: %s; retry %d/%d in %.2f s",
                self.params.base_url,
                path,
                self._redact(failure.reason),
                attempt,
                p.max_retries,
                delay,
            )
            if cancel.wait(delay):
                raise _Cancelled

    def _attempt(self, path: str, body: dict[str, Any]) -> dict[str, Any] | _Failure:
        try:
            response = self._client.post(path, json=body)
        except httpx.TimeoutException as exc:
            return _Failure(f"The server did not answer in time ({type(exc).__name__})", True)
        except httpx.TransportError as exc:
            return _Failure(f"Could not reach the server: {type(exc).__name__}: {exc}", True)
        status = response.status_code
        if status == 200:
            try:
                data = response.json()
            except ValueError:
                return _Failure("The server answered 200 with a body that is not JSON", True)
            if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
                return _Failure("The server answered 200 without a list of choices", True)
            if _parse_choices(data, chat="messages" in body) is None:
                return _Failure("The server answered 200 with malformed choices", True)
            return data
        reason = f"The server answered HTTP {status}: {_snippet(response)}"
        if status == 429 or status >= 500:
            return _Failure(reason, True, _retry_after(response))
        # Any other status (400 bad request, 401 key, 404 model...) will not change on retry.
        raise BackendError(self._redact(reason), retryable=False)

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text


def _snippet(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text[:ERROR_SNIPPET] + ("…" if len(text) > ERROR_SNIPPET else "") or "(empty body)"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_Choice = tuple[str, str, tuple[TokenLogprob, ...] | None, int]


def _parse_choices(data: dict[str, Any], *, chat: bool) -> tuple[int, list[_Choice]] | None:
    """(prompt tokens, choices in index order), or None when the answer has the wrong shape."""
    try:
        raw = sorted(data["choices"], key=lambda c: int(c.get("index", 0)))
        if not raw:
            return None
        usage = data.get("usage") or {}
        tokens_in = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
        choices: list[_Choice] = []
        for choice in raw:
            if chat:
                content = choice["message"].get("content")
                text = content if isinstance(content, str) else ""
                logprobs = _chat_logprobs(choice.get("logprobs"))
            else:
                text = choice["text"]
                if not isinstance(text, str):
                    return None
                logprobs = _completion_logprobs(choice.get("logprobs"))
            finish = str(choice.get("finish_reason") or "stop")
            choices.append((text, "stop" if finish == "eos" else finish, logprobs, 0))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    # completion_tokens covers all choices: split it, unless per-token logprobs say exactly.
    share, extra = divmod(completion_tokens, len(choices))
    return tokens_in, [
        (text, finish, lps, len(lps) if lps else share + (1 if i < extra else 0))
        for i, (text, finish, lps, _) in enumerate(choices)
    ]


def _chat_logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("content"), list):
        return None
    return tuple(
        TokenLogprob(
            token=str(entry["token"]),
            logprob=float(entry["logprob"]),
            top=tuple(
                (str(alt["token"]), float(alt["logprob"]))
                for alt in entry.get("top_logprobs") or ()
            ),
        )
        for entry in raw["content"]
    )


def _completion_logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("tokens"), list):
        return None
    tops = raw.get("top_logprobs") or [None] * len(raw["tokens"])
    out = []
    for token, logprob, top in zip(raw["tokens"], raw["token_logprobs"], tops, strict=True):
        alternatives = sorted((top or {}).items(), key=lambda kv: -float(kv[1]))
        out.append(
            TokenLogprob(
                token=str(token),
                logprob=float(logprob) if logprob is not None else 0.0,
                top=tuple((str(t), float(lp)) for t, lp in alternatives),
            )
        )
    return tuple(out)


@register(
    "openai",
    params=OpenAIParams,
    where="any OpenAI-compatible server over HTTP; runs on the default (CPU) queue",
)
def create_openai(model: str, params: OpenAIParams) -> OpenAICompatBackend:
    return OpenAICompatBackend(model, params)
