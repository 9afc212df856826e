"""Helpers for training tests: an in-memory JobContext, tiny models, snapshot folders.

Models and tokenizers are built here, tiny and random (a word-level tokenizer trained on the
test's own words, a 2-layer GPT-2): nothing is downloaded. Snapshot folders are written with the
export code's own writer and Arrow schema, with a manifest carrying the keys `app.exports`
writes, so the trainers read exactly what a real snapshot holds.
"""

from __future__ import annotations

import copy
import json
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from app.exports.columns import columns
from app.exports.schemas import Format, Schema, Style
from app.exports.writers import HashingSink, make_writer
from app.jobs.context import JobCancelled

TRAIN_MODULES = ("torch", "transformers", "trl", "datasets", "tokenizers", "peft", "accelerate")
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def require_train_extra() -> None:
    """Skip the module without the train extra (fail in CI, which installs it)."""
    for module in TRAIN_MODULES:
        if os.environ.get("CI") == "true":
            __import__(module)
        else:
            pytest.importorskip(module)


class WorkerDied(Exception):
    """Stands for a SIGKILL: the attempt ends wherever it is."""


class MemoryContext:
    """A JobContext kept in memory: records progress and checkpoints, cancels or dies on cue.

    `resume_state` survives between attempts the way the jobs table keeps it: pass the same
    object to the next attempt (`next_attempt()`).
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        cancel_at_step: int | None = None,
        die_at_step: int | None = None,
    ) -> None:
        self.job_id = 1
        self.attempt = 1
        self.params: dict[str, Any] = {}
        self.work_dir = work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        self.cancel_at_step = cancel_at_step
        self.die_at_step = die_at_step
        self.cancel_requested = False
        self.reports: list[tuple[float, dict[str, Any]]] = []
        self.checkpoints: list[dict[str, Any]] = []
        self._state: dict[str, Any] | None = None

    def next_attempt(self) -> MemoryContext:
        self.attempt += 1
        self.die_at_step = None
        self.reports = []
        return self

    def progress(self, fraction: float, detail: Any = None) -> None:
        assert 0.0 <= fraction <= 1.0, fraction
        detail = dict(detail or {})
        self.reports.append((fraction, detail))
        step = detail.get("step")
        if isinstance(step, int):
            if self.die_at_step is not None and step >= self.die_at_step:
                raise WorkerDied(f"killed at step {step}")
            if self.cancel_at_step is not None and step >= self.cancel_at_step:
                self.cancel_requested = True
        if self.cancel_requested:
            raise JobCancelled("cancel requested")

    def heartbeat(self) -> None:
        pass

    def cancelled(self) -> bool:
        return self.cancel_requested

    def checkpoint(self, state: Any) -> None:
        # Through JSON, as the jobs table stores it.
        self._state = json.loads(json.dumps(dict(state)))
        self.checkpoints.append(copy.deepcopy(self._state))

    def resume_state(self) -> dict[str, Any] | None:
        return copy.deepcopy(self._state)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        raise AssertionError("the training library never writes to the database itself")
        yield  # pragma: no cover

    def steps_reported(self) -> list[int]:
        return [d["step"] for _, d in self.reports if isinstance(d.get("step"), int)]


class ModelBackend:
    """An `app.inference.base.Backend` over a model folder, sampling in this process.

    Stands in for the inference domain's `transformers` backend (another branch) with the same
    interface, so that best_of_n and expert_iteration run against a real model here.
    """

    name = "test-transformers"

    def __init__(self, path: str) -> None:
        from app.training.config import Precision
        from app.training.loading import load_causal_lm, load_tokenizer, resolve_model

        self.tok = load_tokenizer(resolve_model(path))
        self.model = load_causal_lm(path, self.tok, Precision.fp32)
        self.requests = 0

    def generate(self, requests: Any) -> list[list[Any]]:
        from app.inference.base import Completion
        from app.training.generation import sample

        out = []
        for request in requests:
            self.requests += 1
            p = request.params
            prompt = (
                request.prompt
                if request.prompt is not None
                else [{"role": m.role, "content": m.content} for m in request.messages]
            )
            (group,) = sample(
                self.model,
                self.tok,
                [prompt],
                n=p.n,
                temperature=p.temperature,
                top_p=p.top_p,
                max_new_tokens=p.max_tokens,
                seed=p.seed or 0,
            )
            out.append(
                [Completion(s.text, 0, len(s.token_ids), 0.0, s.finish_reason) for s in group]
            )
        return out

    def close(self) -> None:
        pass


# -- tiny models -------------------------------------------------------------------------------


def save_tiny_model(folder: Path, words: list[str], *, seed: int = 0, n_embd: int = 32) -> Path:
    """A random 2-layer GPT-2 with a word-level tokenizer over `words`, saved as a model folder."""
    from app.simulate.tiny_policy import random_gpt2

    fast, model = random_gpt2([*words, "user: assistant:"], CHAT_TEMPLATE, n_embd=n_embd, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    return folder


def save_tiny_gguf(folder: Path, words: list[str], *, quantized: bool = False) -> tuple[Path, Any]:
    """A random 2-layer Llama with a byte-level BPE tokenizer, written as llama.cpp writes a
    GGUF file (q/k rows permuted, tokenizer in the metadata; Q8_0 weights if `quantized`).
    Returns the file and the source model, whose logits the loaded file must reproduce."""
    import gguf
    import numpy as np
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        [*words, "user: assistant:\n"],
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=["<|endoftext|>", "<|pad|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tokens = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
    merges = [" ".join(m) for m in json.loads(tok.to_str())["model"]["merges"]]
    heads, hidden = 2, 32
    config = LlamaConfig(
        vocab_size=len(tokens),
        hidden_size=hidden,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=1,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("tiny-q8_0.gguf" if quantized else "tiny-f32.gguf")
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_context_length(256)
    w.add_embedding_length(hidden)
    w.add_block_count(2)
    w.add_feed_forward_length(64)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    w.add_rope_dimension_count(hidden // heads)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3 if t.startswith("<|") else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    w.add_pad_token_id(1)
    w.add_chat_template(CHAT_TEMPLATE)
    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
    }
    parts = [
        ("input_layernorm", "attn_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("post_attention_layernorm", "ffn_norm"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
    ]
    for i in range(2):
        for hf, gg in parts:
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    for key, value in model.state_dict().items():
        if key not in names:
            continue  # lm_head: tied to the embeddings
        a = value.numpy().astype(np.float32)
        if "q_proj" in key or "k_proj" in key:  # llama.cpp's rotary layout
            a = (
                a.reshape(heads, 2, a.shape[0] // heads // 2, *a.shape[1:])
                .swapaxes(1, 2)
                .reshape(a.shape)
            )
        if quantized and a.ndim == 2 and "embed" not in key:
            q8 = gguf.GGMLQuantizationType.Q8_0
            w.add_tensor(names[key], gguf.quants.quantize(a, q8), raw_dtype=q8)
        else:
            w.add_tensor(names[key], a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path, model


# -- snapshot folders --------------------------------------------------------------------------


def _default(arrow_type: Any) -> Any:
    import pyarrow as pa

    return [] if pa.types.is_list(arrow_type) else None


def write_snapshot(
    folder: Path,
    schema: Schema,
    rows: list[dict[str, Any]],
    *,
    fmt: Format = Format.parquet,
    style: Style = Style.standard,
    options: dict[str, Any] | None = None,
) -> Path:
    """A snapshot folder as `app.exports` writes one: data file (the export's writer and
    schema, every column present) and manifest.json."""
    folder.mkdir(parents=True, exist_ok=True)
    cols = columns(schema, style)
    full = [{c.name: row.get(c.name, _default(c.type)) for c in cols} for row in rows]
    name = f"{schema.value}.{fmt.value}"
    with (folder / name).open("wb") as f:
        sink = HashingSink(f)
        writer = make_writer(fmt, schema, style, sink)
        writer.write(full)
        writer.close()
    opts = {"schema": schema.value, "format": fmt.value, **(options or {})}
    if style is not Style.standard:
        opts["style"] = style.value
    manifest = {
        "export_id": 1,
        "tandem_version": "0.1.0",
        "created_at": "2026-01-01T00:00:00Z",
        "project": {"id": 1, "name": "test", "kind": "pairwise"},
        "schema": schema.value,
        "format": fmt.value,
        "options": opts,
        "file": {"name": name, "bytes": sink.bytes, "sha256": sink.sha256},
        "snapshot": {
            "taken_at": "2026-01-01T00:00:00Z",
            "isolation": "repeatable read, read only",
            "pg_snapshot": "1:1:",
            "highest_annotation_id": len(rows),
            "project_highest_annotation_id": len(rows),
        },
        "counts": {"rows": len(rows)},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


# -- planted data ------------------------------------------------------------------------------

# Standard-style rows are read as TRL reads them, prompt + response: prompts end with the
# separator (a newline), as a completion-style prompt template would.
FILLER = [f"w{i}" for i in range(40)]
FEATURE = "certainly"  # what the preferred responses carry


def filler(rng: random.Random, n: int, words: list[str] = FILLER) -> str:
    return " ".join(rng.choice(words) for _ in range(n))


def with_feature(rng: random.Random, n: int, words: list[str] = FILLER) -> str:
    out = [rng.choice(words) for _ in range(n)]
    out.insert(rng.randrange(n + 1), FEATURE)
    return " ".join(out)


def preference_rows(
    n_items: int, *, seed: int = 0, words: list[str] = FILLER
) -> list[dict[str, Any]]:
    """Pairs where the chosen response carries FEATURE and the rejected does not; responses
    are drawn from `words` (every word but FEATURE: what a random policy says)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_items):
        rows.append(
            {
                "prompt": f"question {i % 10} {filler(rng, 3)}\n",
                "chosen": with_feature(rng, rng.randint(3, 8), words),
                "rejected": filler(rng, rng.randint(4, 9), words),
                "item_id": i + 1,
                "external_id": f"x-{i}",
                "is_gold": False,
                "metadata": "{}",
                "kind": "pairwise",
                "aggregation": "majority",
                "n_votes": 1,
                "votes_chosen": 1,
                "votes_rejected": 0,
                "votes_tie": 0,
                "agreement": 1.0,
            }
        )
    return rows


