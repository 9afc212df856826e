"""Training throughput: a reward model through the library vs the same TRL training in a plain
script, on the same data in the same run; and sampling tokens/s through best_of_n vs raw generate.

Builds, in a scratch folder, a GPT-2 (random weights, --n-embd/--layers) with a word-level
tokenizer and a `preference` snapshot (written with the export code's own Parquet writer and a
manifest, as a snapshot job writes it). Then, alternating so that a shared machine's load hits
both alike, --repeat times each:

  * library: `app.training.run.run_training` with a RewardModelConfig, under a file-backed job
    context (progress events every 2 s, a checkpoint at the end, held-out evaluation, artifacts
    with sha256): what a training job runs;
  * plain: TRL's RewardTrainer on the same Parquet rows, same model folder, same arguments, no
    checkpoint, no evaluation: the limit.

Steps/s is optimizer steps over the trainer's own train_runtime (the training loop, including
the library's end-of-run checkpoint); CPU s/step is the process's CPU time (all threads) over the
same loop, which a busy shared machine disturbs far less than wall time; wall is the whole call
(loading, evaluation, saving).

Sampling: best_of_n (n samples per prompt, scored by the reward model just trained) through a
Backend that calls `generate` on a model in this process, against the same `generate` calls made
directly: tokens generated per second of sampling.

    .venv/bin/python bench/train.py                 # 3 to 10 minutes on 2 cores
    .venv/bin/python bench/train.py --steps 200 --n-embd 256 --layers 6 --repeat 3

Prints numbers and ratios; asserts nothing. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = [f"w{i}" for i in range(200)]
FEATURE = "certainly"


def build_model(folder: Path, n_embd: int, layers: int) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        [" ".join(WORDS), FEATURE, "question " + " ".join(str(i) for i in range(100))],
        trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[EOS]"]),
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    )
    config = GPT2Config(
        vocab_size=len(fast),
        n_embd=n_embd,
        n_layer=layers,
        n_head=4,
        n_positions=256,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=fast.eos_token_id,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    return folder


def build_snapshot(folder: Path, pairs: int) -> Path:
    from app.exports.columns import columns
    from app.exports.schemas import Schema, Style
    from app.exports.writers import HashingSink, make_writer

    rng = random.Random(0)

    def words(n: int) -> list[str]:
        return [rng.choice(WORDS) for _ in range(n)]

    rows = []
    for i in range(pairs):
        chosen = words(rng.randint(8, 20))
        chosen.insert(rng.randrange(len(chosen)), FEATURE)
        rows.append(
            {
                "prompt": f"question {i % 100} {' '.join(words(6))}\n",
                "chosen": " ".join(chosen),
                "rejected": " ".join(words(rng.randint(8, 20))),
                "item_id": i + 1,
            }
        )
    cols = columns(Schema.preference, Style.standard)
    full = [{c.name: r.get(c.name) if c.name != "votes" else [] for c in cols} for r in rows]
    folder.mkdir(parents=True)
    with (folder / "preference.parquet").open("wb") as f:
        sink = HashingSink(f)
        writer = make_writer_for_parquet(make_writer, sink)
        writer.write(full)
        writer.close()
    manifest = {
        "export_id": None,
        "schema": "preference",
        "format": "parquet",
        "options": {"schema": "preference", "format": "parquet"},
        "file": {"name": "preference.parquet", "bytes": sink.bytes, "sha256": sink.sha256},
        "snapshot": {"highest_annotation_id": pairs},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def make_writer_for_parquet(make_writer: Any, sink: Any) -> Any:
    from app.exports.schemas import Format, Schema, Style

    return make_writer(Format.parquet, Schema.preference, Style.standard, sink)


def plain_trl(model_dir: Path, snap: Path, out: Path, args: argparse.Namespace) -> dict[str, float]:
    """The limit: TRL's RewardTrainer on the snapshot's rows, nothing around it."""
    import datasets
    import pyarrow.parquet as pq
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    started = time.perf_counter()
    table = pq.read_table(snap / "preference.parquet", columns=["prompt", "chosen", "rejected"])
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), num_labels=1)
    model.config.pad_token_id = tok.pad_token_id
    config = RewardConfig(
        output_dir=str(out),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch,
        learning_rate=1e-3,
        seed=0,
        data_seed=0,
        bf16=False,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=10,
        disable_tqdm=True,
        activation_checkpointing=False,
        dataloader_num_workers=0,
        max_length=128,
    )
    trainer = RewardTrainer(
        model=model, args=config, train_dataset=datasets.Dataset(table), processing_class=tok
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # as the library does: no log lines on stdout
    cpu = time.process_time()
    result = trainer.train()
    cpu = time.process_time() - cpu
    runtime = float(result.metrics["train_runtime"])
    return {
        "steps": trainer.state.global_step,
        "train_runtime_s": runtime,
        "steps_per_s": trainer.state.global_step / runtime,
        "cpu_s_per_step": cpu / trainer.state.global_step,
        "wall_s": time.perf_counter() - started,
    }


def library(model_dir: Path, snap: Path, root: Path, args: argparse.Namespace) -> dict[str, float]:
    from app.training.config import RewardModelConfig
    from app.training.file_context import FileContext
    from app.training.run import run_training

    started = time.perf_counter()
    config = RewardModelConfig(
        base_model=str(model_dir),
        max_steps=args.steps,
        batch_size=args.batch,
        learning_rate=1e-3,
        checkpoint_every=10_000,
        log_every=10,
        max_length=128,
        precision="fp32",
    )
    work = root / "work"
    work.mkdir(parents=True)
    result = run_training(config, snap, root / "rm", FileContext(work))
    m = result.metrics
    return {
        "steps": m["steps"],
        "train_runtime_s": m["train_runtime_s"],
        "steps_per_s": m["train_steps_per_s"],
        "cpu_s_per_step": m["train_cpu_s"] / m["steps"],
        "wall_s": time.perf_counter() - started,
        "heldout_accuracy": m.get("heldout_accuracy", float("nan")),
    }


class GenerateBackend:
    """A Backend over `generate` on a model in this process (one call per request)."""

    name = "bench-generate"

    def __init__(self, path: str) -> None:
        from app.training.config import Precision
        from app.training.loading import load_causal_lm, load_tokenizer, resolve_model

        self.tok = load_tokenizer(resolve_model(path))
        self.model = load_causal_lm(path, self.tok, Precision.fp32)

    def generate(self, requests: Any) -> list[list[Any]]:
        from app.inference.base import Completion
        from app.training.generation import sample

        out = []
        for r in requests:
            p = r.params
            (group,) = sample(
                self.model,
                self.tok,
                [r.prompt],
                n=p.n,
                temperature=p.temperature,
                max_new_tokens=p.max_tokens,
                seed=p.seed or 0,
            )
            out.append(
                [Completion(s.text, 0, len(s.token_ids), 0.0, s.finish_reason) for s in group]
            )
        return out

    def close(self) -> None:
        pass


def library_sampling(
    model_dir: Path, rm: Path, snap: Path, root: Path, args: argparse.Namespace
) -> dict[str, float]:
    """best_of_n through the library: its own sampling tokens/s, and the whole run's time."""
    from app.training.config import BestOfNConfig, Sampling
    from app.training.file_context import FileContext
    from app.training.run import run_training

    config = BestOfNConfig(
        policy=str(model_dir),
        reward_model=str(rm),
        max_length=128,
        sampling=Sampling(n=args.n, max_new_tokens=args.max_new_tokens, max_prompts=args.prompts),
    )
    work = root / "work"
    work.mkdir(parents=True)
    started = time.perf_counter()
    result = run_training(
        config,
        snap,
        root / "bon",
        FileContext(work),
        backends=lambda path, s: GenerateBackend(path),
    )
    return {
        "tokens_per_s": result.metrics["sampling"]["tokens_per_s"],
        "wall_s": time.perf_counter() - started,
        "gain": result.metrics["score_gain_over_random"],
    }


