"""Sampling many responses per prompt through an inference backend, resumably.

The prompts of any snapshot (each distinct prompt once, with the item it came from) are sent
to a `Backend` in batches: `transformers` on a CPU worker, `vllm` on a GPU worker, both behind
`app.inference.base.Backend`. Finished samples are written to the job's work folder, so a
re-delivered job does not sample again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from app.inference.base import Backend, ChatMessage, GenerationRequest, SamplingParams
from app.training.config import Sampling
from app.training.errors import TrainingInputError
from app.training.reporter import Reporter
from app.training.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class PromptRef:
    prompt_id: int  # position among the snapshot's distinct prompts
    item_id: int | None
    prompt: Any  # text, or chat messages


def snapshot_prompts(snapshot: Snapshot) -> list[PromptRef]:
    """Each distinct prompt of the snapshot once, in the snapshot's order."""
    table = snapshot.read(["prompt", "item_id"])
    seen: set[bytes] = set()
    out: list[PromptRef] = []
    for row in table.to_pylist():
        key = orjson.dumps(row["prompt"])
        if key in seen or not row["prompt"]:
            continue
        seen.add(key)
        out.append(PromptRef(len(out), row["item_id"], row["prompt"]))
    if not out:
        raise TrainingInputError("the snapshot has no prompts to sample from.")
    return out


def request_for(prompt: Any, sampling: Sampling, seed: int) -> GenerationRequest:
    params = SamplingParams(
        n=sampling.n,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_new_tokens,
        seed=seed,
    )
    if isinstance(prompt, str):
        return GenerationRequest(prompt=prompt, params=params)
    messages = tuple(ChatMessage(m["role"], m["content"]) for m in prompt)
    return GenerationRequest(messages=messages, params=params)


def sample_prompts(
    backend: Backend,
    prompts: Sequence[PromptRef],
    sampling: Sampling,
    *,
    seed: int,
    reporter: Reporter,
) -> pa.Table:
    """One row per sample: prompt_id, item_id, prompt, sample_index, completion, tokens_out,
    finish_reason; plus the sampling speed in the table's metadata."""
    rows: list[dict[str, Any]] = []
    tokens = 0
    started = time.perf_counter()
    for start in range(0, len(prompts), sampling.prompts_per_batch):
        batch = prompts[start : start + sampling.prompts_per_batch]
        # A seed per prompt: the same prompt gets the same samples in any batch.
        requests = [request_for(p.prompt, sampling, seed + p.prompt_id) for p in batch]
        results = backend.generate(requests)
        for ref, completions in zip(batch, results, strict=True):
            for k, c in enumerate(completions):
                tokens += c.tokens_out
                rows.append(
                    {
                        "prompt_id": ref.prompt_id,
                        "item_id": ref.item_id,
                        "prompt": ref.prompt,
                        "sample_index": k,
                        "completion": c.text,
                        "tokens_out": c.tokens_out,
                        "finish_reason": c.finish_reason,
                    }
                )
        done = min(len(prompts), start + len(batch))
        reporter.report(done / len(prompts), {"prompts": done, "of": len(prompts)})
        reporter.raise_if_cancelled()
    seconds = time.perf_counter() - started
    table = pa.Table.from_pylist(rows)
    speed = {
        "seconds": seconds,
        "tokens": tokens,
        "tokens_per_s": tokens / seconds if seconds else 0,
    }
    return table.replace_schema_metadata({"tandem.sampling": orjson.dumps(speed)})


def sampling_speed(table: pa.Table) -> dict[str, float]:
    meta = table.schema.metadata or {}
    raw = meta.get(b"tandem.sampling")
    return orjson.loads(raw) if raw else {}


def sample_once(
    open_backend: Any,
    prompts: Sequence[PromptRef],
    sampling: Sampling,
    *,
    seed: int,
    reporter: Reporter,
    work_dir: Path,
    name: str = "samples.parquet",
) -> pa.Table:
    """The samples of an earlier attempt of this job, or new ones (written before returning)."""
    path = work_dir / name
    if reporter.state.get("samples") == name and path.is_file():
        return pq.read_table(path)
    backend: Backend = open_backend()
    try:
        table = sample_prompts(backend, prompts, sampling, seed=seed, reporter=reporter)
    finally:
        backend.close()
    tmp = path.with_suffix(".partial")
    pq.write_table(table, tmp)
    tmp.rename(path)
    reporter.remember(samples=name)
    return table
