"""`tandem simulate world` and `tandem simulate annotators`: the commands over app/simulate."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from app.cli_errors import connect_servers, fail, one_line_errors

simulate_cli = typer.Typer(
    help="Simulated worlds (items with a hidden truth) and simulated annotators.",
    no_args_is_help=True,
)

DEFAULT_URL = "http://127.0.0.1:8000"
M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], values: dict[str, Any]) -> M:
    """The model of these option values, or a one-line error naming the option (exit 2)."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["loc"]:
            message = f"--{str(first['loc'][0]).replace('_', '-')}: {message}"
        raise fail(message, 2) from None


def parse_levels(option: str, values: list[str]) -> dict[str, dict[str, float]]:
    """`safety=none:0.7,mild:0.2` (repeatable) -> {"safety": {"none": 0.7, "mild": 0.2}}."""
    out: dict[str, dict[str, float]] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        levels: dict[str, float] = {}
        for part in rest.split(",") if sep else []:
            level, colon, number = part.partition(":")
            try:
                levels[level.strip()] = float(number)
            except ValueError:
                levels = {}
                break
            if not colon or not level.strip():
                levels = {}
                break
        if not key.strip() or not levels:
            raise fail(
                f"{option} {value!r}: write it as key=level:number,level:number"
                " (e.g. safety=none:0.7,mild:0.2,moderate:0.1)",
                2,
            )
        out[key.strip()] = levels
    return out


@simulate_cli.command("world")
@one_line_errors
def world_command(
    kind: str | None = typer.Option(
        None, help="pairwise (default) or ranking; --from rows: inferred from the rows."
    ),
    size: int | None = typer.Option(None, help="Number of items (default 1000)."),
    seed: int | None = typer.Option(None, help="Seed (default 0)."),
    responses: int | None = typer.Option(None, help="Responses per ranking item (default 4)."),
    mix: list[str] = typer.Option(
        [],
        help="Category mix, replacing that category's default: safety=none:0.7,mild:0.2,"
        "moderate:0.1 (repeat per category; other keys go into metadata only).",
    ),
    length_correlation: float | None = typer.Option(
        None,
        help="Within an item, correlation of length with the true reward (-0.95..0.95; "
        "default 0.3).",
    ),
    models: int | None = typer.Option(
        None, help="Size of the model pool, responses name their model (default 6)."
    ),
    gold_fraction: float | None = typer.Option(
        None, help="Share of items made gold, with the truth (default 0)."
    ),
    overlap: int = typer.Option(3, help="Human overlap of a new project."),
    name: str | None = typer.Option(None, help="Project name (default: from the world id)."),
    project: int | None = typer.Option(None, help="Import into this project instead."),
    owner: str | None = typer.Option(None, help="Email of the researcher or admin who owns it."),
    out: Path | None = typer.Option(
        None, help="Folder for world.json, truth.jsonl, items.jsonl (default: under the data dir)."
    ),
    from_file: Path | None = typer.Option(
        None,
        "--from",
        help="Build from given rows {prompt, responses: [text...]} (JSONL) scored by --reward.",
    ),
    reward: str | None = typer.Option(None, help="Gold reward for --from rows (see README)."),
    margin_scale: float = typer.Option(
        0.1, help="--from: a reward gap this size is a fairly clear call."
    ),
) -> None:
    """Generate a world, keep its truth in a file, and import its items into a project."""
    from app.config import get_settings
    from app.db import session_scope
    from app.simulate.rewards import get_reward
    from app.simulate.service import build_world, commit_manifest, find_owner
    from app.simulate.world import DEFAULT_MIX, WorldConfig, generate_world, world_from_rows

    if kind not in (None, "pairwise", "ranking"):
        raise fail(f"--kind must be pairwise or ranking, not {kind!r}", 2)
    if not 1 <= overlap <= 100:
        raise fail("--overlap must be between 1 and 100", 2)
    generation = {
        "size": size,
        "seed": seed,
        "responses": responses,
        "length_correlation": length_correlation,
        "models": models,
        "gold_fraction": gold_fraction,
    }
    started = time.perf_counter()
    if from_file is not None:
        if reward is None:
            raise fail("--from needs --reward: the gold reward that makes the truth", 2)
        given = [k for k, v in generation.items() if v is not None] + (["mix"] if mix else [])
        if given:
            option = "--" + given[0].replace("_", "-")
            raise fail(f"{option} applies to generated worlds, not to --from rows", 2)
        rows, digest = _read_rows(from_file)
        world = world_from_rows(
            rows,
            get_reward(reward),
            kind=kind,  # type: ignore[arg-type]  # checked above
            margin_scale=margin_scale,
            source=digest,
        )
        config = {
            "from": str(from_file),
            "sha256": digest,
            "reward": world.reward,
            "margin_scale": margin_scale,
        }
    else:
        if reward is not None:
            raise fail("--reward applies to --from rows; a generated world has latent rewards", 2)
        default_mix = {k: dict(v) for k, v in DEFAULT_MIX.items()}
        kind = kind or "pairwise"
        generation["responses"] = responses or (4 if kind == "ranking" else 2)
        world_config = validated(
            WorldConfig,
            {
                "kind": kind,
                "mix": {**default_mix, **parse_levels("--mix", mix)},
                **{k: v for k, v in generation.items() if v is not None},
            },
        )
        world = generate_world(world_config)
        config = world_config.model_dump(mode="json")
    generated = time.perf_counter() - started
    folder = out or get_settings().data_dir / "simulate" / world.world_id
    connect_servers(database=True)
    started = time.perf_counter()
    with session_scope() as session:
        built = build_world(
            session,
            find_owner(session, owner),
            world,
            folder,
            config=config,
            name=name,
            overlap=overlap,
            project_id=project,
        )
    imported = time.perf_counter() - started
    manifest = commit_manifest(built)
    p = built.project
    typer.echo(
        f"world {world.world_id}: {len(world.items)} {world.kind} items -> project {p.id}"
        f" ({p.name!r}, overlap {p.overlap})"
    )
    typer.echo(
        f"  imported {built.imported.created}, already there {built.imported.skipped};"
        f" generated in {generated:.2f} s, written and imported in {imported:.2f} s"
    )
    typer.echo(f"  truth {folder / 'truth.jsonl'}")
    typer.echo(f"  manifest {manifest}")
    typer.echo(f"  label it: tandem simulate annotators --world {folder} --url {DEFAULT_URL}")