def raw_sampling(model_dir: Path, snap: Path, args: argparse.Namespace) -> dict[str, float]:
    """The same generate calls (one per prompt, n samples, the same seeds), made directly."""
    import pyarrow.parquet as pq

    from app.training.generation import sample

    backend = GenerateBackend(str(model_dir))
    prompts = pq.read_table(snap / "preference.parquet", columns=["prompt"]).column("prompt")
    distinct = list(dict.fromkeys(prompts.to_pylist()))[: args.prompts]
    started = time.perf_counter()
    tokens = 0
    for i, prompt in enumerate(distinct):
        (group,) = sample(
            backend.model,
            backend.tok,
            [prompt],
            n=args.n,
            max_new_tokens=args.max_new_tokens,
            seed=i,
        )
        tokens += sum(len(s.token_ids) for s in group)
    return {"tokens_per_s": tokens / (time.perf_counter() - started)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()

    import datasets
    import torch
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    root = Path(tempfile.mkdtemp(prefix="tandem-bench-train-"))
    model_dir = build_model(root / "model", args.n_embd, args.layers)
    snap = build_snapshot(root / "snapshot", args.pairs)
    params = sum(
        p.numel() for p in transformers.AutoModel.from_pretrained(str(model_dir)).parameters()
    )
    print(
        f"model: GPT-2 {args.layers} layers x {args.n_embd}, {params / 1e6:.2f}M parameters;"
        f" {args.pairs} pairs, batch {args.batch}, {args.steps} steps, torch {torch.__version__}"
        f" on {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.1f}"
    )
    plain: list[dict[str, float]] = []
    lib: list[dict[str, float]] = []
    for i in range(args.repeat):
        # Alternate which goes first, so that neither always meets the warmer machine.
        order = ("plain", "lib") if i % 2 == 0 else ("lib", "plain")
        for which in order:
            if which == "plain":
                plain.append(plain_trl(model_dir, snap, root / f"plain-{i}", args))
            else:
                lib.append(library(model_dir, snap, root / f"lib-{i}", args))
    best_plain = max(plain, key=lambda r: r["steps_per_s"])
    best_lib = max(lib, key=lambda r: r["steps_per_s"])
    cpu_plain = min(r["cpu_s_per_step"] for r in plain)
    cpu_lib = min(r["cpu_s_per_step"] for r in lib)
    print(
        f"\n{f'reward model (best of {args.repeat})':<28} {'steps':>6} {'train s':>8}"
        f" {'steps/s':>8} {'CPU s/step':>11} {'wall s':>7}"
    )
    for name, r, c in (
        ("plain TRL RewardTrainer", best_plain, cpu_plain),
        ("library (job context)", best_lib, cpu_lib),
    ):
        print(
            f"{name:<28} {r['steps']:>6.0f} {r['train_runtime_s']:>8.2f}"
            f" {r['steps_per_s']:>8.2f} {c:>11.3f} {r['wall_s']:>7.1f}"
        )
    print(
        f"library / plain: {best_lib['steps_per_s'] / best_plain['steps_per_s']:.2f} by steps/s,"
        f" {cpu_plain / cpu_lib:.2f} by CPU time per step (every run: plain"
        f" {[round(r['steps_per_s'], 2) for r in plain]} steps/s"
        f" {[round(r['cpu_s_per_step'], 3) for r in plain]} CPU s/step, library"
        f" {[round(r['steps_per_s'], 2) for r in lib]} steps/s"
        f" {[round(r['cpu_s_per_step'], 3) for r in lib]} CPU s/step)"
    )
    print(f"library held-out accuracy: {best_lib['heldout_accuracy']:.3f}")

    raw: list[dict[str, float]] = []
    bon: list[dict[str, float]] = []
    for i in range(args.repeat):
        if i % 2:
            raw.append(raw_sampling(model_dir, snap, args))
        bon.append(
            library_sampling(model_dir, root / "lib-0" / "rm", snap, root / f"bon-{i}", args)
        )
        if not i % 2:
            raw.append(raw_sampling(model_dir, snap, args))
    best_raw = max(r["tokens_per_s"] for r in raw)
    best_bon = max(bon, key=lambda r: r["tokens_per_s"])
    print(
        f"\nsampling, {args.prompts} prompts x n={args.n}, {args.max_new_tokens} new tokens at most (best of {args.repeat}):"
    )
    print(
        f"  best_of_n through a Backend: {best_bon['tokens_per_s']:.1f} tokens/s"
        f" (the whole run with scoring {best_bon['wall_s']:.1f} s, RM score gain over random {best_bon['gain']:.2f})"
    )
    print(f"  raw generate, same calls:    {best_raw:.1f} tokens/s")
    print(
        f"  ratio: {best_bon['tokens_per_s'] / best_raw:.2f}  (every run: raw"
        f" {[round(r['tokens_per_s'], 1) for r in raw]}, best_of_n {[round(r['tokens_per_s'], 1) for r in bon]})"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if args.keep:
        print(f"scratch folder kept: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
