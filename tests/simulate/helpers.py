"""Helpers for simulation tests: build a world into a project, query what the server stored."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg

from app.auth.models import Role
from app.auth.service import Principal
from app.db import session_scope
from app.simulate import accounts
from app.simulate.service import Built, build_world, commit_manifest
from app.simulate.world import World, WorldConfig, generate_world
from tests.conftest import Actor


def sql(query: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(os.environ["TANDEM_DATABASE_URL"], autocommit=True) as conn:
        cur = conn.execute(query, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def principal(actor: Actor) -> Principal:
    return Principal(id=actor.id, email=actor.email, role=Role(actor.role), token="")


def build(owner: Actor, folder: Path, overlap: int = 3, **config: Any) -> tuple[World, Built]:
    world = generate_world(WorldConfig(**config))
    with session_scope() as session:
        built = build_world(
            session,
            principal(owner),
            world,
            folder,
            config=WorldConfig(**config).model_dump(mode="json"),
            overlap=overlap,
        )
    commit_manifest(built)
    return world, built


def enlist(project_id: int, count: int, prefix: str = "sim") -> list[accounts.Enlisted]:
    with session_scope() as session:
        return accounts.enlist(session, project_id, count, prefix, 3600)
