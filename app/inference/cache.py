"""The per-process cache of loaded local models: loaded once per worker process, reused across jobs.

At most `TANDEM_INFERENCE_MAX_MODELS` (default 1) stay loaded; loading another first unloads
the least recently used one, so that a GPU worker switching judges never holds two models at
once. Loads are serialised: two threads asking for the same model load it once.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from app.config import get_settings

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class _Entry:
    value: Any
    unload: Callable[[Any], None] | None


_lock = threading.Lock()
_entries: OrderedDict[Hashable, _Entry] = OrderedDict()


def cached_model(
    key: Hashable, load: Callable[[], T], unload: Callable[[T], None] | None = None
) -> T:
    """The model cached under `key`, loaded by `load()` on first use."""
    with _lock:
        entry = _entries.get(key)
        if entry is not None:
            _entries.move_to_end(key)
            return cast(T, entry.value)
        capacity = get_settings().inference_max_models
        while len(_entries) >= capacity:
            _evict(next(iter(_entries)))
        log.info("loading model %s", key)
        value = load()
        _entries[key] = _Entry(value, cast("Callable[[Any], None] | None", unload))
        return value


def cached_keys() -> list[Hashable]:
    with _lock:
        return list(_entries)


def clear_model_cache() -> None:
    """Unload every cached model (worker shutdown, or to free the accelerator)."""
    with _lock:
        for key in list(_entries):
            _evict(key)


def _evict(key: Hashable) -> None:
    entry = _entries.pop(key)
    log.info("unloading model %s", key)
    if entry.unload is not None:
        entry.unload(entry.value)
    del entry
    gc.collect()
    torch = sys.modules.get("torch")  # only if a backend already imported it
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
