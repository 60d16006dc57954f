"""Sentence embeddings as sentence-transformers computes them: the teacher's pipeline, pooled embeddings, and the
sentence-transformers layout of a student.

A sentence-transformers model directory holds `modules.json` (Transformer -> Pooling -> [Dense] -> [Normalize])
beside the Hugging Face files. `pipeline_of` reads its pooling (mean, cls, max or mean_sqrt_len_tokens over the
real tokens, as `sentence_transformers.models.Pooling` computes them) and whether it normalises; a plain
Hugging Face encoder is given mean pooling without normalisation. `embed` is the differentiable embedding a
training step needs (equal to `SentenceTransformer.encode` to float rounding: tests/test_sentence.py);
`save_sentence_transformer` writes a student in the teacher's layout with sentence-transformers itself, so
that `SentenceTransformer(student_dir)` loads it and `AutoModel` still does; `SentenceEncoder` gives a model's
embeddings as its users get them (`tasks.scoring.zero_shot_sts` scores them on STS pairs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from minilm.config.sections import SENTENCE_MAX_LENGTH
from minilm.errors import MiniLMError, require
from minilm.models.architectures import inputs_for
from minilm.models.model_files import read_json, remedy

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len_tokens")
_LEGACY_POOLING = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
                   "pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens"}
_SUPPORTED_MODULES = ("Transformer", "StaticEmbedding", "Pooling", "Normalize")


@dataclass(frozen=True)
class Pipeline:
    """How a model's token states become a sentence embedding."""

    pooling: tuple[str, ...] = ("mean",)  # several modes are concatenated, as sentence-transformers does
    normalize: bool = False
    max_seq_length: int | None = None
    sentence_transformer: bool = False  # the directory is a sentence-transformers model
    modules: tuple[str, ...] = ("Transformer", "Pooling")

    def check_computable(self, name: str) -> None:
        """`embed` computes Transformer -> Pooling -> [Normalize] pipelines (and a static model's StaticEmbedding
        -> [Normalize], its mean over the tokens `Family.pooling_mask` keeps); anything else (a Dense layer of the
        model's own, ...) it would get wrong, so it is refused."""
        unknown = [k for k in self.modules if k not in _SUPPORTED_MODULES]
        require(not unknown, f"the sentence-transformers model '{name}' has {', '.join(unknown)} modules; the "
                             "embedding objective reads Transformer, Pooling and Normalize pipelines")


def pipeline_of(name: str) -> Pipeline:
    """The sentence pipeline of a model directory (or packaged model): its own when it is a sentence-transformers
    model, else mean pooling without normalisation."""
    from minilm.models.loading import resolve_model_path

    path = Path(resolve_model_path(name))
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return Pipeline()
    modules = read_json(modules_file)
    try:
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    except (KeyError, TypeError, AttributeError):
        raise MiniLMError(f"{modules_file} is not a sentence-transformers modules list") from None
    pooling = ("mean",)
    for module in modules:
        if module["type"].endswith("Pooling"):
            pooling = _pooling_modes(path / module["path"] / "config.json")
    # Earlier sentence-transformers wrote the length into sentence_bert_config.json, 6.x into the tokenizer's config.
    max_seq_length = None
    for file, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length")):
        if max_seq_length is None and (path / file).is_file():
            settings = read_json(path / file, path)
            require(isinstance(settings, dict), f"{path / file} is damaged: not a JSON object; {remedy(path)}")
            max_seq_length = settings.get(key)
    return Pipeline(pooling, "Normalize" in kinds, max_seq_length, True, tuple(kinds))


