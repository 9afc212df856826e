"""Every job kind the process knows, found in the domains' job modules (and plugin modules).

Domains declare module-level `JobSpec`s in the modules of DOMAIN_JOB_MODULES. A deployment (or
the test suite) adds kinds without touching this list by naming more modules in
`TANDEM_JOB_MODULES` (comma-separated import paths): the web process and every worker import
them too, so set it alike everywhere.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping

from app.auth.models import ROLE_RANK, Role
from app.config import get_settings
from app.jobs.specs import JobSpec, PeriodicSpec

DOMAIN_JOB_MODULES = (
    "app.items.jobs",
    "app.exports.jobs",
    "app.judges.jobs",
    "app.quality.jobs",
    "app.training.runs.jobs",
    "app.generation.jobs",
    "app.routing.jobs",
    "app.loops.jobs",
    "app.loops.demo_job",
)

_specs: dict[str, JobSpec] = {}
_periodic: dict[str, PeriodicSpec] = {}
_loaded = False
_lock = threading.Lock()


class UnknownJobKind(LookupError):
    pass


def _modules() -> list[str]:
    extra = [m.strip() for m in get_settings().job_modules.split(",") if m.strip()]
    return [*DOMAIN_JOB_MODULES, *extra]


def load() -> Mapping[str, JobSpec]:
    """Import the job modules once and collect their specs by kind."""
    global _loaded
    if _loaded:
        return _specs
    with _lock:
        if not _loaded:
            found: dict[str, JobSpec] = {}
            periodic: dict[str, PeriodicSpec] = {}
            for name in _modules():
                module = importlib.import_module(name)
                for value in vars(module).values():
                    seen_periodic = (
                        periodic.setdefault(value.name, value)
                        if isinstance(value, PeriodicSpec)
                        else None
                    )
                    if seen_periodic is not None and seen_periodic is not value:
                        raise RuntimeError(f"periodic work {value.name!r} is declared twice")
                    if not isinstance(value, JobSpec):
                        continue
                    seen = found.setdefault(value.kind, value)
                    if seen is not value:
                        raise RuntimeError(f"job kind {value.kind!r} is declared twice")
            _specs.update(found)
            _periodic.update(periodic)
            _loaded = True
    return _specs


def get(kind: str) -> JobSpec:
    try:
        return load()[kind]
    except KeyError:
        raise UnknownJobKind(
            f"no job kind {kind!r} is known to this process (job modules: {', '.join(_modules())})"
        ) from None


def periodic() -> list[PeriodicSpec]:
    """The periodic work the job modules declare (run by the sweeper), by name."""
    load()
    return [_periodic[name] for name in sorted(_periodic)]


def find(kind: str) -> JobSpec | None:
    return load().get(kind)


def kinds_visible_to(role: Role) -> list[str]:
    """Kinds whose jobs a project member with this role may see."""
    return sorted(
        kind for kind, spec in load().items() if ROLE_RANK[role] >= ROLE_RANK[spec.visible_to]
    )