QUALITY = ["excellent", "good", "fine", "bad"]  # best first: what a ranking follows


def ranking_rows(n_items: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """Four responses per item, each with one quality word; the order follows QUALITY."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_items):
        quality = QUALITY[:]
        rng.shuffle(quality)  # the responses' import order
        responses = []
        for word in quality:
            words = [rng.choice(FILLER) for _ in range(rng.randint(3, 7))]
            words.insert(rng.randrange(len(words) + 1), word)
            responses.append(" ".join(words))
        order = sorted(range(4), key=lambda j: QUALITY.index(quality[j]))
        rows.append(
            {
                "prompt": f"question {i % 10} {filler(rng, 3)}\n",
                "responses": responses,
                "response_ids": [4 * i + j for j in range(4)],
                "models": ["m"] * 4,
                "order": order,
                "scores": [3 - order.index(j) for j in range(4)],
                "item_id": i + 1,
                "is_gold": False,
                "metadata": "{}",
                "aggregation": "borda",
                "n_votes": 1,
                "agreement": 1.0,
            }
        )
    return rows


SPAN_WORDS = {"wrong": "error", "excellent": "praise"}  # word -> the label that marks it


def span_rows(n_items: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """Responses where every "wrong" is marked `error` and every "excellent" `praise`."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_items):
        words = [rng.choice(FILLER) for _ in range(rng.randint(5, 10))]
        for special in SPAN_WORDS:
            for _ in range(rng.randint(0, 2)):
                words.insert(rng.randrange(len(words) + 1), special)
        response = " ".join(words)
        spans, at = [], 0
        for w in words:
            if w in SPAN_WORDS:
                spans.append(
                    {
                        "start": at,
                        "end": at + len(w),
                        "label": SPAN_WORDS[w],
                        "votes": 1,
                        "agreement": 1.0,
                    }
                )
            at += len(w) + 1
        rows.append(
            {
                "prompt": f"question {i % 10}\n",
                "response": response,
                "labels": ["error", "praise"],
                "spans": spans,
                "item_id": i + 1,
                "response_id": i + 1,
                "is_gold": False,
                "metadata": "{}",
                "aggregation": "overlap",
                "n_votes": 1,
                "agreement": 1.0,
            }
        )
    return rows


def critique_rows(n_items: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """Critiques whose rewrites all start "better answer" (what SFT on rewrites should learn)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_items):
        response = filler(rng, rng.randint(3, 6))
        rows.append(
            {
                "prompt": f"question {i % 10}\n",
                "response": response,
                "critique": "wrong",
                "rewrite": f"better answer {filler(rng, 2)}",
                "rating": 2,
                "item_id": i + 1,
                "response_id": i + 1,
                "annotation_id": i + 1,
                "source": "human",
                "annotator_id": 1,
                "is_gold": False,
                "metadata": "{}",
                "created_at": "2026-01-01T00:00:00Z",
            }
        )
    return rows


def vocabulary() -> list[str]:
    return [
        " ".join(FILLER),
        FEATURE,
        "question " + " ".join(str(i) for i in range(10)),
        " ".join(QUALITY),
        "wrong critique rewrite better answer",
    ]


def policy_words() -> list[str]:
    """Every word a tiny policy over vocabulary() can say, but FEATURE."""
    words = [*" ".join(vocabulary()).split(), "user", ":", "assistant"]
    return sorted(set(words) - {FEATURE})