def _pooling_modes(config_file: Path) -> tuple[str, ...]:
    config = read_json(config_file, config_file.parent.parent) if config_file.is_file() else {}
    require(isinstance(config, dict),
            f"{config_file} is damaged: not a JSON object; {remedy(config_file.parent.parent)}")
    if "pooling_mode" in config:  # sentence-transformers 5.x and later
        modes = config["pooling_mode"]
        modes = (modes,) if isinstance(modes, str) else tuple(modes)
    else:  # the boolean keys that earlier versions wrote
        modes = tuple(mode for key, mode in _LEGACY_POOLING.items() if config.get(key))
    unknown = [m for m in modes if m not in POOLING_MODES]
    require(modes and not unknown, f"{config_file}: pooling {', '.join(unknown) or 'none'} is not one minilm computes "
                                   f"({', '.join(POOLING_MODES)})")
    return modes


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, modes: tuple[str, ...] = ("mean",)) -> torch.Tensor:
    """Sentence vectors from token states, over the real tokens only (padding never changes them).

    hidden: (batch, seq, width); attention_mask: (batch, seq). Returns (batch, width x len(modes)) float32:
    mean (sum over real tokens / their count), cls (the first token), max (over real tokens), mean_sqrt_len_tokens
    (sum / sqrt(count)), concatenated in the order given.
    """
    hidden = hidden.float()
    mask = attention_mask.to(torch.float32)[..., None]
    count = mask.sum(1).clamp(min=1e-9)
    vectors = []
    for mode in modes:
        if mode == "cls":
            vectors.append(hidden[:, 0])
        elif mode == "max":
            vectors.append(hidden.masked_fill(mask == 0, float("-inf")).max(1).values)
        else:
            total = (hidden * mask).sum(1)
            vectors.append(total / (count if mode == "mean" else count.sqrt()))
    return torch.cat(vectors, -1)


def embed(hidden: torch.Tensor, attention_mask: torch.Tensor, pipeline: Pipeline,
          projection: nn.Module | None = None) -> torch.Tensor:
    """The sentence embedding of `pipeline` (pool, then an optional projection, then L2 normalisation when the
    pipeline normalises): (batch, width) float32, differentiable."""
    vectors = pool(hidden, attention_mask, pipeline.pooling)
    if projection is not None:
        vectors = projection(vectors)
    return F.normalize(vectors, p=2, dim=-1) if pipeline.normalize else vectors


def sentence_modules():
    """sentence-transformers' module classes (Transformer, Pooling, Dense, Normalize): 6.3 moved them and deprecated
    the old path, which 6.2 still needs."""
    try:
        from sentence_transformers.sentence_transformer import modules
    except ImportError:
        from sentence_transformers import models as modules
    return modules


PORTABLE_MODULES = ("Transformer", "StaticEmbedding", "Pooling", "Dense", "Normalize")


def portable_modules(directory: Path) -> None:
    """Name the modules of a sentence-transformers directory's `modules.json` as every sentence-transformers
    version reads them (`sentence_transformers.models.Pooling`): 6.x writes its own module paths, which 5.x, the
    version optimum's ONNX backend runs with, cannot import; 6.x reads the old names too."""
    import json

    path = Path(directory) / "modules.json"
    if not path.is_file():
        return
    listed = json.loads(path.read_text())
    for module in listed:
        name = str(module.get("type", "")).rsplit(".", 1)[-1]
        if name in PORTABLE_MODULES:
            module["type"] = f"sentence_transformers.models.{name}"
    path.write_text(json.dumps(listed, indent=2))


