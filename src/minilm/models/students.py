"""Students: a smaller model of the teacher's family, shaped by a `Student` section, started at random, from
teacher layers, or from a model directory.

The student keeps the teacher's vocabulary, positions and architecture; `student_config` changes depth, width,
heads and feed-forward width only, and refuses a student larger than its teacher. `auto` initialisation copies
evenly spaced teacher layers (the top one last) where the shapes allow it (`resolve_init`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from minilm.config.sections import Student
from minilm.errors import MiniLMError, require
from minilm.models.heads import HEADS
from minilm.models.loading import encoder_layers, load_encoder, load_tokenizer


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
