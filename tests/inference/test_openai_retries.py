"""The openai backend against a real HTTP server on loopback that misbehaves: retries, then a clear error."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from app.inference import registry
from app.inference.base import BackendError, ChatMessage, GenerationRequest, SamplingParams
from app.inference.openai_compat import OpenAICompatBackend
from tests.inference import misbehaving_server
from tests.inference.misbehaving_server import MisbehavingServer

FAST = {"backoff_s": 0.05, "max_backoff_s": 0.2, "max_retries": 3, "timeout_s": 5}


@pytest.fixture
def server() -> Iterator[MisbehavingServer]:
    s = misbehaving_server.start(slow_seconds=2.0)
    yield s
    s.server.shutdown()
    s.server.server_close()


def backend(server: MisbehavingServer, behaviour: str, **params: Any) -> OpenAICompatBackend:
    created = registry.create(
        "openai", "test-model", {"base_url": server.base(behaviour), **FAST, **params}
    )
    assert isinstance(created, OpenAICompatBackend)
    return created


def chat(text: str = "Which is better?", **sampling: Any) -> GenerationRequest:
    return GenerationRequest(
        messages=(ChatMessage("user", text),), params=SamplingParams(max_tokens=4, **sampling)
    )


def test_answers_chat_with_logprobs_usage_and_n(server: MisbehavingServer) -> None:
    b = backend(server, "ok")
    [[first, second]] = b.generate([chat(n=2, top_logprobs=2, seed=7, stop=("\n",))])
    b.close()
    assert first.text == "A" and first.model == "misbehaving"
    assert first.tokens_in == 11 and first.tokens_out == 1
    assert first.logprobs is not None and first.logprobs[0].top == (("A", -0.1), ("B", -2.4))
    assert second.text == "A"
    [sent] = server.hits("ok")
    assert sent.body["n"] == 2 and sent.body["seed"] == 7 and sent.body["stop"] == ["\n"]
    assert sent.body["logprobs"] is True and sent.body["top_logprobs"] == 2
    assert sent.body["model"] == "test-model" and sent.body["max_tokens"] == 4


def test_missing_choices_are_asked_for_again_with_the_next_seeds(server: MisbehavingServer) -> None:
    b = backend(server, "single-choice")
    [samples] = b.generate([chat(n=3, temperature=1.0, seed=7)])
    b.close()
    assert len(samples) == 3
    sent = server.hits("single-choice")
    assert [(s.body["n"], s.body["seed"]) for s in sent] == [(3, 7), (2, 8), (1, 9)]


def test_prompt_only_requests_use_plain_completions(server: MisbehavingServer) -> None:
    b = backend(server, "ok")
    [[c]] = b.generate([GenerationRequest(prompt="Once upon", params=SamplingParams(max_tokens=3))])
    b.close()
    assert c.text == "A" and c.finish_reason == "length" and c.logprobs is None
    [sent] = server.hits("ok")
    assert sent.path == "/ok/v1/completions" and sent.body["prompt"] == "Once upon"


def test_server_errors_are_retried_until_an_answer(server: MisbehavingServer) -> None:
    b = backend(server, "flaky-2")
    [[c]] = b.generate([chat()])
    b.close()
    assert c.text == "A"
    assert len(server.hits("flaky-2")) == 3


def test_garbage_json_is_retried_then_fails_with_the_reason(server: MisbehavingServer) -> None:
    b = backend(server, "garbage")
    with pytest.raises(BackendError) as caught:
        b.generate([chat()])
    b.close()
    assert "not JSON" in caught.value.message and "4 attempts" in caught.value.message
    assert len(server.hits("garbage")) == 4


def test_an_answer_without_choices_is_refused(server: MisbehavingServer) -> None:
    b = backend(server, "shapeless", max_retries=1)
    with pytest.raises(BackendError, match="without a list of choices"):
        b.generate([chat()])
    b.close()


def test_429_waits_for_retry_after(server: MisbehavingServer) -> None:
    b = backend(server, "rate-limited-once")
    [[c]] = b.generate([chat()])
    b.close()
    first, second = server.hits("rate-limited-once")
    assert c.text == "A"
    assert second.at - first.at >= 0.95  # Retry-After: 1, far above the 0.05 s backoff
    assert c.latency_s >= 0.95


def test_a_retry_after_beyond_the_limit_fails_at_once(server: MisbehavingServer) -> None:
    b = backend(server, "rate-limited-long", max_retry_after_s=60)
    with pytest.raises(BackendError) as caught:
        b.generate([chat()])
    b.close()
    assert caught.value.retryable
    assert "HTTP 429" in caught.value.message and "86400" in caught.value.message
    assert len(server.hits("rate-limited-long")) == 1


def test_a_server_that_stays_down_fails_retryable_after_backoff(server: MisbehavingServer) -> None:
    b = backend(server, "down", max_retries=2)
    with pytest.raises(BackendError) as caught:
        b.generate([chat()])
    b.close()
    assert caught.value.retryable and "HTTP 503" in caught.value.message
    hits = server.hits("down")
    assert len(hits) == 3
    assert hits[1].at - hits[0].at >= 0.025  # the first backoff: 0.05 s with jitter in [½, 1]
    assert hits[2].at - hits[1].at >= 0.05


def test_slow_answers_time_out_then_fail(server: MisbehavingServer) -> None:
    b = backend(server, "slow", timeout_s=0.3, max_retries=1)
    with pytest.raises(BackendError) as caught:
        b.generate([chat()])
    b.close()
    assert "did not answer in time" in caught.value.message and caught.value.retryable
    assert len(server.hits("slow")) == 2


def test_a_closed_port_is_a_retryable_connection_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nobody listens there
    b = registry.create(
        "openai", "m", {"base_url": f"http://127.0.0.1:{port}/v1", **FAST, "max_retries": 1}
    )
    with pytest.raises(BackendError) as caught:
        b.generate([chat()])
    b.close()
    assert "Could not reach the server" in caught.value.message and caught.value.retryable


def test_one_failing_request_fails_the_whole_batch(server: MisbehavingServer) -> None:
    b = backend(server, "one-bad", max_retries=1, concurrency=2)
    requests = [chat(f"question {i}") for i in range(6)] + [chat("poison")]
    with pytest.raises(BackendError, match="HTTP 500"):
        b.generate(requests)
    b.close()


def test_the_api_key_is_sent_but_never_repeated(
    server: MisbehavingServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("TANDEM_TEST_JUDGE_KEY", secret)
    caplog.set_level(logging.DEBUG)
    ok = backend(server, "ok", api_key_env="TANDEM_TEST_JUDGE_KEY")
    ok.generate([chat()])
    assert server.hits("ok")[0].headers["Authorization"] == f"Bearer {secret}"
    assert secret not in repr(ok) and secret not in repr(ok.params)
    ok.close()

    refused = backend(server, "unauthorized", api_key_env="TANDEM_TEST_JUDGE_KEY")
    with pytest.raises(BackendError) as caught:
        refused.generate([chat()])
    refused.close()
    assert not caught.value.retryable and "HTTP 401" in caught.value.message
    assert secret not in caught.value.message and "***" in caught.value.message
    assert len(server.hits("unauthorized")) == 1  # a 401 is not retried
    assert secret not in caplog.text


def test_a_missing_key_variable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TANDEM_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(BackendError, match="TANDEM_TEST_NO_SUCH_KEY"):
        registry.create(
            "openai",
            "m",
            {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "TANDEM_TEST_NO_SUCH_KEY"},
        )
