"""A GGUF file (llama.cpp's format, f32 or quantized) is a base model like a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()
pytest.importorskip("gguf")

import torch  # noqa: E402

from app.exports.schemas import Schema  # noqa: E402
from app.training.config import DpoConfig, PolicyEval, Precision, RewardModelConfig  # noqa: E402
from app.training.loading import load_causal_lm, load_tokenizer, resolve_model  # noqa: E402
from app.training.run import run_training  # noqa: E402
from tests.training.helpers import (  # noqa: E402
    MemoryContext,
    preference_rows,
    save_tiny_gguf,
    vocabulary,
    write_snapshot,
)


@pytest.mark.parametrize("quantized", [False, True])
def test_a_gguf_file_loads_as_the_model_it_was_written_from(
    tmp_path: Path, quantized: bool
) -> None:
    path, source = save_tiny_gguf(tmp_path, vocabulary(), quantized=quantized)
    assert resolve_model(str(path)).gguf_file == path.name
    tok = load_tokenizer(resolve_model(str(path)))
    loaded = load_causal_lm(str(path), tok, Precision.fp32).eval()
    ids = tok("question 1 w3 w4\n", return_tensors="pt")
    assert tok.decode(ids["input_ids"][0]) == "question 1 w3 w4\n"
    with torch.no_grad():
        diff = (loaded(**ids).logits - source(**ids).logits).abs().max().item()
    assert diff < (0.05 if quantized else 1e-6), diff  # Q8_0 rounds the weights a little


def test_reward_model_and_dpo_train_from_a_gguf_base(tmp_path: Path) -> None:
    path, _ = save_tiny_gguf(tmp_path / "base", vocabulary(), quantized=True)
    snap = write_snapshot(tmp_path / "snap", Schema.preference, preference_rows(12))
    rm = RewardModelConfig(base_model=str(path), max_steps=2, batch_size=4, max_length=64)
    result = run_training(rm, snap, tmp_path / "rm", MemoryContext(tmp_path / "w1"))
    assert result.metrics["steps"] == 2 and (tmp_path / "rm" / "model.safetensors").is_file()
    # What was trained from a GGUF file is saved as an ordinary model folder.
    assert resolve_model(str(tmp_path / "rm")).gguf_file is None

    dpo = DpoConfig(
        base_model=str(path),
        max_steps=2,
        batch_size=4,
        max_length=64,
        evaluation=PolicyEval(prompts=2, max_new_tokens=4),
    )
    out = run_training(dpo, snap, tmp_path / "dpo", MemoryContext(tmp_path / "w2"))
    assert out.metrics["steps"] == 2 and out.metrics["eval_prompts"] == 2
    tok = load_tokenizer(resolve_model(str(tmp_path / "dpo")))
    assert load_causal_lm(str(tmp_path / "dpo"), tok, Precision.fp32).config.model_type == "llama"
