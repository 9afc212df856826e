"""Settings read from the environment (prefix TANDEM_), one instance per process."""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values copied from tutorials and sample configs: a server started with one of these is not secret.
KNOWN_DEFAULT_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "secret",
        "secret-key",
        "dev",
        "development",
        "test",
        "insecure",
        "tandem",
        "please-change-me",
        "your-secret-key",
        "supersecret",
    }
)
MIN_SECRET_LENGTH = 32


class InsecureSecretKey(RuntimeError):
    """The configured secret key is a well-known value or too short to sign anything."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_", env_file=None, extra="ignore")

    # Unset means: `tandem up` starts the embedded PostgreSQL / Valkey under data_dir.
    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path("var")
    secret_key: str | None = Field(default=None, repr=False)

    # Uploads: bodies above max_upload_bytes get 413; above async_import_bytes they become a job.
    max_upload_bytes: int = 512 * 1024 * 1024
    async_import_bytes: int = 8 * 1024 * 1024
    import_batch_rows: int = 1000

    session_ttl_seconds: int = 12 * 3600
    api_token_ttl_seconds: int = 30 * 24 * 3600
    login_attempts_per_minute: int = 10
    cookie_secure: bool = False
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: comma-separated
    # addresses or networks ("10.0.0.5,172.18.0.0/16"). None by default, so that a client
    # cannot choose the address that the login rate limit counts by.
    trusted_proxies: str = ""

    # Background jobs: a running job's claim lasts this long without a heartbeat (the runner
    # renews it every third of it); every worker runs a sweeper loop, and the one holding the
    # sweeper lock re-sends dead jobs. A dead job is re-sent within lease + 2 intervals.
    job_lease_seconds: float = 30.0
    sweeper_interval_seconds: float = 5.0
    # More modules declaring job kinds (comma-separated import paths): a plugin hook.
    job_modules: str = ""

    db_pool_size: int = 20
    db_max_overflow: int = 30
    # Worker threads for blocking work per process: more only adds GIL contention.
    threads: int = 8
    # Local models (vllm, transformers) a worker process keeps loaded between jobs; loading
    # another evicts the least recently used first, so a GPU never holds two by surprise.
    inference_max_models: int = Field(default=1, ge=1)

    @field_validator("database_url")
    @classmethod
    def _psycopg3_driver(cls, v: str | None) -> str | None:
        # Accept plain postgres:// URLs and point them at psycopg 3.
        if v and v.startswith(("postgres://", "postgresql://")):
            return "postgresql+psycopg://" + v.split("://", 1)[1]
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, v: str) -> str:
        for entry in (e.strip() for e in v.split(",")):
            if entry and entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(
                        f"TANDEM_TRUSTED_PROXIES: {entry!r} is not an IP address or network"
                    ) from None
        return v

    def trusted_proxy_list(self) -> list[str]:
        return [e.strip() for e in self.trusted_proxies.split(",") if e.strip()]

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "TANDEM_DATABASE_URL is not set: run through `tandem up` (embedded PostgreSQL) "
                "or point it at a server, e.g. postgresql://user@host:5432/tandem"
            )
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError(
                "TANDEM_REDIS_URL is not set: run through `tandem up` (embedded Valkey) "
                "or point it at a server, e.g. redis://host:6379/0"
            )
        return self.redis_url

    def resolved_secret_key(self) -> str:
        """The configured key, else one generated once per install and kept under data_dir."""
        key = self.secret_key
        if key is None:
            path = self.data_dir / "secret_key"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_urlsafe(48))
            key = path.read_text().strip()
        if key.lower() in KNOWN_DEFAULT_SECRETS or len(key) < MIN_SECRET_LENGTH:
            raise InsecureSecretKey(
                "TANDEM_SECRET_KEY is a well-known default or shorter than "
                f"{MIN_SECRET_LENGTH} characters; unset it to generate one, or set a random value"
            )
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
