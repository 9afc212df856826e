"""Backends by name: `@register("openai", params=...)`, `validate_params`, `create`.

Each backend declares a pydantic model of its parameters (unknown keys rejected), so that a
bad judge configuration is refused with a 422 when the judge is created, long before a worker
tries it. Backend modules import only pydantic at module level; their heavy libraries are
imported when a backend is created, in the worker.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from app.errors import Invalid
from app.inference.base import Backend, SamplingParams

# The built-in backends, imported on first lookup (registration happens at import).
_BUILTIN_MODULES = (
    "app.inference.openai_compat",
    "app.inference.transformers_local",
    "app.inference.vllm_engine",
    "app.inference.simulated",
)


class BackendParams(BaseModel):
    """Base of every backend's parameters: unknown keys are an error, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=BackendParams)
Factory = Callable[[str, Any], Backend]


@dataclass(frozen=True)
class BackendSpec:
    name: str
    params: type[BackendParams]
    factory: Factory
    where: str  # one line for README and error messages: where it runs


_specs: dict[str, BackendSpec] = {}
_builtins_loaded = False


class UnknownBackend(Invalid):
    code = "unknown_backend"


class InvalidBackendParams(Invalid):
    code = "invalid_backend_params"


class InvalidSamplingParams(Invalid):
    code = "invalid_sampling_params"


def register(
    name: str, *, params: type[P], where: str
) -> Callable[[Callable[[str, P], Backend]], Callable[[str, P], Backend]]:
    """Register `factory(model, params) -> Backend` under `name`."""

    def decorate(factory: Callable[[str, P], Backend]) -> Callable[[str, P], Backend]:
        if name in _specs and _specs[name].factory is not factory:
            raise RuntimeError(f"backend {name!r} is registered twice")
        _specs[name] = BackendSpec(name, params, factory, where)
        return factory

    return decorate


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        _builtins_loaded = True


def known_backends() -> list[str]:
    _load_builtins()
    return sorted(_specs)


def spec(name: str) -> BackendSpec:
    _load_builtins()
    try:
        return _specs[name]
    except KeyError:
        raise UnknownBackend(
            f"Unknown backend {name!r}; known backends: {', '.join(sorted(_specs))}.",
            field="backend",
        ) from None


def validate_params(name: str, params: Mapping[str, Any] | None) -> BackendParams:
    """The backend's parameters, checked; raises UnknownBackend or InvalidBackendParams (422)."""
    model = spec(name).params
    try:
        return model.model_validate(dict(params or {}))
    except ValidationError as exc:
        raise InvalidBackendParams(
            f"Invalid parameters for the {name} backend: {_describe(exc)}.", field="params"
        ) from None


def create(
    name: str, model: str, params: Mapping[str, Any] | BackendParams | None = None
) -> Backend:
    """A ready backend. Local models load here (or come from the per-process cache)."""
    if not model:
        raise InvalidBackendParams("A backend needs a model.", field="model")
    backend_spec = spec(name)
    if isinstance(params, backend_spec.params):
        checked: BackendParams = params
    else:
        # Another backend's parameter model is checked as a mapping: its keys may not fit.
        raw = params.model_dump() if isinstance(params, BaseModel) else params
        checked = validate_params(name, raw)
    return backend_spec.factory(model, checked)


def sampling_params(values: Mapping[str, Any]) -> SamplingParams:
    """SamplingParams from a stored mapping (a judge's or a run's config); 422 when invalid."""
    known = set(SamplingParams.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidSamplingParams(
            f"Unknown sampling parameters: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}.",
            field="sampling",
        )
    kwargs = dict(values)
    if "stop" in kwargs:
        stop = kwargs["stop"]
        if not isinstance(stop, list | tuple) or not all(isinstance(s, str) for s in stop):
            raise InvalidSamplingParams(
                "sampling.stop must be a list of strings.", field="sampling"
            )
        kwargs["stop"] = tuple(stop)
    for key in ("n", "max_tokens", "seed", "top_logprobs"):
        value = kwargs.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidSamplingParams(f"sampling.{key} must be an integer.", field="sampling")
    for key in ("temperature", "top_p"):
        value = kwargs.get(key)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise InvalidSamplingParams(f"sampling.{key} must be a number.", field="sampling")
    try:
        return SamplingParams(**kwargs)
    except ValueError as exc:
        raise InvalidSamplingParams(
            f"Invalid sampling parameters: {exc}.", field="sampling"
        ) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "params"
        message = "unknown parameter" if error["type"] == "extra_forbidden" else error["msg"]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
