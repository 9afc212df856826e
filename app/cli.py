"""The `tandem` command: database, users, servers, demo data.

Every command except `up` finds its servers in TANDEM_DATABASE_URL / TANDEM_REDIS_URL, or else
in the runtime file of a `tandem up` running on the same data dir (app/runtime/discovery.py),
and fails with one line on stderr (app/cli_errors.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import IO

import typer

from app.auth.models import Role
from app.cli_errors import connect_servers, one_line_errors
from app.config import get_settings
from app.simulate.cli import simulate_cli

cli = typer.Typer(
    help="Tandem: collect human and AI feedback for aligning language models.", no_args_is_help=True
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
users_cli = typer.Typer(help="User accounts.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(users_cli, name="users")
cli.add_typer(simulate_cli, name="simulate")


@contextlib.contextmanager
def _atomic_output(path: str) -> Iterator[IO[bytes]]:
    """A file that appears at path, complete, only when the block succeeds; else nothing does.

    Written beside path (same file system, so the rename is atomic) and fsynced first.
    """
    folder, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _run_child(args: list[str]) -> int:
    """Run a long-lived child to its end and pass SIGTERM on to it; should we die anyway, it
    gets SIGTERM too (Linux). Ctrl-C reaches it directly (same process group) and it shuts
    down its own way (Celery: warm, letting running tasks finish); we wait rather than kill."""
    from app.runtime.processes import die_with_parent

    child = subprocess.Popen(
        args, env=os.environ.copy(), preexec_fn=die_with_parent(signal.SIGTERM)
    )
    signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue


@db_cli.command("upgrade")
@one_line_errors
def db_upgrade() -> None:
    """Apply all migrations (alembic upgrade head)."""
    from app.migrate import upgrade_head

    connect_servers(database=True)
    upgrade_head()
    typer.echo("database is at the latest revision")


@users_cli.command("create")
@one_line_errors
def users_create(
    email: str = typer.Option(..., help="Login email."),
    password: str = typer.Option(..., prompt=True, hide_input=True, help="At least 8 characters."),
    role: Role = typer.Option(Role.annotator, help="annotator, researcher or admin."),
) -> None:
    """Create a user (the way to make the first admin)."""
    from app.auth.schemas import UserCreate
    from app.auth.service import create_user
    from app.db import session_scope

    body = UserCreate(email=email, password=password, role=role)
    connect_servers(database=True)
    with session_scope() as session:
        user = create_user(session, body.email, body.password, body.role)
        typer.echo(f"created user {user.id} {user.email} ({user.role})")


demo_cli = typer.Typer(help="Demo data, and the closed loop on a CPU.")
cli.add_typer(demo_cli, name="demo")


@demo_cli.callback(invoke_without_command=True)
@one_line_errors
def demo(ctx: typer.Context) -> None:
    """Seed the demo project of each kind and print the demo logins (idempotent)."""
    if ctx.invoked_subcommand is not None:
        return
    from app.db import session_scope
    from app.demo.seed import seed_demo

    connect_servers(database=True)
    with session_scope() as session:
        creds = seed_demo(session, get_settings().data_dir)
    for email, password in creds.items():
        typer.echo(f"  {email:<28} {password}")


@demo_cli.command("loop")
@one_line_errors
def demo_loop(
    seed: int = typer.Option(0, help="Seeds the policy, the prompts, the annotators, sampling."),
    iterations: int = typer.Option(2, min=1, max=10),
    prompts: int = typer.Option(96, min=2, max=10_000, help="New prompts per iteration."),
    eval_prompts: int = typer.Option(128, min=1, max=10_000),
    reward: str = typer.Option("polite_concise", help="The hidden gold reward."),
    annotators: int = typer.Option(3, min=1, max=50),
    accuracy: float = typer.Option(
        0.95, min=0.55, max=1.0, help="The simulated annotators' accuracy on clear-cut pairs."
    ),
    max_new_tokens: int = typer.Option(48, min=2, max=512, help="Per sampled answer."),
    update: str = typer.Option(
        "dpo",
        help="How the policy is updated: dpo (on the labelled pairs) or expert_iteration (the"
        " best samples by the reward model, then SFT).",
    ),
    samples_per_prompt: int = typer.Option(
        4, min=2, max=32, help="Expert iteration keeps the best of these by the reward model."
    ),
    warmup_examples: int = typer.Option(
        400, min=8, max=100_000, help="Templated answers the tiny policy is warmed up on."
    ),
    update_epochs: float | None = typer.Option(
        None, min=0.1, max=100, help="The update's epochs (default: dpo 4, expert_iteration 2)."
    ),
    update_lr: float | None = typer.Option(
        None,
        min=1e-6,
        max=1.0,
        help="The update's learning rate (default: dpo 1e-3, expert_iteration 3e-3).",
    ),
    beta: float = typer.Option(0.1, min=1e-3, max=100, help="DPO's beta."),
    label_smoothing: float = typer.Option(
        0.0, min=0.0, max=0.49, help="DPO: the share of labels assumed flipped (conservative DPO)."
    ),
    url: str = typer.Option(
        "", help="A running Tandem server for the annotators (default: one started here)."
    ),
    json_out: str = typer.Option("", "--json", help="Also write the results as JSON here."),
) -> None:
    """A closed loop on the CPU: a tiny policy, simulated annotators that follow a hidden gold
    reward, 2-3 iterations of labels -> reward model -> expert iteration (or DPO); prints each
    iteration's win rate against iteration 0 under the gold reward."""
    import json

    from app.loops.demo import DemoSettings, run_demo
    from app.simulate.rewards import get_reward

    get_reward(reward)  # an unknown name fails here, in one line
    if update not in ("dpo", "expert_iteration"):
        typer.echo(f"error: --update is dpo or expert_iteration, not {update!r}", err=True)
        raise typer.Exit(2)
    connect_servers(database=True, broker=True)
    settings = DemoSettings(
        seed=seed,
        iterations=iterations,
        prompts_per_iteration=prompts,
        eval_prompts=eval_prompts,
        reward=reward,
        annotators=annotators,
        accuracy=accuracy,
        max_new_tokens=max_new_tokens,
        update="dpo" if update == "dpo" else "expert_iteration",
        samples_per_prompt=samples_per_prompt,
        warmup_examples=warmup_examples,
        epochs=update_epochs,
        learning_rate=update_lr,
        beta=beta,
        label_smoothing=label_smoothing,
    )
    result = run_demo(settings, url=url or None, out=typer.echo)
    if json_out:
        with _atomic_output(json_out) as f:
            f.write(json.dumps(result.as_dict(), indent=2).encode())
    if result.status != "succeeded":
        raise typer.Exit(1)


