"""`tandem simulate world` then `tandem simulate annotators`, end to end; bad options in a line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.simulate.accounts import annotator_email
from tests.conftest import Actor
from tests.simulate.helpers import sql

runner = CliRunner()


def _world(out: Path, owner: Actor, *extra: str) -> list[str]:
    return ["simulate", "world", "--out", str(out), "--owner", owner.email, *extra]


def test_a_world_then_annotators_from_the_command_line(
    live_server: str, researcher: Actor, tmp_path: Path
) -> None:
    folder = tmp_path / "world"
    r = runner.invoke(
        cli,
        _world(
            folder,
            researcher,
            "--size",
            "40",
            "--seed",
            "5",
            "--overlap",
            "2",
            "--mix",
            "complexity=easy:1,hard:1",
        ),
    )
    assert r.exit_code == 0, r.output
    manifest = json.loads((folder / "world.json").read_text())
    pid = manifest["project"]["id"]
    assert r.output.startswith(f"world {manifest['world_id']}: 40 pairwise items -> project {pid}")
    assert "imported 40, already there 0" in r.output
    assert set(manifest["stats"]["categories"]["complexity"]) == {"easy", "hard"}

    again = runner.invoke(
        cli,
        _world(
            folder,
            researcher,
            "--size",
            "40",
            "--seed",
            "5",
            "--overlap",
            "2",
            "--mix",
            "complexity=easy:1,hard:1",
        ),
    )
    assert again.exit_code == 0 and "imported 0, already there 40" in again.output

    stats_file = tmp_path / "stats.json"
    r = runner.invoke(
        cli,
        [
            "simulate",
            "annotators",
            "--world",
            str(folder),
            "--url",
            live_server,
            "-n",
            "3",
            "--time-scale",
            "0",
            "--seed",
            "2",
            "--json",
            str(stats_file),
        ],
    )
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith(f"project {pid}: 3 simulated annotators")
    assert lines[1].strip() == "submitted 80, skipped 0, no truth 0, over quota 0"
    assert lines[2].strip().startswith("accuracy vs truth 0.")
    assert "agreement" in lines[3] and "(target 0.66)" in lines[3]
    assert "first shown chosen" in lines[4]
    assert annotator_email("sim", 0) in r.output and "no more tasks" in r.output
    stats = json.loads(stats_file.read_text())
    assert stats["submitted"] == 80 and stats["target"] == {"measure": "agreement", "value": 0.66}
    assert sql("SELECT count(*) FROM annotations WHERE project_id = %s", pid) == [(80,)]
    # The annotators are members; their tokens were revoked at the end of the run.
    members = sql("SELECT count(*) FROM project_members WHERE project_id = %s", pid)
    assert members == [(4,)]  # the owner and three annotators
    assert sql(
        "SELECT count(*) FROM api_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE u.email LIKE '%%@simulated.tandem' AND t.revoked_at IS NULL"
    ) == [(0,)]

    # A second run reuses the users and finds nothing left.
    r = runner.invoke(
        cli,
        [
            "simulate",
            "annotators",
            "--world",
            str(folder),
            "--url",
            live_server,
            "-n",
            "3",
            "--time-scale",
            "0",
        ],
    )
    assert r.exit_code == 0 and "submitted 0," in r.output
    assert sql("SELECT count(*) FROM users WHERE email LIKE '%%@simulated.tandem'") == [(3,)]


def test_a_ranking_world_from_given_rows_and_reward_annotators(
    live_server: str, researcher: Actor, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps(
                {
                    "prompt": f"Question {n}?",
                    "responses": [
                        f"Thank you, happy to help with question {n}.",
                        f"Whatever {n}.",
                        f"Answer {n}.",
                    ],
                }
            )
            + "\n"
            for n in range(12)
        )
    )
    folder = tmp_path / "given"
    r = runner.invoke(
        cli,
        _world(
            folder, researcher, "--from", str(rows), "--reward", "polite_concise", "--overlap", "1"
        ),
    )
    assert r.exit_code == 0, r.output
    manifest = json.loads((folder / "world.json").read_text())
    assert manifest["kind"] == "ranking" and manifest["reward"] == "polite_concise@1"
    pid = manifest["project"]["id"]
    r = runner.invoke(
        cli,
        [
            "simulate",
            "annotators",
            "--project",
            str(pid),
            "--reward",
            "polite_concise",
            "--url",
            live_server,
            "-n",
            "2",
            "--accuracy",
            "0.9",
            "--time-scale",
            "0",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "submitted 12," in r.output and "(target)" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["world", "--kind", "span"], "error: --kind must be pairwise or ranking, not 'span'"),
        (["world", "--size", "0"], "error: --size: Input should be greater than or equal to 1"),
        (
            ["world", "--kind", "pairwise", "--responses", "3"],
            "error: a pairwise world has 2 responses per item",
        ),
        (["world", "--mix", "safety=none"], "error: --mix 'safety=none': write it as"),
        (
            ["world", "--mix", "complexity=extreme:1"],
            "error: --mix: category 'complexity' has no level 'extreme' (its levels: easy,",
        ),
        (["world", "--overlap", "0"], "error: --overlap must be between 1 and 100"),
        (["world", "--reward", "on_topic"], "error: --reward applies to --from rows"),
        (["world", "--from", "rows.jsonl"], "error: --from needs --reward"),
        (
            ["world", "--from", "rows.jsonl", "--reward", "on_topic", "--seed", "3"],
            "error: --seed applies to generated worlds, not to --from rows",
        ),
        (["annotators"], "error: give one of --world, --truth and --reward"),
        (["annotators", "--reward", "on_topic"], "error: --truth and --reward need --project"),
        (
            [
                "annotators",
                "--reward",
                "x",
                "--project",
                "1",
                "--accuracy",
                "0.7",
                "--agreement",
                "0.7",
            ],
            "error: give --accuracy or --agreement, not both",
        ),
        (
            ["annotators", "--reward", "x", "--project", "1", "--position-bias", "1.5"],
            "error: --position-bias: Input should be less than or equal to 1",
        ),
        (
            [
                "annotators",
                "--reward",
                "x",
                "--project",
                "1",
                "--position-bias",
                "0.9",
                "--length-bias",
                "0.9",
            ],
            "error: position_bias and length_bias together leave no",
        ),
        (
            ["annotators", "--reward", "x", "--project", "1", "--effect", "safety:0.5"],
            "error: --effect 'safety:0.5': write it as",
        ),
        (
            ["annotators", "--reward", "x", "--project", "1", "-n", "0"],
            "error: --annotators must be between 1 and 500",
        ),
    ],
)
def test_bad_options_fail_in_one_line_with_exit_2(args: list[str], message: str) -> None:
    r = runner.invoke(cli, ["simulate", *args])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_unusable_inputs_fail_in_one_line(
    live_server: str, researcher: Actor, tmp_path: Path
) -> None:
    cases = [
        (["annotators", "--world", str(tmp_path)], "holds no world.json"),
        (["annotators", "--reward", "kind", "--project", "1"], "Unknown reward 'kind'"),
        (
            ["annotators", "--reward", "on_topic", "--project", "1", "--url", "http://127.0.0.1:9"],
            "cannot reach the Tandem server at http://127.0.0.1:9",
        ),
        (
            ["annotators", "--reward", "on_topic", "--project", "999", "--url", live_server],
            "Project 999 does not exist.",
        ),
        (
            ["annotators", "--truth", str(tmp_path / "none.jsonl"), "--project", "1"],
            "Cannot read the truth file",
        ),
        (
            ["world", "--owner", "nobody@example.org", "--out", str(tmp_path / "w")],
            "No user has the email nobody@example.org.",
        ),
    ]
    for args, message in cases:
        r = runner.invoke(cli, ["simulate", *args])
        assert r.exit_code == 1, (args, r.output)
        assert message in r.output and len(r.output.strip().splitlines()) == 1, r.output
    r = researcher.client.post(
        "/api/v1/projects", json={"name": "s", "kind": "span", "span_labels": ["x"]}
    )
    span = r.json()["id"]
    r = runner.invoke(
        cli,
        [
            "simulate",
            "annotators",
            "--reward",
            "on_topic",
            "--project",
            str(span),
            "--url",
            live_server,
        ],
    )
    assert r.exit_code == 1 and "simulated annotators label pairwise and ranking" in r.output
