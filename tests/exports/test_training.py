"""The `preference` export loads with `datasets` and trains TRL's RewardTrainer and DPOTrainer as-is.

Needs the `train` extra (torch, transformers, trl, datasets); skipped without it
(except in CI, which installs it). The models
and the tokenizer are built here, tiny and random: nothing is downloaded.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.train

for _module in ("torch", "transformers", "trl", "datasets", "tokenizers"):
    if os.environ.get("CI") == "true":
        __import__(_module)  # CI installs the train extra: a missing module is a failure
    else:
        pytest.importorskip(_module)

import datasets  # noqa: E402
from transformers import (  # noqa: E402
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)
from trl import (  # noqa: E402
    DPOConfig,
    DPOTrainer,
    KTOConfig,
    KTOTrainer,
    RewardConfig,
    RewardTrainer,
)

from app.config import get_settings  # noqa: E402
from app.exports.columns import arrow_schema, hf_features  # noqa: E402
from app.exports.schemas import Schema, Style  # noqa: E402
from app.simulate.tiny_policy import word_tokenizer  # noqa: E402
from tests.exports.helpers import annotate, export_bytes, pairwise_choice, snapshot  # noqa: E402
from tests.helpers import Actor, make_items  # noqa: E402

ProjectFactory = Callable[..., dict[str, Any]]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("WANDB_DISABLED", "true")


@pytest.fixture
def project(
    researcher: Actor, project_factory: ProjectFactory, make_user: Callable[..., Actor]
) -> dict[str, Any]:
    annotators = [make_user("annotator") for _ in range(2)]
    p = project_factory("pairwise", items=0, members=tuple(annotators), overlap=2)
    items = make_items("pairwise", 8)
    items[0]["external_id"] = None  # a null in the first row of a column typed later
    r = researcher.client.post(f"/api/v1/projects/{p['id']}/items", json=items)
    assert r.status_code == 201, r.text
    for actor in annotators:
        annotate(actor, p["id"], lambda t: {**pairwise_choice(t, 0), "strength": 2})
    return p


def tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    tok: PreTrainedTokenizerFast = word_tokenizer(texts, CHAT_TEMPLATE)
    return tok


def tiny_config(tok: PreTrainedTokenizerFast, **extra: Any) -> GPT2Config:
    return GPT2Config(
        vocab_size=len(tok),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=128,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id,
        **extra,
    )


def texts_of(ds: datasets.Dataset) -> list[str]:
    out: list[str] = []
    for row in ds:
        for key in ("prompt", "chosen", "rejected"):
            value = row[key]
            out += [m["content"] for m in value] if isinstance(value, list) else [value]
    return [*out, "user:", "assistant:"]


def args(kind: type[Any], out: Path) -> Any:
    return kind(
        output_dir=str(out),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        bf16=False,  # TRL 1.x defaults to bf16; this runs on the CPU
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        dataloader_num_workers=0,
        max_length=64,
    )


def load_jsonl(data: bytes, path: Path) -> datasets.Dataset:
    path.write_bytes(data)
    ds = datasets.load_dataset(
        "json", data_files=str(path), split="train", cache_dir=str(path.parent / "cache")
    )
    assert isinstance(ds, datasets.Dataset)
    return ds


def test_features_in_the_card_match_the_parquet_schema() -> None:
    for schema in Schema:
        for style in Style:
            from_card = datasets.Features._from_yaml_list(hf_features(schema, style))
            from_arrow = datasets.Features.from_arrow_schema(arrow_schema(schema, style))
            assert from_card == from_arrow, (schema, style)


def test_snapshot_folder_and_parquet_load_with_exact_types(
    researcher: Actor, project: dict[str, Any], tmp_path: Path
) -> None:
    done = snapshot(researcher, project["id"], schema="preference")
    folder = get_settings().data_dir / "exports" / f"{done['id']}-1"
    ds = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path))
    assert isinstance(ds, datasets.Dataset)
    assert ds.num_rows == 8
    assert ds.features == datasets.Features.from_arrow_schema(
        arrow_schema(Schema.preference, Style.standard)
    )
    parquet = snapshot(researcher, project["id"], schema="preference", format="parquet")
    folder = get_settings().data_dir / "exports" / f"{parquet['id']}-1"
    pds = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path))
    assert pds.to_list() == ds.to_list()


@pytest.mark.parametrize("style", ["standard", "conversational"])
def test_preference_export_trains_reward_and_dpo_models(
    researcher: Actor, project: dict[str, Any], tmp_path: Path, style: str
) -> None:
    data = export_bytes(researcher, project["id"], schema="preference", style=style)
    ds = load_jsonl(data, tmp_path / "preference.jsonl")
    assert ds.num_rows == 8
    assert {"prompt", "chosen", "rejected"} <= set(ds.column_names)
    tok = tokenizer(texts_of(ds))

    reward_model = GPT2ForSequenceClassification(tiny_config(tok, num_labels=1))
    reward = RewardTrainer(
        model=reward_model,
        args=args(RewardConfig, tmp_path / "rm"),
        train_dataset=ds,
        processing_class=tok,
    )
    out = reward.train()
    assert reward.state.global_step == 2 and math.isfinite(out.training_loss)

    policy = GPT2LMHeadModel(tiny_config(tok))
    dpo = DPOTrainer(
        model=policy,
        ref_model=copy.deepcopy(policy),  # a model built here has no path to load one from
        args=args(DPOConfig, tmp_path / "dpo"),
        train_dataset=ds,
        processing_class=tok,
    )
    out = dpo.train()
    assert dpo.state.global_step == 2 and math.isfinite(out.training_loss)
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_unpaired_export_trains_a_kto_model(
    researcher: Actor, project: dict[str, Any], tmp_path: Path
) -> None:
    data = export_bytes(researcher, project["id"], schema="unpaired")
    ds = load_jsonl(data, tmp_path / "unpaired.jsonl")
    assert ds.num_rows == 16 and sorted(set(ds["label"])) == [False, True]
    tok = tokenizer([t for row in ds for t in (row["prompt"], row["completion"])])
    policy = GPT2LMHeadModel(tiny_config(tok))
    kto = KTOTrainer(
        model=policy,
        ref_model=copy.deepcopy(policy),
        args=args(KTOConfig, tmp_path / "kto"),
        train_dataset=ds,
        processing_class=tok,
    )
    out = kto.train()
    assert kto.state.global_step == 2 and math.isfinite(out.training_loss)
