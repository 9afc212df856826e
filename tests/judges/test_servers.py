"""Judge runs through the openai backend against a server that misbehaves on purpose:
retries where they help, then the error recorded and no partial vote."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import Actor, sql
from tests.inference import misbehaving_server
from tests.inference.misbehaving_server import MisbehavingServer
from tests.judges.helpers import ai_votes, make_project, outputs, run_inline

FAST = {"max_retries": 2, "backoff_s": 0.01, "max_backoff_s": 0.05, "timeout_s": 0.5}


@pytest.fixture
def server() -> Iterator[MisbehavingServer]:
    s = misbehaving_server.start(slow_seconds=2.0)
    yield s
    s.server.shutdown()
    s.server.server_close()


def openai_judge(admin: Actor, server: MisbehavingServer, behaviour: str, **params: Any) -> int:
    body = {
        "name": f"served-{behaviour}",
        "backend": "openai",
        "model": "misbehaving",
        "params": {"base_url": server.base(behaviour), **FAST, **params},
        "costs": {"per_1k_input": 1.0},
    }
    r = admin.client.post("/api/v1/judges", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.mark.parametrize("behaviour", ["garbage", "slow", "down", "rate-limited-long"])
def test_a_failing_server_fails_the_run_with_the_reason_and_stores_nothing(
    admin: Actor, researcher: Actor, server: MisbehavingServer, behaviour: str
) -> None:
    pid = make_project(researcher, "pairwise", 3)
    run = run_inline(researcher, pid, openai_judge(admin, server, behaviour))
    assert run["status"] == "failed", run
    assert run["error"].startswith("The openai backend failed:"), run["error"]
    assert (run["done"], run["failed"]) == (0, 3)
    assert sql("SELECT count(*) FROM judge_outputs")[0][0] == 0
    assert ai_votes(pid) == []
    if behaviour != "rate-limited-long":  # retried; a Retry-After past the limit is not
        assert len(server.hits(behaviour)) >= 3


def test_a_429_is_waited_out_and_the_run_completes(
    admin: Actor, researcher: Actor, server: MisbehavingServer
) -> None:
    pid = make_project(researcher, "pairwise", 2)
    run = run_inline(researcher, pid, openai_judge(admin, server, "rate-limited-once"))
    assert run["status"] == "succeeded" and run["done"] == 2, run
    assert run["tokens_in"] == 2 * 2 * 11 and run["cost"] == pytest.approx(0.044)


def test_a_judge_that_always_answers_a_is_inconsistent_under_the_swap(
    admin: Actor, researcher: Actor, server: MisbehavingServer
) -> None:
    pid = make_project(researcher, "pairwise", 3)
    run = run_inline(researcher, pid, openai_judge(admin, server, "ok"))
    assert (run["status"], run["done"], run["inconsistent"]) == ("succeeded", 3, 3)
    assert ai_votes(pid) == []
    for out in outputs(pid):
        # Each order's answer "A" at p = 0.9 (from top_logprobs) names the other response.
        assert out["consistent"] is False and out["probability"] == pytest.approx(0.5)
        assert [r["text"] for r in out["raw"]] == ["A", "A"]
        assert out["raw"][0]["logprobs"][0]["top"][1][0] == "B"


def test_unparsable_answers_are_kept_raw_and_never_votes(
    admin: Actor, researcher: Actor, server: MisbehavingServer
) -> None:
    # The server answers "A" to everything: as a critique it is not JSON.
    pid = make_project(researcher, "critique", 2)
    run = run_inline(researcher, pid, openai_judge(admin, server, "ok"))
    assert (run["status"], run["done"], run["unparsed"]) == ("succeeded", 2, 2)
    assert ai_votes(pid) == []
    assert {(o["status"], o["raw"][0]["text"]) for o in outputs(pid)} == {("unparsed", "A")}
