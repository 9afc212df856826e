"""The `tandem` command: database, users, servers, demo data."""

from __future__ import annotations

import os
import subprocess
import sys

import typer

from app.auth.models import Role
from app.config import get_settings

cli = typer.Typer(
    help="Tandem: collect human and AI feedback for aligning language models.", no_args_is_help=True
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
users_cli = typer.Typer(help="User accounts.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(users_cli, name="users")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (alembic upgrade head)."""
    from app.migrate import upgrade_head

    upgrade_head()
    typer.echo("database is at the latest revision")


@users_cli.command("create")
def users_create(
    email: str = typer.Option(..., help="Login email."),
    password: str = typer.Option(..., prompt=True, hide_input=True, help="At least 8 characters."),
    role: Role = typer.Option(Role.annotator, help="annotator, researcher or admin."),
) -> None:
    """Create a user (the way to make the first admin)."""
    from pydantic import ValidationError

    from app.auth.schemas import UserCreate
    from app.auth.service import create_user
    from app.db import session_scope
    from app.errors import DomainError

    try:
        body = UserCreate(email=email, password=password, role=role)
        with session_scope() as session:
            user = create_user(session, body.email, body.password, body.role)
            typer.echo(f"created user {user.id} {user.email} ({user.role})")
    except ValidationError as err:
        first = err.errors()[0]
        typer.echo(f"error: {'.'.join(map(str, first['loc']))}: {first['msg']}", err=True)
        raise typer.Exit(2) from None
    except DomainError as err:
        typer.echo(f"error: {err.message}", err=True)
        raise typer.Exit(1) from None


@cli.command()
def demo() -> None:
    """Seed the demo project of each kind and print the demo logins (idempotent)."""
    from app.db import session_scope
    from app.demo.seed import seed_demo

    with session_scope() as session:
        creds = seed_demo(session, get_settings().data_dir)
    for email, password in creds.items():
        typer.echo(f"  {email:<28} {password}")


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    workers: int = typer.Option(1, help="Uvicorn worker processes."),
) -> None:
    """Run the web app (uvicorn). X-Forwarded-* headers count only from TANDEM_TRUSTED_PROXIES."""
    import uvicorn

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
def worker(
    queues: str = typer.Option("default", help="Comma-separated queues: default, gpu."),
    concurrency: int = typer.Option(2),
    beat: bool = typer.Option(False, help="Also run the periodic sweeper in this process."),
) -> None:
    """Run a Celery worker."""
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
    if beat:
        args.append("--beat")
    raise typer.Exit(subprocess.call(args, env=os.environ.copy()))


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
def export_dataset(
    project: int = typer.Argument(..., help="Project id."),
    output: str = typer.Option(..., "-o", "--output", help="File to write, or - for stdout."),
    schema: str = typer.Option(
        "preference", help="preference, ranking, spans, critique, unpaired or raw."
    ),
    format: str = typer.Option("jsonl", "--format", help="jsonl or parquet."),
    style: str | None = typer.Option(None, help="standard or conversational."),
    pairs: str | None = typer.Option(None, help="Ranking pairs: all, adjacent, best_vs_rest."),
    aggregate: str | None = typer.Option(None, help="consensus, or none (a row per vote)."),
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
    from pydantic import ValidationError

    from app.db import get_engine
    from app.errors import DomainError
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
    try:
        options = ExportQuery.model_validate(
            {k: v for k, v in given.items() if v is not None}
        ).to_options()
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"])) or "options"
        typer.echo(f"error: {where}: {first['msg']}", err=True)
        raise typer.Exit(2) from None
    to_stdout = output == "-"
    target = sys.stdout.buffer if to_stdout else open(output, "wb")  # noqa: SIM115
    try:
        sink = HashingSink(target)
        outcome = ExportRun(get_engine(), project, options, sink).run()
        target.flush()
    except DomainError as err:
        typer.echo(f"error: {err.message}", err=True)
        if not to_stdout:
            target.close()
            os.unlink(output)
        raise typer.Exit(1) from None
    finally:
        if not to_stdout:
            target.close()
    name = "-" if to_stdout else os.path.basename(output)
    if manifest is not None:
        document = make_manifest(None, options, outcome, name, sink)
        with open(manifest, "wb") as f:
            f.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    typer.echo(
        f"{outcome.stats.rows} rows, {sink.bytes} bytes, sha256 {sink.sha256}"
        f" (snapshot {outcome.snapshot.taken_at.isoformat()})",
        err=True,
    )


@cli.command("import-raw")
def import_raw(
    project: int = typer.Argument(..., help="Project id (same kind as the export)."),
    file: str = typer.Argument(..., help="A raw export, JSONL or Parquet."),
) -> None:
    """Re-import a `raw` export's items and annotations into a project (all or nothing)."""
    from app.db import session_scope
    from app.errors import DomainError
    from app.exports.restore import import_raw as restore
    from app.items.readers import read_rows, sniff
    from app.projects.models import Project

    try:
        with session_scope() as session, open(file, "rb") as f:
            target = session.get(Project, project)
            if target is None:
                typer.echo(f"error: project {project} does not exist", err=True)
                raise typer.Exit(1)
            fmt = sniff(f.read(64))
            f.seek(0)
            result = restore(session, target, read_rows(f, fmt))
    except DomainError as err:
        typer.echo(f"error: {err.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"{result.annotations} annotations; items: {result.items_created} created,"
        f" {result.items_reused} reused; {result.skipped} skipped (already annotated)"
    )


def main() -> None:
    cli()
