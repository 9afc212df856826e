"""Judges and prompt templates through the admin API: checks up front, versions, roles."""

from __future__ import annotations

from typing import Any

from tests.helpers import Actor, sql

SIM = {"truth": {"metadata_key": "truth"}}


def judge_body(**overrides: Any) -> dict[str, Any]:
    return {"name": "j", "backend": "simulated", "model": "m", "params": SIM, **overrides}


def test_an_admin_creates_lists_and_edits_judges(admin: Actor, researcher: Actor) -> None:
    params = {**SIM, "sampling": {"temperature": 0.2, "max_tokens": 4}, "chunk_size": 8}
    r = admin.client.post(
        "/api/v1/judges", json=judge_body(params=params, costs={"per_call": 0.01})
    )
    assert r.status_code == 201, r.text
    judge = r.json()
    assert judge["params"] == params and judge["enabled"] is True
    assert judge["costs"] == {"per_call": 0.01, "per_1k_input": 0.0, "per_1k_output": 0.0}
    # Researchers read judges (to run them) but may not change them.
    assert researcher.client.get("/api/v1/judges").json()["items"] == [judge]
    assert researcher.client.get(f"/api/v1/judges/{judge['id']}").json() == judge
    r = researcher.client.patch(f"/api/v1/judges/{judge['id']}", json={"enabled": False})
    assert r.status_code == 403
    r = admin.client.patch(f"/api/v1/judges/{judge['id']}", json={"enabled": False, "name": "k"})
    assert r.status_code == 200 and (r.json()["enabled"], r.json()["name"]) == (False, "k")


def test_bad_judges_are_refused_with_the_reason(admin: Actor, researcher: Actor) -> None:
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        (judge_body(backend="nope"), 422, "unknown_backend", "nope"),
        (judge_body(params={**SIM, "temprature": 1}), 422, "invalid_backend_params", "temprature"),
        (judge_body(params={}), 422, "invalid_backend_params", "truth"),
        (
            judge_body(
                backend="openai", params={"base_url": "http://x/v1", "api_key": "sk-secret"}
            ),
            422,
            "invalid_backend_params",
            "api_key",
        ),
        (judge_body(params={**SIM, "sampling": {"top_p": 0}}), 422, "invalid_sampling_params", ""),
        (judge_body(params={**SIM, "sampling": {"n": 2}}), 422, "invalid", "n must be 1"),
        (judge_body(params={**SIM, "chunk_size": 0}), 422, "invalid", "chunk_size"),
        (judge_body(costs={"per_call": -1}), 422, "validation_error", ""),
    ]
    for body, status, code, words in cases:
        r = admin.client.post("/api/v1/judges", json=body)
        assert (r.status_code, r.json()["error"]) == (status, code), (body, r.text)
        assert words in r.json()["detail"], r.text
        assert "sk-secret" not in r.text
    assert admin.client.post("/api/v1/judges", json=judge_body()).status_code == 201
    r = admin.client.post("/api/v1/judges", json=judge_body())
    assert (r.status_code, r.json()["error"]) == (409, "already_exists")
    assert researcher.client.post("/api/v1/judges", json=judge_body(name="x")).status_code == 403
    assert sql("SELECT count(*) FROM judges")[0][0] == 1


def test_defaults_ship_for_every_kind_and_new_versions_are_checked(admin: Actor) -> None:
    items = admin.client.get("/api/v1/judge-templates").json()["items"]
    assert sorted((t["kind"], t["version"]) for t in items) == [
        ("critique", 1),
        ("pairwise", 1),
        ("ranking", 1),
        ("span", 1),
    ]
    assert all("{guidelines}" in t["user"] for t in items)
    bad = [
        ({"kind": "pairwise", "user": "{prompt} {guidelines} {response_a}"}, "{response_b}"),
        ({"kind": "span", "user": "{prompt} {guidelines} {response} {span_labels} {x}"}, "{x}"),
        ({"kind": "critique", "user": "{response} {prompt}"}, "{guidelines}"),
    ]
    for body, words in bad:
        r = admin.client.post("/api/v1/judge-templates", json=body)
        assert (r.status_code, r.json()["error"]) == (422, "invalid_template"), r.text
        assert words in r.json()["detail"]
    body = {"kind": "critique", "user": "{guidelines}\n{prompt}\n{response}\nRate 1-{rating_scale}"}
    r = admin.client.post("/api/v1/judge-templates", json=body)
    assert r.status_code == 201 and r.json()["version"] == 2, r.text
    # An unused version is edited in place.
    r2 = admin.client.patch(
        f"/api/v1/judge-templates/{r.json()['id']}", json={"system": "Be brief."}
    )
    assert (r2.json()["id"], r2.json()["version"], r2.json()["system"]) == (
        r.json()["id"],
        2,
        "Be brief.",
    )
