"""Find and load models and tokenizers from a local folder or a GGUF file, with optional LoRA.

Nothing is ever downloaded: a path that is neither a model folder nor a .gguf file is a
ModelNotFound naming it. GGUF weights (llama.cpp's format, quantized or not) are dequantized by
transformers into ordinary tensors, so a run can start from the same file a llama.cpp backend
serves. Heavy libraries are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.training.config import Lora, Precision, TrainSettings
from app.training.errors import ModelNotFound

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True, slots=True)
class ModelSource:
    folder: Path
    gguf_file: str | None = None

    @property
    def label(self) -> str:
        return str(self.folder / self.gguf_file) if self.gguf_file else str(self.folder)

    def kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def resolve_model(path: str, what: str = "model") -> ModelSource:
    """A folder with config.json, or a .gguf file; anything else is ModelNotFound."""
    p = Path(path).expanduser()
    if p.is_file():
        if p.suffix.lower() != ".gguf":
            raise ModelNotFound(
                f"{what} {path} is a file but not a .gguf model; give a model folder"
                " (config.json and safetensors weights) or a .gguf file."
            )
        return ModelSource(p.parent, p.name)
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelNotFound(
                f"{what} {path} is a folder without config.json: not a saved model."
            )
        return ModelSource(p)
    raise ModelNotFound(f"{what} {path} does not exist on this worker.")


def base_and_tokenizer(settings: TrainSettings) -> tuple[ModelSource, PreTrainedTokenizerBase]:
    """The base model's source (checked first, so its error names it) and the tokenizer."""
    source = resolve_model(settings.base_model, "base model")
    tok_source = resolve_model(settings.tokenizer, "tokenizer") if settings.tokenizer else source
    return source, load_tokenizer(tok_source)


def load_tokenizer(source: ModelSource) -> PreTrainedTokenizerBase:
    """The tokenizer, with a pad token (the EOS token when the model has none)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(source.folder), **source.kwargs())
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"no tokenizer could be loaded from {source.label}: {exc}") from exc
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise ModelNotFound(
                f"the tokenizer of {source.label} has neither a pad nor an EOS token."
            )
        tok.pad_token = tok.eos_token
    return tok


def torch_dtype(precision: Precision) -> torch.dtype:
    """The dtype weights are loaded in: bf16 runs keep bf16 weights; fp16 runs keep fp32 masters."""
    import torch

    return torch.bfloat16 if resolve_precision(precision) is Precision.bf16 else torch.float32


def resolve_precision(precision: Precision) -> Precision:
    """`auto`: bf16 on a GPU that supports it, fp32 elsewhere (CPUs train fp32)."""
    if precision is not Precision.auto:
        return precision
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return Precision.bf16
    return Precision.fp32


def load_model(
    auto_class: Any, source: ModelSource, precision: Precision, **kwargs: Any
) -> PreTrainedModel:
    """`auto_class.from_pretrained` on the source, as a clear ModelNotFound when it fails."""
    if source.gguf_file:
        kwargs.update(_gguf_dense(source.gguf_file))
    try:
        model: PreTrainedModel = auto_class.from_pretrained(
            str(source.folder), dtype=torch_dtype(precision), **source.kwargs(), **kwargs
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelNotFound(
            f"{source.label} could not be loaded as {auto_class.__name__}: {exc}"
        ) from exc
    quantizer = getattr(model, "hf_quantizer", None)
    if source.gguf_file and quantizer is not None:
        # The weights are dense tensors now; without the marker the model trains and saves
        # like any other (the Trainer refuses "quantized" models outright).
        quantizer.remove_quantization_config(model)
    return model


def _gguf_dense(gguf_file: str) -> dict[str, Any]:
    """Ask transformers to unpack every GGUF weight into a dense tensor: training needs them so.
    (transformers 5 can keep quantized blocks for inference; earlier versions always unpack.)"""
    try:
        from transformers import GgufConfig
    except ImportError:
        return {}
    return {"quantization_config": GgufConfig(gguf_file=gguf_file, dequantize=True)}


def match_tokenizer(model: PreTrainedModel, tok: PreTrainedTokenizerBase) -> None:
    """Tell the model the tokenizer's pad/EOS ids (sequence scoring finds the last real token)."""
    config = model.config
    config.pad_token_id = tok.pad_token_id
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = tok.pad_token_id
        if tok.eos_token_id is not None:
            model.generation_config.eos_token_id = tok.eos_token_id


def load_causal_lm(
    path: str, tok: PreTrainedTokenizerBase, precision: Precision, what: str = "policy"
) -> PreTrainedModel:
    """A policy (or reference) language model that agrees with `tok` on pad and EOS."""
    from transformers import AutoModelForCausalLM

    model = load_model(AutoModelForCausalLM, resolve_model(path, what), precision)
    match_tokenizer(model, tok)
    return model


def disable_dropout(model: Any) -> None:
    """Reward models train without dropout (as TRL's RewardTrainer does): its noise only blurs
    the small score differences the loss compares."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def peft_config(lora: Lora | None, task_type: str) -> Any:
    """A peft.LoraConfig (task_type: CAUSAL_LM, SEQ_CLS or TOKEN_CLS), or None without LoRA."""
    if lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type=task_type,
    )


def with_lora(model: PreTrainedModel, lora: Lora | None, task_type: str) -> Any:
    """The model wrapped in LoRA adapters (the heads of classifiers stay fully trainable)."""
    config = peft_config(lora, task_type)
    if config is None:
        return model
    from peft import get_peft_model

    return get_peft_model(model, config)


def unwrap_for_saving(model: Any, lora: Lora | None) -> Any:
    """Merged weights (a plain model) unless the config keeps adapters apart."""
    from peft import PeftModel

    if isinstance(model, PeftModel) and (lora is None or lora.merge):
        return model.merge_and_unload()
    return model
