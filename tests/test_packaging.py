"""A normal (non-editable) install works: the wheel carries the migrations, templates and static
files, and `tandem db upgrade` migrates an empty database from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.conftest import PG_SERVER

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("app", "worker", "migrations", "templates", "static")
FILES = ("pyproject.toml", "setup.py", "README.md")

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the sources, so that the build leaves nothing in the checkout."""
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "_bundled")
    for name in SOURCES:
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in FILES:
        shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(src)],
        check=True, cwd=src,
    )  # fmt: skip
    return next(out.glob("tandem-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel; its dependencies come from this environment through a
    .pth line (no network), which does not bring this checkout's editable install along."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    deps = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    Path(site, "_tandem_test_deps.pth").write_text(deps + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", str(wheel)],
        check=True,
    )  # fmt: skip
    return env_dir


def test_the_wheel_carries_migrations_templates_and_static(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for expected in (
        "app/_bundled/migrations/env.py",
        "app/_bundled/templates/login.html",
        "app/_bundled/static/app.css",
    ):
        assert expected in names
    versions = [n for n in names if n.startswith("app/_bundled/migrations/versions/")]
    assert len(versions) == len(list((ROOT / "migrations" / "versions").glob("*.py")))


@pytest.fixture
def empty_database() -> Iterator[str]:
    name = f"tandem_wheel_{os.getpid()}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_SERVER.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_installed_wheel_migrates_an_empty_database(
    installed: Path, empty_database: str, tmp_path: Path
) -> None:
    env = {**os.environ, "TANDEM_DATABASE_URL": empty_database, "TANDEM_DATA_DIR": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import app; print(app.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env=env,
    ).stdout.strip()  # fmt: skip
    assert where.startswith(str(installed)), f"app was imported from {where}, not the wheel"
    done = subprocess.run(
        [str(installed / "bin" / "tandem"), "db", "upgrade"],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with psycopg.connect(empty_database) as conn:
        head = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    scripts = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini")))
    assert head is not None and head[0] == scripts.get_current_head()
    assert tables is not None and tables[0] > 5
    pages = subprocess.run(
        [str(installed / "bin" / "python"), "-c",
         "from app.web.templating import environment; print(environment().get_template("
         "'login.html').filename)"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env=env,
    ).stdout.strip()  # fmt: skip
    assert pages.startswith(str(installed))