@cli.command()
@one_line_errors
def serve(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    workers: int = typer.Option(1, help="Uvicorn worker processes."),
) -> None:
    """Run the web app (uvicorn). X-Forwarded-* headers count only from TANDEM_TRUSTED_PROXIES."""
    import uvicorn

    connect_servers(database=True, broker=True)
    settings = get_settings()
    settings.resolved_secret_key()
    trusted = settings.trusted_proxy_list()
    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        # Off unless proxies are configured: uvicorn would otherwise believe 127.0.0.1.
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        timeout_graceful_shutdown=10,
    )


@cli.command()
@one_line_errors
def worker(
    queues: str = typer.Option(
        "default", help="Comma-separated queues: default, gpu, cpu-train (see README)."
    ),
    concurrency: int = typer.Option(2),
) -> None:
    """Run a Celery worker. Every worker also runs the sweeper loop (one acts at a time)."""
    # Never Celery's default broker (a local Redis or RabbitMQ nobody configured).
    connect_servers(database=True, broker=True)
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app:celery_app",
        "worker",
        "-Q",
        queues,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "INFO",
    ]
    raise typer.Exit(_run_child(args))


@cli.command()
def up(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    worker: bool = typer.Option(True, help="Start a Celery worker too."),
) -> None:
    """Start everything: embedded servers (unless URLs are set), migrations, demo, web, worker."""
    from app.runtime.launcher import up as run_up

    raise typer.Exit(run_up(host=host, port=port, with_worker=worker))


