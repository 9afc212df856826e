"""Prompt sets: made from a JSON list or an uploaded file, immutable, refused with the line
that is wrong, and named by generation requests (all of a set or a seeded sample of it)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import Actor, sql, sql_value

ProjectFactory = Callable[..., dict[str, Any]]


def _url(pid: object) -> str:
    return f"/api/v1/projects/{pid}/prompt-sets"


def _upload(actor: Actor, pid: object, name: str, filename: str, content: bytes, **form: str):
    return actor.client.post(
        _url(pid), data={"name": name, **form}, files={"file": (filename, content)}
    )


def _sets() -> int:
    return int(sql_value("SELECT count(*) FROM prompt_sets"))


def test_a_set_from_a_json_list_is_stored_whole_and_read_back_in_order(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    pid = project_factory("pairwise", items=0)["id"]
    prompts = ["Write a haiku.", "Explain DPO in one line.", "Write a haiku."]
    r = researcher.client.post(_url(pid), json={"name": " haikus ", "prompts": prompts})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["name"] == "haikus" and made["count"] == 3 and made["source"] == "list"
    assert (
        made["sha256"]
        == hashlib.sha256(json.dumps(prompts, separators=(",", ":")).encode()).hexdigest()
    )
    assert made["prompts"] is None  # the text only with GET of one set

    got = researcher.client.get(f"{_url(pid)}/{made['id']}").json()
    assert got["prompts"] == prompts
    listed = researcher.client.get(_url(pid)).json()
    assert [s["id"] for s in listed["items"]] == [made["id"]] and listed["items"][0][
        "prompts"
    ] is None

    # Names are unique within a project.
    again = researcher.client.post(_url(pid), json={"name": "haikus", "prompts": ["x"]})
    assert again.status_code == 409 and again.json()["error"] == "already_exists"
    assert _sets() == 1


@pytest.mark.parametrize(
    ("filename", "content", "form", "source"),
    [
        ("p.jsonl", b'{"prompt": "one", "id": 1}\n\n{"prompt": "two"}\n', {}, "jsonl"),
        ("p.csv", b'id,prompt\n1,one\n2,"two"\n', {}, "csv"),
        ("p.txt", b"one\r\n\r\ntwo\r\n", {}, "text"),
        ("p.json", b'["one", {"prompt": "two"}]', {}, "json"),
        # No telling extension: the format field, or the first character.
        ("prompts", b"prompt\none\ntwo\n", {"format": "csv"}, "csv"),
        ("prompts", b'{"prompt": "one"}\n{"prompt": "two"}', {}, "jsonl"),
        ("prompts", "\ufeffone\ntwo".encode(), {}, "text"),
    ],
)
def test_files_of_every_format_give_the_same_prompts(
    filename: str,
    content: bytes,
    form: dict[str, str],
    source: str,
    researcher: Actor,
    project_factory: ProjectFactory,
) -> None:
    pid = project_factory("pairwise", items=0)["id"]
    r = _upload(researcher, pid, "set", filename, content, **form)
    assert r.status_code == 201, r.text
    assert r.json()["source"] == source and r.json()["count"] == 2
    got = researcher.client.get(f"{_url(pid)}/{r.json()['id']}").json()
    assert got["prompts"] == ["one", "two"]


def test_an_upload_without_a_name_takes_the_file_name(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    pid = project_factory("pairwise", items=0)["id"]
    r = researcher.client.post(_url(pid), files={"file": ("questions.txt", b"a\nb\n")})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "questions.txt"


@pytest.mark.parametrize(
    ("filename", "content", "needle"),
    [
        (
            "p.jsonl",
            b'{"prompt": "ok"}\n{"prompt": "ok"}\n{"text": "no"}\n',
            "line 3: no `prompt` field",
        ),
        ("p.jsonl", b'{"prompt": "ok"}\n{"prompt": \n', "line 2: not valid JSON"),
        ("p.jsonl", b'{"prompt": "ok"}\n{"prompt": 5}\n', "line 2: the prompt must be text"),
        ("p.jsonl", b'{"prompt": "ok"}\n{"prompt": NaN}\n', "line 2: not valid JSON"),
        ("p.jsonl", b'{"prompt": "a", "prompt": "b"}\n', "line 1: the key 'prompt' appears twice"),
        ("p.jsonl", b'{"prompt": "ok"}\n["ok"]\n', "line 2: expected a JSON object"),
        (
            "p.csv",
            b"id,text\n1,a\n",
            "line 1: the CSV header has no `prompt` column (columns: id, text)",
        ),
        ("p.csv", b"id,prompt\n1,ok\n2, \n", "line 3: the prompt is empty"),
        ("p.csv", b'prompt\nok\n"never closed\n', "not valid CSV"),
        (
            "p.txt",
            b"ok\nfine\n" + b"x" * 100_001 + b"\n",
            "line 3: the prompt is longer than 100000",
        ),
        ("p.txt", b"ok\nfine\nbad \xff byte\n", "line 3: not valid UTF-8"),
        ("p.txt", b"ok\nnul \x00 here\n", "line 2: the prompt contains a NUL"),
        ("p.txt", b"\n \n", "The file holds no prompts"),
        ("p.json", b'["ok", 3]', "item 2: expected an object with a `prompt` field"),
        ("p.json", b'{"prompt": "x"}', "A JSON prompt file is an array"),
        ("p.csv", b"", "The CSV file is empty"),
    ],
)
def test_a_bad_file_is_a_422_naming_the_line_and_stores_nothing(
    filename: str, content: bytes, needle: str, researcher: Actor, project_factory: ProjectFactory
) -> None:
    pid = project_factory("pairwise", items=0)["id"]
    r = _upload(researcher, pid, "bad", filename, content)
    assert r.status_code == 422 and needle in r.json()["detail"], r.text
    assert _sets() == 0


def test_size_limits_and_bad_requests_are_refused(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    pid = project_factory("pairwise", items=0)["id"]
    many = b"p\n" * 100_001
    r = _upload(researcher, pid, "many", "p.txt", many)
    assert r.status_code == 422 and "at most 100000 prompts" in r.json()["detail"]
    r = _upload(researcher, pid, "f", "p.txt", b"ok\n", format="yaml")
    assert r.status_code == 422 and "format" in r.json()["detail"]
    r = researcher.client.post(_url(pid), data={"name": "no file"})
    assert r.status_code == 422 and "file" in r.json()["detail"]
    r = researcher.client.post(_url(pid), json={"name": "x", "prompts": []})
    assert r.status_code == 422 and "prompts" in r.text
    r = researcher.client.post(_url(pid), json={"name": "x", "prompts": ["  "]})
    assert r.status_code == 422 and "prompts" in r.text
    r = researcher.client.post(_url(pid), json={"name": "x", "prompts": ["a"], "extra": 1})
    assert r.status_code == 422 and "extra" in r.text
    r = researcher.client.post(
        _url(pid), content=b"one\ntwo", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 422 and "multipart" in r.json()["detail"]
    assert _sets() == 0


def test_others_cannot_see_a_projects_sets(
    researcher: Actor, make_user: Callable[..., Actor], project_factory: ProjectFactory
) -> None:
    pid = project_factory("pairwise", items=0)["id"]
    made = researcher.client.post(_url(pid), json={"name": "s", "prompts": ["a"]}).json()
    outsider = make_user("researcher")
    assert outsider.client.get(f"{_url(pid)}/{made['id']}").status_code == 404
    other = outsider.client.post(
        "/api/v1/projects", json={"name": "mine", "kind": "pairwise"}
    ).json()
    # The set's id under another project is not found either.
    assert outsider.client.get(f"{_url(other['id'])}/{made['id']}").status_code == 404


def _generate(actor: Actor, pid: object, model_id: int, **body: Any):
    return actor.client.post(
        f"/api/v1/projects/{pid}/generate", json={"model_id": model_id, "n": 1, **body}
    )


def _base_model(admin: Actor) -> int:
    from tests.world import model_folder

    r = admin.client.post("/api/v1/models", json={"name": "m", "path": model_folder()})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_generation_takes_a_set_or_a_seeded_sample_of_it_and_keeps_it_from_deletion(
    researcher: Actor, admin: Actor, project_factory: ProjectFactory
) -> None:
    pid = project_factory("pairwise", items=0)["id"]
    model = _base_model(admin)
    prompts = [f"prompt {i}" for i in range(20)]
    made = researcher.client.post(_url(pid), json={"name": "s", "prompts": prompts}).json()

    whole = _generate(researcher, pid, model, prompt_set_id=made["id"])
    assert whole.status_code == 202, whole.text and whole.json()["prompts"] == 20
    a = _generate(researcher, pid, model, prompt_set_id=made["id"], prompt_sample=5, prompt_seed=7)
    b = _generate(researcher, pid, model, prompt_set_id=made["id"], prompt_sample=5, prompt_seed=7)
    c = _generate(researcher, pid, model, prompt_set_id=made["id"], prompt_sample=5, prompt_seed=8)
    assert a.json()["prompts"] == 5
    params = {
        job: sql_value("SELECT params FROM jobs WHERE id = %s", job)
        for job in (
            whole.json()["job_id"],
            a.json()["job_id"],
            b.json()["job_id"],
            c.json()["job_id"],
        )
    }
    first, second, third, fourth = params.values()
    assert "prompts" not in first and first["prompt_set_id"] == made["id"]
    assert first["prompt_indices"] is None and first["prompt_set_sha256"] == made["sha256"]
    assert second["prompt_indices"] == third["prompt_indices"] != fourth["prompt_indices"]
    assert second["prompt_indices"] == sorted(second["prompt_indices"])
    assert len(set(second["prompt_indices"])) == 5

    r = researcher.client.delete(f"{_url(pid)}/{made['id']}")
    assert r.status_code == 409 and r.json()["error"] == "prompt_set_in_use", r.text
    assert _sets() == 1

    unused = researcher.client.post(_url(pid), json={"name": "t", "prompts": ["x"]}).json()
    assert researcher.client.delete(f"{_url(pid)}/{unused['id']}").status_code == 204
    assert researcher.client.get(f"{_url(pid)}/{unused['id']}").status_code == 404


def test_generation_requests_name_their_prompts_exactly_once(
    researcher: Actor, admin: Actor, project_factory: ProjectFactory
) -> None:
    pid = project_factory("pairwise", items=0)["id"]
    other = project_factory("pairwise", items=0)["id"]
    model = _base_model(admin)
    made = researcher.client.post(_url(pid), json={"name": "s", "prompts": ["a", "b"]}).json()
    elsewhere = researcher.client.post(_url(other), json={"name": "s", "prompts": ["a"]}).json()
    jobs = int(sql_value("SELECT count(*) FROM jobs"))
    for body, needle in [
        ({}, "exactly one of `prompts` and `prompt_set_id`"),
        ({"prompts": ["a"], "prompt_set_id": made["id"]}, "exactly one"),
        ({"prompts": ["a"], "prompt_sample": 1}, "give `prompt_set_id` too"),
        ({"prompt_set_id": made["id"], "prompt_sample": 3}, "3 is more than the set's 2"),
        ({"prompt_set_id": elsewhere["id"]}, f"prompt set {elsewhere['id']} is not in project"),
        ({"prompt_set_id": 10**12}, "is not in project"),
    ]:
        r = _generate(researcher, pid, model, **body)
        assert r.status_code == 422 and needle in r.text, (body, r.text)
    assert int(sql_value("SELECT count(*) FROM jobs")) == jobs
    assert sql("SELECT count(*) FROM prompt_sets")[0][0] == 2
