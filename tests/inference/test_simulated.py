"""The simulated judge: its measured accuracy and biases over many items match what it was configured with."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from app.inference import registry
from app.inference.base import (
    BackendError,
    ChatMessage,
    GenerationRequest,
    SamplingParams,
)
from app.inference.context import JudgeContext, ShownResponse
from app.inference.registry import InvalidBackendParams

LOGPROBS = SamplingParams(max_tokens=8, top_logprobs=2)


def ask(context: JudgeContext, params: SamplingParams = LOGPROBS) -> GenerationRequest:
    return GenerationRequest(
        messages=(ChatMessage("user", "Which response is better? Answer A or B."),),
        params=params,
        context=dict(context),
    )


def judge(**params: Any) -> Any:
    params.setdefault("truth", {"metadata_key": "truth"})
    return registry.create("simulated", "simulated", params)


def pairwise_world(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """Items whose winner is independent of the responses' lengths (and of the shown order)."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        texts = ["x" * rng.randint(5, 400) for _ in range(2)]
        while texts[0] == texts[1]:
            texts[1] += "y"
        items.append(
            {
                "external_id": f"item-{i}",
                "responses": [{"id": f"r{j}", "index": j, "text": t} for j, t in enumerate(texts)],
                "winner": f"r{rng.randrange(2)}",
                "category": rng.choice(["safety", "easy", "other"]),
            }
        )
    return items


def both_orders(item: dict[str, Any]) -> list[JudgeContext]:
    shown = item["responses"]
    contexts = []
    for order in (shown, shown[::-1]):
        contexts.append(
            JudgeContext(
                kind="pairwise",
                responses=[ShownResponse(**r) for r in order],
                external_id=item["external_id"],
                metadata={"truth": {"winner": item["winner"]}, "category": item["category"]},
            )
        )
    return contexts


