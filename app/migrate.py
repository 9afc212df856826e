"""Run Alembic migrations programmatically (CLI `tandem db upgrade`, tests, the launcher).

No alembic.ini is needed: an installed wheel has none, and the settings it holds for
`alembic revision` (file names) do not matter to an upgrade.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from app.resources import resource_dir


def alembic_config(database_url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resource_dir("migrations")))
    cfg.set_main_option("path_separator", "os")
    if database_url:
        cfg.attributes["database_url"] = database_url
    return cfg


def upgrade_head(database_url: str | None = None) -> None:
    command.upgrade(alembic_config(database_url), "head")
