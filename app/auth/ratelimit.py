"""Login rate limiting: a fixed one-minute window per (client address, email) in Redis."""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache

import redis

from app.config import get_settings
from app.errors import RateLimited

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60


@lru_cache
def _client() -> redis.Redis:
    url = get_settings().require_redis_url()
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def check_login_allowed(client_ip: str, email: str) -> None:
    """Count one attempt; raise RateLimited past the limit. Fails open if Redis is down."""
    limit = get_settings().login_attempts_per_minute
    key = "tandem:login:" + hashlib.sha256(f"{client_ip}|{email.lower()}".encode()).hexdigest()
    try:
        pipe = _client().pipeline()
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS, nx=True)
        pipe.ttl(key)
        count, _, ttl = pipe.execute()
    except redis.RedisError:
        log.warning("login rate limiter unavailable (Redis unreachable); allowing the attempt")
        return
    if int(count) > limit:
        raise RateLimited(
            f"Too many login attempts; try again in {max(int(ttl), 1)} seconds.",
            retry_after=max(int(ttl), 1),
        )
