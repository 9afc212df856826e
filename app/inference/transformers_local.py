"""The `transformers` backend: a local model (a folder or a GGUF file) on the CPU or a GPU.

Requests with equal sampling parameters are generated together in batches of `batch_size`
(left padding, so every prompt ends where generation starts); `n` samples per prompt come
from `num_return_sequences`. Token log-probabilities and their top alternatives come from the
raw logits of each step (before temperature and top-p), as vLLM and OpenAI report them. The
model is loaded once per worker process (`app.inference.cache`). torch and transformers are
imported here only when a backend is created.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import Field

from app.inference.base import (
    BackendError,
    Completion,
    GenerationRequest,
    SamplingParams,
    TokenLogprob,
)
from app.inference.cache import cached_model
from app.inference.paths import ModelFiles, resolve
from app.inference.registry import BackendParams, register

if TYPE_CHECKING:
    import torch


class TransformersParams(BackendParams):
    device: str = Field(default="cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$")
    # "auto": float32 on the CPU, the checkpoint's own dtype on a GPU.
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    batch_size: int = Field(default=8, ge=1, le=512)
    gguf_file: str | None = None  # which GGUF file of a folder holding several
    # torch's CPU threads for this process while generating (default: torch's own choice).
    threads: int | None = Field(default=None, ge=1)


@dataclass
class _Loaded:
    model: Any
    tokenizer: Any
    device: str
    eos_ids: frozenset[int]
    lock: threading.Lock


def _load(files: ModelFiles, params: TransformersParams) -> _Loaded:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if params.dtype == "auto":
        dtype: Any = torch.float32 if params.device == "cpu" else "auto"
    else:
        dtype = getattr(torch, params.dtype)
    common: dict[str, Any] = {"local_files_only": True}
    if files.gguf_file:
        common["gguf_file"] = files.gguf_file
    try:
        tokenizer: Any = AutoTokenizer.from_pretrained(files.source, **common)
        model: Any = AutoModelForCausalLM.from_pretrained(files.source, dtype=dtype, **common)
    except (OSError, ValueError, ImportError) as exc:
        raise BackendError(f"Could not load the model {files.path}: {exc}") from exc
    model.to(params.device)
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    eos_ids = frozenset([eos] if isinstance(eos, int) else (eos or []))
    return _Loaded(model, tokenizer, params.device, eos_ids, threading.Lock())


def _unload(loaded: _Loaded) -> None:
    loaded.model.to("cpu")


class TransformersBackend:
    name = "transformers"

    def __init__(self, model: str, params: TransformersParams) -> None:
        self.model = model
        self.params = params
        files = resolve(model, params.gguf_file)
        key = ("transformers", files.path, params.device, params.dtype)
        self._loaded = cached_model(key, lambda: _load(files, params), _unload)
        self._token_text: dict[int, str] = {}

    def close(self) -> None:
        """Nothing to release: the model stays cached for the next job of this process."""

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        results: list[list[Completion]] = [[] for _ in requests]
        groups: dict[SamplingParams, list[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            groups[request.params].append(i)
        size = self.params.batch_size
        for sampling, indices in groups.items():
            for start in range(0, len(indices), size):
                chunk = indices[start : start + size]
                batch = self._generate_batch([requests[i] for i in chunk], sampling)
                for i, completions in zip(chunk, batch, strict=True):
                    results[i] = completions
        return results

    # -- one batch -----------------------------------------------------------------------

    def _encode(self, request: GenerationRequest) -> list[int]:
        tokenizer = self._loaded.tokenizer
        if request.messages:
            if not tokenizer.chat_template:
                raise BackendError(
                    f"The model {self.model} has no chat template: send a plain prompt instead."
                )
            text = tokenizer.apply_chat_template(
                [{"role": m.role, "content": m.content} for m in request.messages],
                tokenize=False,
                add_generation_prompt=True,
            )
            # The template already wrote the special tokens it wants.
            ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = tokenizer(request.prompt)["input_ids"]
        return ids

    def _generate_batch(
        self, requests: Sequence[GenerationRequest], sp: SamplingParams
    ) -> list[list[Completion]]:
        import torch
        from transformers import GenerationConfig

        loaded = self._loaded
        tokenizer = loaded.tokenizer
        encoded = [self._encode(r) for r in requests]
        batch = tokenizer.pad(
            {"input_ids": encoded}, padding=True, return_tensors="pt", return_attention_mask=True
        )
        input_ids = batch["input_ids"].to(loaded.device)
        attention = batch["attention_mask"].to(loaded.device)
        want_logprobs = sp.top_logprobs is not None
        options: dict[str, Any] = dict(
            max_new_tokens=sp.max_tokens,
            do_sample=sp.temperature > 0,
            # Greedy samples are all the same: generate one and repeat it.
            num_return_sequences=sp.n if sp.temperature > 0 else 1,
            return_dict_in_generate=True,
            output_logits=want_logprobs,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=sorted(loaded.eos_ids) or None,
            bos_token_id=tokenizer.bos_token_id,
            stop_strings=list(sp.stop) or None,
        )
        if sp.temperature > 0:
            # top_k=0: no top-k cut, as in the OpenAI API and vLLM.
            options.update(temperature=sp.temperature, top_p=sp.top_p, top_k=0)
        config = cast(Any, GenerationConfig)(**options)
        started = time.perf_counter()
        with loaded.lock:
            if self.params.threads:
                torch.set_num_threads(self.params.threads)
            if sp.seed is not None:
                torch.manual_seed(sp.seed)
            try:
                with torch.inference_mode():
                    out = loaded.model.generate(
                        input_ids=input_ids,
                        attention_mask=attention,
                        generation_config=config,
                        tokenizer=tokenizer if sp.stop else None,
                    )
            except torch.cuda.OutOfMemoryError as exc:
                raise BackendError(
                    f"Out of accelerator memory generating {len(requests)} prompts: "
                    "lower batch_size or max_tokens."
                ) from exc
            except RuntimeError as exc:
                raise BackendError(f"Generation failed: {exc}") from exc
        latency = time.perf_counter() - started

        prompt_len = input_ids.shape[1]
        generated = out.sequences[:, prompt_len:].tolist()
        lengths = attention.sum(dim=1).tolist()
        logits: tuple[torch.Tensor, ...] = out.logits if want_logprobs else ()
        results: list[list[Completion]] = []
        for r in range(len(requests)):
            completions = []
            per_request = sp.n if sp.temperature > 0 else 1
            for s in range(sp.n):
                row = r * per_request + s % per_request
                ids, finish = self._trim(generated[row], sp)
                text = tokenizer.decode(ids, skip_special_tokens=True)
                if sp.stop:
                    text, ids, finish = self._cut_at_stop(text, ids, sp.stop, finish)
                completions.append(
                    Completion(
                        text=text,
                        tokens_in=int(lengths[r]),
                        tokens_out=len(ids),
                        latency_s=latency,
                        model=self.model,
                        finish_reason=finish,
                        logprobs=self._logprobs(logits, row, ids, sp.top_logprobs or 0)
                        if want_logprobs
                        else None,
                    )
                )
            results.append(completions)
        return results

    def _trim(self, ids: list[int], sp: SamplingParams) -> tuple[list[int], str]:
        """The generated ids up to (not including) the first end-of-sequence token."""
        for i, token in enumerate(ids):
            if token in self._loaded.eos_ids:
                return ids[:i], "stop"
        return ids, "length" if len(ids) >= sp.max_tokens else "stop"

    def _cut_at_stop(
        self, text: str, ids: list[int], stop: tuple[str, ...], finish: str
    ) -> tuple[str, list[int], str]:
        """OpenAI's rule: the text ends before the first stop string, which is not included."""
        hits = [i for i in (text.find(s) for s in stop) if i >= 0]
        if not hits:
            return text, ids, finish
        cut = min(hits)
        tokenizer = self._loaded.tokenizer
        keep = 0
        while (
            keep < len(ids)
            and len(tokenizer.decode(ids[: keep + 1], skip_special_tokens=True)) <= cut
        ):
            keep += 1
        return text[:cut], ids[:keep], "stop"

    def _logprobs(
        self, logits: tuple[torch.Tensor, ...], row: int, ids: list[int], k: int
    ) -> tuple[TokenLogprob, ...]:
        entries = []
        for step, token in enumerate(ids):
            logprobs = logits[step][row].float().log_softmax(dim=-1)
            top: tuple[tuple[str, float], ...] = ()
            if k:
                values, indices = logprobs.topk(k)
                top = tuple(
                    (self._text(i), v)
                    for i, v in zip(indices.tolist(), values.tolist(), strict=True)
                )
            entries.append(TokenLogprob(self._text(token), float(logprobs[token]), top))
        return tuple(entries)

    def _text(self, token_id: int) -> str:
        text = self._token_text.get(token_id)
        if text is None:
            text = self._token_text[token_id] = self._loaded.tokenizer.decode([token_id])
        return text


@register(
    "transformers",
    params=TransformersParams,
    where="a local model in the worker process, on its CPU or GPU (device)",
)
def create_transformers(model: str, params: TransformersParams) -> TransformersBackend:
    return TransformersBackend(model, params)
