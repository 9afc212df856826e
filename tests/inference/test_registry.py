"""Backends by name, their parameters checked up front, and the per-process model cache."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from app.config import get_settings
from app.inference import cache, registry
from app.inference.base import ChatMessage, GenerationRequest, SamplingParams
from app.inference.paths import resolve
from app.inference.registry import InvalidBackendParams, InvalidSamplingParams, UnknownBackend


def test_the_four_backends_are_registered() -> None:
    assert registry.known_backends() == ["openai", "simulated", "transformers", "vllm"]
    for name in registry.known_backends():
        assert registry.spec(name).where


def test_an_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(UnknownBackend) as caught:
        registry.validate_params("anthropic", {})
    assert caught.value.status_code == 422 and caught.value.code == "unknown_backend"
    assert caught.value.message == (
        "Unknown backend 'anthropic'; known backends: openai, simulated, transformers, vllm."
    )


@pytest.mark.parametrize(
    ("name", "params", "problem"),
    [
        ("openai", {}, "base_url: Field required"),
        ("openai", {"base_url": "ftp://x"}, "base_url: Value error, must start with http"),
        ("openai", {"base_url": "http://x/v1", "api_key": "sk-123"}, "api_key: unknown parameter"),
        ("openai", {"base_url": "http://x/v1", "api_key_env": "not a name"}, "api_key_env"),
        ("openai", {"base_url": "http://x/v1", "concurrency": 0}, "concurrency"),
        (
            "openai",
            {"base_url": "http://x/v1", "headers": {"Authorization": "Bearer sk"}},
            "api_key_env",
        ),
        ("transformers", {"device": "gpu"}, "device"),
        ("transformers", {"batch_size": 0}, "batch_size"),
        ("transformers", {"temperature": 0.2}, "temperature: unknown parameter"),
        ("vllm", {"tensor_parallel_size": 0}, "tensor_parallel_size"),
        ("vllm", {"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
    ],
)
def test_bad_parameters_are_a_422_naming_the_field(
    name: str, params: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidBackendParams) as caught:
        registry.validate_params(name, params)
    assert caught.value.status_code == 422
    assert caught.value.message.startswith(f"Invalid parameters for the {name} backend: ")
    assert problem in caught.value.message


def test_good_parameters_come_back_with_their_defaults() -> None:
    checked = registry.validate_params("openai", {"base_url": "http://127.0.0.1:8000/v1/"})
    assert checked.model_dump()["base_url"] == "http://127.0.0.1:8000/v1"
    assert checked.model_dump()["max_retries"] == 4
    assert registry.validate_params("vllm", None).model_dump()["tensor_parallel_size"] == 1


def test_another_backends_parameters_are_checked_as_a_mapping() -> None:
    openai_params = registry.validate_params("openai", {"base_url": "http://x/v1"})
    with pytest.raises(InvalidBackendParams, match="base_url: unknown parameter"):
        registry.create("simulated", "simulated", openai_params)


def test_create_needs_a_model() -> None:
    with pytest.raises(InvalidBackendParams, match="needs a model"):
        registry.create("openai", "", {"base_url": "http://x/v1"})


def test_sampling_parameters_from_a_stored_mapping() -> None:
    sp = registry.sampling_params({"temperature": 0.7, "n": 2, "stop": ["\n\n"], "top_logprobs": 5})
    assert sp == SamplingParams(temperature=0.7, n=2, stop=("\n\n",), top_logprobs=5)
    for bad, problem in (
        ({"temprature": 1}, "Unknown sampling parameters: temprature"),
        ({"n": 0}, "n must be at least 1"),
        ({"n": "2"}, "sampling.n must be an integer"),
        ({"top_p": 0}, "top_p"),
        ({"stop": "\n"}, "list of strings"),
        ({"top_logprobs": 50}, "between 0 and 20"),
    ):
        with pytest.raises(InvalidSamplingParams, match=problem):
            registry.sampling_params(bad)


def test_a_request_has_messages_or_a_prompt() -> None:
    with pytest.raises(ValueError, match="either chat messages or a prompt"):
        GenerationRequest()
    with pytest.raises(ValueError, match="either chat messages or a prompt"):
        GenerationRequest(prompt="x", messages=(ChatMessage("user", "hi"),))


def test_importing_the_backends_loads_no_heavy_library() -> None:
    code = (
        "import sys, app.inference.registry as r; r.known_backends();"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'llama_cpp') if m in sys.modules];"
        "print(heavy); assert not heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def empty_cache() -> Iterator[None]:
    cache.clear_model_cache()
    yield
    cache.clear_model_cache()
    get_settings.cache_clear()


def test_a_cached_model_loads_once_and_the_oldest_is_unloaded_first(
    empty_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_INFERENCE_MAX_MODELS", "2")
    get_settings.cache_clear()
    loads: list[str] = []
    unloaded: list[str] = []

    def loader(name: str) -> Any:
        return lambda: loads.append(name) or {"name": name}

    a = cache.cached_model("a", loader("a"), lambda m: unloaded.append(m["name"]))
    assert cache.cached_model("a", loader("a")) is a
    cache.cached_model("b", loader("b"), lambda m: unloaded.append(m["name"]))
    cache.cached_model("a", loader("a"))  # a is now the most recently used
    cache.cached_model("c", loader("c"), lambda m: unloaded.append(m["name"]))
    assert loads == ["a", "b", "c"]
    assert unloaded == ["b"]
    assert cache.cached_keys() == ["a", "c"]


def test_by_default_one_model_stays_loaded(empty_cache: None) -> None:
    unloaded: list[str] = []
    cache.cached_model("x", lambda: "x", unloaded.append)
    cache.cached_model("y", lambda: "y", unloaded.append)
    assert unloaded == ["x"] and cache.cached_keys() == ["y"]


def test_model_paths_resolve_without_importing_the_package(tmp_path: Any) -> None:
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    files = resolve(str(tmp_path / "m.gguf"))
    assert (files.source, files.gguf_file) == (str(tmp_path), "m.gguf")
    assert resolve(str(tmp_path)).gguf_file == "m.gguf"  # a folder with one GGUF and no config
    with pytest.raises(Exception, match="does not exist"):
        resolve(str(tmp_path / "absent.gguf"))
    with pytest.raises(Exception, match="not installed"):
        resolve("package:tandem_no_such_package/model.gguf")
    with pytest.raises(Exception, match="has no"):
        resolve("package:app/no-such-model.gguf")