def save_sentence_transformer(model_dir: Path, pipeline: Pipeline, projection: nn.Linear | None = None) -> None:
    """Rewrite the Hugging Face model in `model_dir` as a sentence-transformers model with `pipeline` (the teacher's):
    Transformer (its max_seq_length) -> Pooling (its modes) -> Dense (the trained projection, when the student's
    width differs from the teacher's) -> Normalize (when the teacher has one). A static student's first module is
    a `StaticEmbedding` at the directory's root instead (its `embedding.weight` and `tokenizer.json` are the ones
    saved there), whatever the teacher pools by. Written beside, then renamed."""
    import json
    import shutil

    from sentence_transformers import SentenceTransformer
    from transformers import AutoConfig, AutoTokenizer

    from minilm.data.files import write_directory
    from minilm.models.architectures import family_of

    models = sentence_modules()
    model_dir = Path(model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    static = family_of(config).sentence_module == "StaticEmbedding"
    if static:
        from safetensors.torch import load_file

        weights = load_file(model_dir / "model.safetensors")["embedding.weight"]
        modules = [models.StaticEmbedding(AutoTokenizer.from_pretrained(model_dir), embedding_weights=weights)]
    else:
        pipeline.check_computable(str(model_dir))
        transformer = models.Transformer(str(model_dir), max_seq_length=pipeline.max_seq_length)
        modules = [transformer, models.Pooling(config.hidden_size, pooling_mode=pipeline.pooling)]
    if projection is not None:
        modules.append(models.Dense(projection.in_features, projection.out_features, bias=projection.bias is not None,
                                    activation_function=nn.Identity(), init_weight=projection.weight.detach().cpu(),
                                    init_bias=None if projection.bias is None else projection.bias.detach().cpu()))
    if pipeline.normalize:
        modules.append(models.Normalize())

    def write(tmp: Path) -> None:
        SentenceTransformer(modules=modules, device="cpu").save(str(tmp))
        if static:  # the StaticEmbedding module at the root, beside the model's own files (its config and plan)
            listed = json.loads((tmp / "modules.json").read_text())
            if listed[0]["path"]:  # sentence-transformers versions that put it in a folder of its own
                for file in (tmp / listed[0]["path"]).iterdir():
                    shutil.move(str(file), tmp / file.name)
                (tmp / listed[0]["path"]).rmdir()
                listed[0]["path"] = ""
                (tmp / "modules.json").write_text(json.dumps(listed, indent=2))
            for file in model_dir.iterdir():
                if file.is_file() and not (tmp / file.name).exists():
                    shutil.copy2(file, tmp / file.name)
        portable_modules(tmp)
    write_directory(model_dir, write, "the sentence-transformers model")


class SentenceEncoder:
    """Sentence embeddings of a model directory as its users get them: `SentenceTransformer.encode` for a
    sentence-transformers model, else the encoder with mean pooling (`embed`). `rate` is sentences/s.

    `model`: something called like the directory's encoder in place of its PyTorch weights (an exported graph,
    `deploy.onnx_model.OnnxModel`, on the CPU): a pooled graph's `sentence_embedding` is taken as it is, a
    token-level graph's `last_hidden_state` pooled with the directory's pipeline; sentences are cut at the
    pipeline's max_seq_length where it has one, as `SentenceTransformer.encode` cuts them."""

    def __init__(self, name: str, device, max_length: int = SENTENCE_MAX_LENGTH, model=None, say=print):
        from minilm.models.loading import load_encoder, load_tokenizer, resolve_model_path

        self.pipeline, self.device = pipeline_of(name), torch.device(device)
        self.graph = model is not None
        if not self.pipeline.sentence_transformer:  # a choice made for the user: said, not silent
            say(f"{name} is not a sentence-transformers model (no modules.json): its sentence embeddings are the "
                "mean of its token states over the real tokens, not normalised")
        if self.graph:
            self.model, self.tokenizer = model, load_tokenizer(name)
            self.max_length = self.pipeline.max_seq_length or max_length
        elif self.pipeline.sentence_transformer:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(resolve_model_path(name), device=str(self.device))
        else:
            self.model = load_encoder(name).to(self.device).eval()
            self.tokenizer, self.max_length = load_tokenizer(name), max_length

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if self.pipeline.sentence_transformer and not self.graph:
            return self.model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        out = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt").to(self.device)
            result = self.model(**inputs_for(self.model, batch))
            vectors = getattr(result, "sentence_embedding", None)
            if vectors is None:
                vectors = embed(result.last_hidden_state, batch["attention_mask"], self.pipeline)
            out.append(vectors.float().cpu().numpy())
        return np.concatenate(out)

    def rate(self, texts: list[str], batch_size: int = 32, repeats: int = 3) -> float:
        """Sentences/s at `batch_size`: the best of `repeats` passes after a warm-up batch."""
        self.encode(texts[:batch_size], batch_size)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            self.encode(texts, batch_size)
            best = min(best, time.perf_counter() - start)
        return len(texts) / best
