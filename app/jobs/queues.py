"""Queue names, and which queues have a live worker (for kinds that prefer a GPU, else a CPU).

- `default`: CPU work that finishes in minutes (imports, exports, API judges). Every worker shape
  consumes it.
- `gpu`: work that needs the GPU (vLLM/transformers judges, training on GPU). Consumed by the
  GPU worker (`docker compose --profile gpu`, `tandem worker --queues gpu`).
- `cpu-train`: training on CPU when no GPU worker runs. Consumed by `tandem up`'s worker and the
  compose CPU worker; kept apart from `default` so that an hours-long run cannot hold up imports
  on a worker that consumes both (give it its own worker for that).

Each worker announces the queues it consumes in Redis every few seconds (the sweeper loop does
it); `live_queues()` reads that back, and `gpu_else` is the resolver a kind uses to go to `gpu`
when a GPU worker is alive and to its fallback otherwise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis

from app.config import get_settings

DEFAULT = "default"
GPU = "gpu"
CPU_TRAIN = "cpu-train"
QUEUES = (DEFAULT, GPU, CPU_TRAIN)

log = logging.getLogger(__name__)
_PRESENCE = "tandem:queue-workers:"  # + queue name: sorted set, worker node -> expiry time


def announce(client: redis.Redis, node: str, queues: Iterable[str], ttl_seconds: float) -> None:
    """Record that `node` consumes `queues` for the next ttl_seconds."""
    now = time.time()
    pipe = client.pipeline()
    for queue in queues:
        pipe.zadd(_PRESENCE + queue, {node: now + ttl_seconds})
        pipe.zremrangebyscore(_PRESENCE + queue, "-inf", now)
    pipe.execute()


def withdraw(client: redis.Redis, node: str, queues: Iterable[str]) -> None:
    pipe = client.pipeline()
    for queue in queues:
        pipe.zrem(_PRESENCE + queue, node)
    pipe.execute()


def live_queues(client: redis.Redis | None = None) -> set[str]:
    """The queues at least one live worker consumes."""
    if client is None:
        client = redis.Redis.from_url(get_settings().require_redis_url())
    now = time.time()
    pipe = client.pipeline()
    for queue in QUEUES:
        pipe.zcount(_PRESENCE + queue, now, "+inf")
    return {q for q, n in zip(QUEUES, pipe.execute(), strict=True) if n}


def gpu_else(fallback: str) -> Callable[[Mapping[str, Any]], str]:
    """A queue resolver: `gpu` while a GPU worker is alive, else `fallback`. If Redis cannot be
    asked, `gpu` (the message could not be sent anyway; the sweeper sends it later)."""

    def resolve(params: Mapping[str, Any]) -> str:
        try:
            return GPU if GPU in live_queues() else fallback
        except (redis.RedisError, RuntimeError):
            log.warning("cannot see which workers are alive; sending to %s", GPU)
            return GPU

    return resolve