def decisions(b: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    contexts = [c for item in items for c in both_orders(item)]
    answers = b.generate([ask(c) for c in contexts])
    out = []
    for ctx, [completion] in zip(contexts, answers, strict=True):
        shown = ctx["responses"]
        picked = shown[{"A": 0, "B": 1}[completion.text]]
        other = shown[1 - {"A": 0, "B": 1}[completion.text]]
        out.append(
            {
                "item": ctx["external_id"],
                "category": ctx["metadata"]["category"],
                "correct": picked["id"] == ctx["metadata"]["truth"]["winner"],
                "first": picked is shown[0],
                "longer": len(picked["text"]) > len(other["text"]),
                "p": math.exp(completion.logprobs[0].logprob),
                "completion": completion,
            }
        )
    return out


def share(rows: list[dict[str, Any]], key: str) -> float:
    return sum(1 for r in rows if r[key]) / len(rows)


def test_measured_accuracy_position_and_length_bias_match_the_configuration() -> None:
    b = judge(seed=11, accuracy=0.75, position_bias=0.8, length_bias=0.6)
    rows = decisions(b, pairwise_world(4000))
    wrong = [r for r in rows if not r["correct"]]
    assert share(rows, "correct") == pytest.approx(0.75, abs=0.025)
    assert share(wrong, "first") == pytest.approx(0.8, abs=0.04)
    assert share(wrong, "longer") == pytest.approx(0.6, abs=0.04)


def test_an_unbiased_judge_errs_evenly_over_positions_and_lengths() -> None:
    rows = decisions(judge(seed=3, accuracy=0.6), pairwise_world(3000, seed=2))
    wrong = [r for r in rows if not r["correct"]]
    assert share(rows, "correct") == pytest.approx(0.6, abs=0.025)
    assert share(wrong, "first") == pytest.approx(0.5, abs=0.04)
    assert share(wrong, "longer") == pytest.approx(0.5, abs=0.04)


def test_a_position_biased_judge_contradicts_itself_when_swapped() -> None:
    rows = decisions(judge(seed=5, accuracy=0.7, position_bias=1.0), pairwise_world(2000, seed=3))
    by_item: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_item.setdefault(r["item"], []).append(r)
    inconsistent = [pair for pair in by_item.values() if pair[0]["correct"] != pair[1]["correct"]]
    # Sure items (40%: accuracy 0.7 = 0.4 + 0.6 / 2) agree across orders; unsure ones always
    # pick the first shown, so exactly one of the two orders is right.
    assert len(inconsistent) / len(by_item) == pytest.approx(0.6, abs=0.04)
    assert all(pair[0]["first"] and pair[1]["first"] for pair in inconsistent)


def test_accuracy_follows_a_metadata_value() -> None:
    table = {"by": "category", "accuracy": {"safety": 0.55, "easy": 0.95}, "default": 0.75}
    rows = decisions(judge(seed=2, accuracy=table), pairwise_world(4500, seed=4))
    for category, expected in (("safety", 0.55), ("easy", 0.95), ("other", 0.75)):
        subset = [r for r in rows if r["category"] == category]
        assert share(subset, "correct") == pytest.approx(expected, abs=0.04), category


def test_confidence_is_carried_by_the_answer_token_and_is_calibrated() -> None:
    rows = decisions(
        judge(seed=8, accuracy=0.7, confidence_sure=0.95, confidence_unsure=0.55),
        pairwise_world(2000, seed=5),
    )
    confident = [r for r in rows if r["p"] >= 0.9]
    unsure = [r for r in rows if r["p"] < 0.6]
    assert len(confident) + len(unsure) == len(rows)
    assert share(confident, "correct") == 1.0
    assert share(unsure, "correct") == pytest.approx(0.5, abs=0.05)
    first = rows[0]["completion"].logprobs[0]
    (chosen, lp_chosen), (other, lp_other) = first.top
    assert chosen == rows[0]["completion"].text and {chosen, other} == {"A", "B"}
    assert math.exp(lp_chosen) + math.exp(lp_other) == pytest.approx(1.0)


def test_answers_are_repeatable_and_say_they_are_simulated() -> None:
    items = pairwise_world(200, seed=6)
    first = [r["completion"] for r in decisions(judge(seed=4, accuracy=0.6), items)]
    again = [r["completion"] for r in decisions(judge(seed=4, accuracy=0.6), items)]
    other_seed = [r["completion"] for r in decisions(judge(seed=5, accuracy=0.6), items)]
    assert [c.text for c in first] == [c.text for c in again]
    assert [c.text for c in first] != [c.text for c in other_seed]
    assert {c.model for c in first} == {"simulated:4"}
    assert all(c.tokens_in > 0 and c.tokens_out == 1 for c in first)


def test_n_samples_and_no_logprobs_unless_asked() -> None:
    [ctx, _] = both_orders(pairwise_world(1)[0])
    [completions] = judge().generate([ask(ctx, SamplingParams(n=3))])
    assert len(completions) == 3 and all(c.logprobs is None for c in completions)
    [[c]] = judge().generate([ask(ctx, SamplingParams(top_logprobs=1))])
    assert c.logprobs is not None and len(c.logprobs[0].top) == 1


def test_custom_labels_are_answered() -> None:
    [ctx, _] = both_orders(pairwise_world(1)[0])
    ctx["labels"] = ["Response 1", "Response 2"]
    [[c]] = judge(accuracy=1.0).generate([ask(ctx)])
    assert c.text in ("Response 1", "Response 2")


def test_ranking_answers_a_permutation_with_the_configured_pairwise_accuracy() -> None:
    rng = random.Random(9)
    contexts = []
    for i in range(1500):
        scores = {f"r{j}": rng.random() for j in range(4)}
        shown = [{"id": f"r{j}", "index": j, "text": "y" * rng.randint(5, 300)} for j in range(4)]
        rng.shuffle(shown)
        contexts.append(
            JudgeContext(
                kind="ranking",
                responses=[ShownResponse(**r) for r in shown],
                external_id=f"rank-{i}",
                metadata={"truth": {"scores": scores}},
            )
        )
    answers = judge(seed=1, accuracy=0.8).generate([ask(c) for c in contexts])
    concordant = total = 0
    for ctx, [c] in zip(contexts, answers, strict=True):
        labels = c.text.split(" > ")
        assert sorted(labels) == ["A", "B", "C", "D"]
        order = [ctx["responses"]["ABCD".index(label)]["id"] for label in labels]
        scores = ctx["metadata"]["truth"]["scores"]
        for x in range(4):
            for y in range(x + 1, 4):
                concordant += scores[order[x]] > scores[order[y]]
                total += 1
        assert c.logprobs is not None and "".join(t.token for t in c.logprobs) == c.text
    assert concordant / total == pytest.approx(0.8, abs=0.03)


def test_spans_quote_the_response_with_project_labels(tmp_path: Path) -> None:
    rng = random.Random(3)
    truth_file = tmp_path / "truth.jsonl"
    contexts = []
    with truth_file.open("w") as f:
        for i in range(800):
            text = " ".join(f"word{rng.randrange(1000)}" for _ in range(30))
            start = text.index(" ", 20) + 1
            end = text.index(" ", start + 10)
            f.write(
                json.dumps(
                    {
                        "external_id": f"span-{i}",
                        "spans": [{"start": start, "end": end, "label": "factual"}],
                    }
                )
                + "\n"
            )
            contexts.append(
                JudgeContext(
                    kind="span",
                    responses=[ShownResponse(id="r0", index=0, text=text)],
                    external_id=f"span-{i}",
                    span_labels=["factual", "style"],
                )
            )
    b = judge(seed=2, accuracy=0.7, truth={"file": str(truth_file)})
    found = 0
    for ctx, [c] in zip(contexts, b.generate([ask(c) for c in contexts]), strict=True):
        answer = json.loads(c.text)
        text = ctx["responses"][0]["text"]
        for span in answer["spans"]:
            assert span["quote"] in text and span["label"] in ("factual", "style")
        true_quote = text[text.index(" ", 20) + 1 : text.index(" ", text.index(" ", 20) + 11)]
        found += any(s["quote"] == true_quote and s["label"] == "factual" for s in answer["spans"])
    assert found / len(contexts) == pytest.approx(0.7, abs=0.05)


def test_critique_rates_on_the_scale_with_the_configured_accuracy() -> None:
    rng = random.Random(4)
    contexts = [
        JudgeContext(
            kind="critique",
            responses=[ShownResponse(id="r0", index=0, text="Paris is the capital.")],
            external_id=f"crit-{i}",
            metadata={"truth": {"rating": rng.randint(1, 7)}},
        )
        for i in range(1500)
    ]
    answers = judge(seed=6, accuracy=0.6).generate([ask(c) for c in contexts])
    exact = 0
    for ctx, [c] in zip(contexts, answers, strict=True):
        answer = json.loads(c.text)
        assert answer["critique"] and 1 <= answer["rating"] <= 7
        exact += answer["rating"] == ctx["metadata"]["truth"]["rating"]
        assert c.logprobs is not None and "".join(t.token for t in c.logprobs) == c.text
    assert exact / len(contexts) == pytest.approx(0.6, abs=0.04)


def test_truth_in_the_gold_answer_form_is_read_by_imported_position() -> None:
    [ctx, swapped] = both_orders(pairwise_world(1)[0])
    for c in (ctx, swapped):
        c["metadata"] = {"truth": {"choice": "b"}}
    b = judge(accuracy=1.0)
    [[first]], [[second]] = b.generate([ask(ctx)]), b.generate([ask(swapped)])
    assert (first.text, second.text) == ("B", "A")  # imported response 1, wherever it is shown


def test_missing_truth_or_context_is_an_error(tmp_path: Path) -> None:
    [ctx, _] = both_orders(pairwise_world(1)[0])
    ctx["metadata"] = {}
    with pytest.raises(BackendError, match="no truth"):
        judge().generate([ask(ctx)])
    with pytest.raises(BackendError, match=r"context\.kind"):
        judge().generate([GenerationRequest(prompt="hello")])
    with pytest.raises(BackendError, match="Cannot read the truth file"):
        judge(truth={"file": str(tmp_path / "absent.jsonl")})
    (tmp_path / "bad.jsonl").write_text('{"external_id": "a"}\nnot json\n')
    with pytest.raises(BackendError, match="line 2"):
        judge(truth={"file": str(tmp_path / "bad.jsonl")})


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({}, "truth: Field required"),
        ({"truth": {"file": "a", "metadata_key": "b"}}, "exactly one"),
        ({"truth": {"metadata_key": "t"}, "position_bias": 1.0, "length_bias": 0.9}, "no room"),
        ({"truth": {"metadata_key": "t"}, "accuracy": 1.5}, "between 0 and 1"),
        ({"truth": {"metadata_key": "t"}, "accuracy": {"by": "c", "accuracy": {"x": 2}}}, "x"),
        ({"truth": {"metadata_key": "t"}, "temperature": 0.3}, "temperature: unknown parameter"),
    ],
)
def test_bad_configurations_are_refused_before_running(
    params: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidBackendParams) as caught:
        registry.validate_params("simulated", params)
    assert caught.value.status_code == 422 and problem in caught.value.message
