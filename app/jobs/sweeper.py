"""The sweeper: settles jobs whose worker died, re-sends lost messages, cleans the data directory.

Every worker process runs a SweeperLoop (no separate beat process to forget): each tick it
announces the queues its worker consumes, and acts only while it holds the Redis lock
`tandem:sweeper` (a TTL of three ticks, renewed each tick), so N workers give one sweeper, and
when its holder dies another worker takes over within the TTL. A job whose worker died is
requeued (or failed, once out of attempts) within lease + 2 ticks of its last heartbeat.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis

from app import storage
from app.config import get_settings
from app.db import session_scope
from app.jobs import claims, outbox, queues, registry

log = logging.getLogger(__name__)
LOCK_KEY = "tandem:sweeper"
# Hash: sweeper identity -> time of its last sweep (which worker sweeps, and that it does).
LAST_SWEEP_KEY = "tandem:sweeper:last-sweep"
# A queued job whose message looks lost is re-sent at most this often.
RESEND_EVERY_SECONDS = 300
_RESENT_MARK = "tandem:job-resent:"
CLEANUP_EVERY_SECONDS = 600

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


@dataclass
class SweepReport:
    settled: list[claims.Settled] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)


def _queue_is_empty(client: redis.Redis, queue: str) -> bool:
    """No message waits in this queue on the broker (kombu's Redis transport keeps a queue's
    messages in a list named after it)."""
    return int(client.llen(queue)) == 0


def sweep(client: redis.Redis) -> SweepReport:
    """One pass: settle lapsed claims (requeued jobs are sent on commit), re-send lost messages.

    An overdue queued job is re-sent only while its queue on the broker is empty: messages still
    waiting mean a backlog (jobs waiting hours for the GPU worker), not a loss, and re-sending
    would only fill the queue with duplicates. A lost message among a backlog is re-sent once
    the queue drains."""
    with session_scope() as session:
        overdue = claims.overdue_queued(session)
        # Looked at before this pass sends anything (requeued jobs go out on commit).
        empty = {q: _queue_is_empty(client, q) for q in {m.queue for m in overdue}}
        settled = claims.settle_lapsed(session)
    report = SweepReport(settled=settled)
    for message in overdue:
        if not empty[message.queue]:
            continue
        mark = f"{_RESENT_MARK}{message.job_id}"
        if client.set(mark, 1, nx=True, ex=RESEND_EVERY_SECONDS) and outbox.send(message):
            report.resent.append(message.job_id)
    for s in settled:
        log.info("sweeper: job %s %s (%s)", s.job_id, s.status.value, s.error or "")
    if report.resent:
        log.info("sweeper: re-sent jobs %s whose message looked lost", report.resent)
    return report


class SweeperLoop:
    """The sweeper thread of one worker process."""

    def __init__(self, node: str, consumed: Sequence[str], client: redis.Redis | None = None):
        settings = get_settings()
        self.interval = settings.sweeper_interval_seconds
        self.identity = f"{node}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.consumed = list(consumed)
        self.client = client or redis.Redis.from_url(
            settings.require_redis_url(), socket_timeout=10, socket_connect_timeout=10
        )
        self.holding = False
        self._last_cleanup = 0.0
        self._last_periodic: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def _ttl_ms(self) -> int:
        return int(self.interval * 3 * 1000)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tandem-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        try:
            queues.withdraw(self.client, self.identity, self.consumed)
            if self.holding:
                self.client.eval(_RELEASE, 1, LOCK_KEY, self.identity)
        except redis.RedisError:
            log.warning("sweeper: could not release its lock; it expires by itself")
        self.holding = False

    def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:
                log.exception("sweeper: tick failed; trying again")
            if self._stop.wait(self.interval):
                return

    def _hold_lock(self) -> bool:
        if self.holding and self.client.eval(_RENEW, 1, LOCK_KEY, self.identity, self._ttl_ms):
            return True
        took = bool(self.client.set(LOCK_KEY, self.identity, nx=True, px=self._ttl_ms))
        if took:
            log.info("sweeper: %s holds the sweeper lock and sweeps", self.identity)
        elif self.holding:
            log.info("sweeper: %s lost the sweeper lock", self.identity)
        self.holding = took
        return took

    def run_periodic(self) -> None:
        """The domains' periodic work that is due; one failing does not stop the others."""
        now = time.monotonic()
        for spec in registry.periodic():
            last = self._last_periodic.get(spec.name)
            if last is not None and now - last < spec.every.total_seconds():
                continue
            self._last_periodic[spec.name] = now
            try:
                spec.run()
            except Exception:
                log.exception("sweeper: periodic work %s failed; next tick retries", spec.name)

    def tick(self) -> bool:
        """Announce this worker's queues; sweep if this loop holds the lock. True if it swept."""
        queues.announce(self.client, self.identity, self.consumed, self.interval * 3)
        if not self._hold_lock():
            return False
        sweep(self.client)
        self.client.hset(LAST_SWEEP_KEY, self.identity, f"{time.time():.3f}")
        self.run_periodic()
        if time.monotonic() - self._last_cleanup >= CLEANUP_EVERY_SECONDS or not self._last_cleanup:
            self._last_cleanup = time.monotonic()
            with session_scope() as session:
                storage.cleanup(session)
        return True