@cli.command("export")
@one_line_errors
def export_dataset(
    project: int = typer.Argument(..., help="Project id."),
    output: str = typer.Option(..., "-o", "--output", help="File to write, or - for stdout."),
    schema: str = typer.Option(
        "preference", help="preference, ranking, spans, critique, unpaired or raw."
    ),
    format: str = typer.Option("jsonl", "--format", help="jsonl or parquet."),
    style: str | None = typer.Option(None, help="standard or conversational."),
    pairs: str | None = typer.Option(None, help="Ranking pairs: all, adjacent, best_vs_rest."),
    aggregate: str | None = typer.Option(
        None, help="consensus, dawid_skene (pairwise preference), or none (a row per vote)."
    ),
    aspect: str | None = typer.Option(None, help="Pairwise: export this aspect's votes."),
    source: str | None = typer.Option(None, help="human, ai or all."),
    min_agreement: float | None = typer.Option(None),
    min_votes: int | None = typer.Option(None),
    gold: str | None = typer.Option(None, help="exclude (default), include or only."),
    annotator: list[int] = typer.Option([], help="Keep votes of this annotator id (repeat)."),
    judge: list[int] = typer.Option([], help="Keep votes of this judge id (repeat)."),
    created_after: str | None = typer.Option(None, help="ISO time; without a zone, UTC."),
    created_before: str | None = typer.Option(None),
    max_annotation_id: int | None = typer.Option(None),
    metadata: list[str] = typer.Option([], help="Item metadata filter key=value (repeat)."),
    rating_threshold: float | None = typer.Option(None),
    span_threshold: float | None = typer.Option(None),
    manifest: str | None = typer.Option(None, help="Also write the manifest (JSON) here."),
) -> None:
    """Export a project's annotations as a dataset file, read from one consistent snapshot."""
    import orjson

    from app.db import get_engine
    from app.exports.build import ExportRun
    from app.exports.schemas import ExportQuery
    from app.exports.service import make_manifest
    from app.exports.writers import HashingSink

    given = {
        "schema": schema,
        "format": format,
        "style": style,
        "pairs": pairs,
        "aggregate": aggregate,
        "aspect": aspect,
        "source": source,
        "min_agreement": min_agreement,
        "min_votes": min_votes,
        "gold": gold,
        "annotator_ids": annotator,
        "judge_ids": judge,
        "created_after": created_after,
        "created_before": created_before,
        "max_annotation_id": max_annotation_id,
        "metadata": metadata,
        "rating_threshold": rating_threshold,
        "span_threshold": span_threshold,
    }
    options = ExportQuery.model_validate(
        {k: v for k, v in given.items() if v is not None}
    ).to_options()
    connect_servers(database=True)
    to_stdout = output == "-"
    name = "-" if to_stdout else os.path.basename(output)
    # The file (and manifest) appear only once the whole export succeeded.
    with contextlib.ExitStack() as files:
        target = sys.stdout.buffer if to_stdout else files.enter_context(_atomic_output(output))
        sink = HashingSink(target)
        outcome = ExportRun(get_engine(), project, options, sink).run()
        target.flush()
        if manifest is not None:
            document = make_manifest(None, options, outcome, name, sink)
            with _atomic_output(manifest) as f:
                f.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    typer.echo(
        f"{outcome.stats.rows} rows, {sink.bytes} bytes, sha256 {sink.sha256}"
        f" (snapshot {outcome.snapshot.taken_at.isoformat()})",
        err=True,
    )


@cli.command("import-raw")
@one_line_errors
def import_raw(
    project: int = typer.Argument(..., help="Project id (same kind as the export)."),
    file: str = typer.Argument(..., help="A raw export, JSONL or Parquet."),
) -> None:
    """Re-import a `raw` export's items and annotations into a project (all or nothing)."""
    from app.db import session_scope
    from app.errors import NotFound
    from app.exports.restore import import_raw as restore
    from app.items.readers import read_rows, sniff
    from app.projects.models import Project

    with open(file, "rb") as f:
        connect_servers(database=True)
        with session_scope() as session:
            target = session.get(Project, project)
            if target is None:
                raise NotFound(f"project {project} does not exist")
            fmt = sniff(f.read(64))
            f.seek(0)
            result = restore(session, target, read_rows(f, fmt))
    typer.echo(
        f"{result.annotations} annotations; items: {result.items_created} created,"
        f" {result.items_reused} reused; {result.skipped} skipped (already annotated)"
    )


def main() -> None:
    cli()