def _read_rows(path: Path) -> tuple[list[dict[str, object]], str]:
    from app.errors import Invalid

    data = path.read_bytes()
    rows = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise Invalid(f"{path}, line {number}: {exc.msg}.") from None
    return rows, hashlib.sha256(data).hexdigest()


@simulate_cli.command("annotators")
@one_line_errors
def annotators_command(
    world: Path | None = typer.Option(
        None, help="A world folder: its manifest names the project, its truth.jsonl the truth."
    ),
    project: int | None = typer.Option(None, help="Project id (with --truth or --reward)."),
    truth: Path | None = typer.Option(None, help="A truth file (JSONL, see README)."),
    reward: str | None = typer.Option(None, help="Decide by this gold reward instead."),
    margin_scale: float = typer.Option(0.1, help="--reward: a gap this size is a clear call."),
    url: str = typer.Option(DEFAULT_URL, help="The running Tandem server."),
    count: int = typer.Option(5, "-n", "--annotators", help="How many annotators."),
    accuracy: float | None = typer.Option(None, help="Target mean accuracy (0.5, 1]."),
    agreement: float | None = typer.Option(
        None, help="Target agreement between two annotators (default 0.66)."
    ),
    spread: float = typer.Option(0.1, help="Relative spread of skill across annotators."),
    position_bias: float = typer.Option(0.5, help="Chance a guess goes to the first shown."),
    length_bias: float = typer.Option(0.5, help="Chance a guess goes to the longer response."),
    skip_rate: float = typer.Option(0.0, help="Chance of skipping a task."),
    think_seconds: float = typer.Option(20.0, help="Median think time per task."),
    time_scale: float = typer.Option(1.0, help="Multiply think times (0: no waiting)."),
    max_tasks: int | None = typer.Option(None, help="Tasks per annotator, at most."),
    max_seconds: float | None = typer.Option(None, help="Stop the run after this long."),
    effect: list[str] = typer.Option(
        [], help="Easiness multipliers by category: safety=moderate:0.8 (repeat)."
    ),
    seed: int = typer.Option(0),
    prefix: str = typer.Option("sim", help="Annotators are <prefix>-NN@simulated.tandem."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the stats here."),
) -> None:
    """Simulated annotators label a project through the HTTP API of a running server."""
    import httpx

    from app.db import session_scope
    from app.errors import Invalid, NotFound
    from app.projects.models import Project
    from app.simulate import accounts
    from app.simulate.behaviour import AnnotatorConfig
    from app.simulate.oracle import Oracle, RewardOracle, TruthOracle
    from app.simulate.report import format_report
    from app.simulate.rewards import get_reward
    from app.simulate.runner import run_annotators
    from app.simulate.service import TRUTH, read_manifest
    from app.simulate.truth import load_truth

    sources = [s for s in (world, truth, reward) if s is not None]
    if len(sources) != 1:
        raise fail("give one of --world, --truth and --reward", 2)
    if not 1 <= count <= 500:
        raise fail("--annotators must be between 1 and 500", 2)
    if accuracy is not None and agreement is not None:
        raise fail("give --accuracy or --agreement, not both", 2)
    config = validated(
        AnnotatorConfig,
        {
            "accuracy": accuracy,
            "agreement": agreement,
            "spread": spread,
            "position_bias": position_bias,
            "length_bias": length_bias,
            "skip_rate": skip_rate,
            "think_seconds": think_seconds,
            "time_scale": time_scale,
            "max_tasks": max_tasks,
            "max_seconds": max_seconds,
            "effects": parse_levels("--effect", effect),
            "seed": seed,
        },
    )
    oracle: Oracle
    if world is not None:
        manifest = read_manifest(world)
        if manifest is None:
            raise Invalid(f"{world} holds no world.json: build one with `tandem simulate world`.")
        if project is not None and project != manifest["project"]["id"]:
            raise fail(f"--project {project} is not the project of {world}", 2)
        project = int(manifest["project"]["id"])
        oracle = TruthOracle(load_truth(world / manifest.get("files", {}).get("truth", TRUTH)))
    elif project is None:
        raise fail("--truth and --reward need --project", 2)
    elif truth is not None:
        oracle = TruthOracle(load_truth(truth))
    else:
        assert reward is not None
        if margin_scale <= 0:
            raise fail("--margin-scale must be positive", 2)
        oracle = RewardOracle(get_reward(reward), margin_scale)
    try:
        httpx.get(url.rstrip("/") + "/healthz", timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        raise Invalid(f"cannot reach the Tandem server at {url}: {exc}") from None

    connect_servers(database=True)
    ttl = int(max_seconds or 0) + 24 * 3600
    with session_scope() as session:
        target = session.get(Project, project)
        if target is None:
            raise NotFound(f"Project {project} does not exist.")
        if target.kind not in ("pairwise", "ranking"):
            raise Invalid(
                f"Project {project} is a {target.kind} project; simulated annotators label"
                " pairwise and ranking projects."
            )
        enlisted = accounts.enlist(session, project, count, prefix, ttl)
    try:
        stats = run_annotators(
            url,
            project,
            [e.token for e in enlisted],
            oracle,
            config,
            names=[e.email for e in enlisted],
        )
    finally:
        with session_scope() as session:
            accounts.release(session, enlisted)
    for line in format_report(stats):
        typer.echo(line)
    if json_out is not None:
        json_out.write_text(json.dumps(stats.to_json(), indent=2) + "\n")
    if stats.interrupted:
        raise fail("interrupted", 130)
    failed = [a for a in stats.annotators if a.error is not None]
    if failed:
        raise fail(
            f"{len(failed)} of {len(stats.annotators)} annotators stopped on an error:"
            f" {failed[0].name}: {failed[0].error}"
        )
