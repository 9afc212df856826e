"""Training configs: one typed model per kind, unknown keys and bad values refused with the field
named; importing the library's entry points loads no ML library (the web process may)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from app.training.config import (
    BestOfNConfig,
    DpoConfig,
    ExpertIterationConfig,
    RewardModelConfig,
    SftConfig,
    parse_config,
)


@pytest.mark.parametrize(
    ("data", "model"),
    [
        ({"kind": "reward_model", "base_model": "/m"}, RewardModelConfig),
        ({"kind": "dpo", "base_model": "/m", "beta": 0.2}, DpoConfig),
        ({"kind": "sft", "base_model": "/m", "source": "samples"}, SftConfig),
        ({"kind": "best_of_n", "policy": "/p", "reward_model": "/r"}, BestOfNConfig),
        (
            {"kind": "expert_iteration", "base_model": "/m", "reward_model": "/r"},
            ExpertIterationConfig,
        ),
    ],
)
def test_kind_picks_the_config(data: dict[str, object], model: type[object]) -> None:
    assert isinstance(parse_config(data), model)


def test_defaults_are_the_documented_ones() -> None:
    c = parse_config({"kind": "dpo", "base_model": "/m"})
    assert isinstance(c, DpoConfig)
    assert (c.beta, c.loss_type, c.learning_rate, c.eval_fraction) == (0.1, "sigmoid", 1e-6, 0.1)
    assert c.lora is None and c.max_steps is None and c.checkpoint_every == 100


def errors_of(data: dict[str, object]) -> list[dict[str, object]]:
    with pytest.raises(ValidationError) as info:
        parse_config(data)
    return [{"loc": e["loc"], "type": e["type"], "msg": e["msg"]} for e in info.value.errors()]


def test_unknown_keys_are_refused_and_named() -> None:
    errs = errors_of({"kind": "sft", "base_model": "/m", "learnin_rate": 1e-4})
    assert errs == [
        {
            "loc": ("sft", "learnin_rate"),
            "type": "extra_forbidden",
            "msg": "Extra inputs are not permitted",
        }
    ]
    errs = errors_of({"kind": "dpo", "base_model": "/m", "lora": {"rank": 8}})
    assert errs[0]["loc"] == ("dpo", "lora", "rank") and errs[0]["type"] == "extra_forbidden"


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"kind": "reward_model", "base_model": "/m", "learning_rate": 0}, "learning_rate"),
        ({"kind": "reward_model", "base_model": "/m", "eval_fraction": 1.0}, "eval_fraction"),
        ({"kind": "reward_model", "base_model": "/m", "batch_size": 0}, "batch_size"),
        ({"kind": "reward_model", "base_model": "  "}, "base_model"),
        ({"kind": "dpo", "base_model": "/m", "loss_type": "magic"}, "loss_type"),
        ({"kind": "best_of_n", "policy": "/p", "reward_model": "/r", "sampling": {"n": 1}}, "n"),
    ],
)
def test_bad_values_name_their_field(data: dict[str, object], loc: str) -> None:
    errs = errors_of(data)
    assert errs[0]["loc"][-1] == loc


def test_missing_required_model_and_unknown_kind() -> None:
    assert errors_of({"kind": "best_of_n", "policy": "/p"})[0]["loc"] == (
        "best_of_n",
        "reward_model",
    )
    assert errors_of({"kind": "ppo", "base_model": "/m"})[0]["type"] == "union_tag_invalid"


def test_expert_iteration_must_keep_fewer_than_it_samples() -> None:
    errs = errors_of(
        {
            "kind": "expert_iteration",
            "base_model": "/m",
            "reward_model": "/r",
            "keep_top": 4,
            "sampling": {"n": 4},
        }
    )
    assert "keep_top (4) must be smaller than sampling.n (4)" in str(errs[0]["msg"])


def test_importing_the_library_loads_no_ml_library() -> None:
    code = (
        "import sys, app.training.config, app.training.run, app.training.snapshot;"
        "heavy = {'torch', 'transformers', 'trl', 'datasets', 'peft', 'accelerate', 'sklearn'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
