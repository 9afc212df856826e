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
    """Run the web app (uvicorn)."""
    import uvicorn

    get_settings().resolved_secret_key()
    uvicorn.run(
        "app.main:app", host=host, port=port, workers=workers, access_log=False, proxy_headers=True
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


def main() -> None:
    cli()
