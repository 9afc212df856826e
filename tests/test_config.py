"""Settings: the per-install secret key, and refusing well-known ones."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.config import InsecureSecretKey, Settings


def test_secret_key_is_generated_once_per_install(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, secret_key=None)
    key = s.resolved_secret_key()
    assert len(key) >= 32
    assert Settings(data_dir=tmp_path, secret_key=None).resolved_secret_key() == key
    mode = (tmp_path / "secret_key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


@pytest.mark.parametrize("key", ["changeme", "secret", "short-but-random-xyz", "CHANGEME"])
def test_known_or_short_secret_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(InsecureSecretKey):
        Settings(data_dir=tmp_path, secret_key=key).resolved_secret_key()


def test_postgres_urls_use_psycopg3() -> None:
    s = Settings(database_url="postgresql://u@h:5432/db")
    assert s.database_url == "postgresql+psycopg://u@h:5432/db"


def test_app_refuses_to_start_with_a_known_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from app.config import get_settings
    from app.main import create_app

    monkeypatch.setattr(get_settings(), "secret_key", "changeme")
    with pytest.raises(InsecureSecretKey), TestClient(create_app()):
        pass
