"""Students: the model a `StudentPlan` (`models.plan`) describes, built and started as it says.

The student keeps the teacher's vocabulary, positions and architecture family; its config changes depth, width,
heads and feed-forward width only (by the family's adapter, `architectures`). It starts at random, from teacher
layers, from the teacher's weights pruned to the kept units (`models.pruning`), or from the model the plan names,
and carries its plan in its config (`plan.write_plan`), so every copy of it says how it was made.
"""

from __future__ import annotations

import torch
from torch import nn

from minilm.config.sections import Student
from minilm.errors import require
from minilm.models.architectures import Shape, family_of
from minilm.models.architectures.base import copy_module
from minilm.models.heads import HEADS
from minilm.models.loading import attention_implementation, load_encoder, load_tokenizer
from minilm.models.plan import RunText, StudentPlan, TeacherId, check_not_larger, plan_student, write_plan


def student_config(teacher_config, shape: Shape, dropout: float, teacher_layers: list[int] | None = None):
    """The teacher's config with the student's depth, width, heads and feed-forward width (the family's own names
    for them: `architectures`); vocabulary, positions and everything else stay the teacher's. A student larger
    than its teacher is refused. `teacher_layers`: the teacher layers it keeps (ModernBERT keeps each one's
    attention type)."""
    config = family_of(teacher_config).student_config(teacher_config, shape, dropout, teacher_layers)
    check_not_larger(config, teacher_config)
    return config


def copy_teacher_layers(student: nn.Module, teacher: nn.Module, teacher_layers: list[int]) -> list[str]:
    """Initialise the student's embeddings, blocks and the family's shared modules (position biases, pooler, final
    norm) from the given 1-based teacher layers, and a task head of the same shape from the teacher's; returns what
    a run should be told about the copy."""
    family = family_of(teacher)
    pairs = family.copy_pairs(student, teacher, teacher_layers)
    for name in ("classifier", "qa_outputs"):  # a task head of the same shape: the fine-tuned one is the better start
        if student is not student.base_model and teacher is not teacher.base_model and hasattr(student, name) \
                and hasattr(teacher, name) and student.config.num_labels == teacher.config.num_labels:
            pairs.append((getattr(student, name), getattr(teacher, name), name))
    with torch.no_grad():
        for dst, src, what in pairs:
            copy_module(dst, src, what)
    return family.copy_notes(student, teacher, teacher_layers)


def build_student(plan: StudentPlan, teacher: nn.Module, dropout: float = 0.1, seed: int = 0,
                  num_labels: int | None = None, head: str | None = None, attn_implementation: str | None = None,
                  say=None) -> nn.Module:
    """The student `plan` describes, started as it says, its plan in its config. With `num_labels` (or `head`, as
    for `load_encoder`) it carries a task head (task-specific distillation): a sequence classifier, or a
    question-answering head. `attn_implementation`: the family's fast path unless given
    (`loading.attention_implementation`). `say`: where notes on the start go."""
    import transformers

    from minilm.models import pruning

    if plan.start == "model":
        model = load_encoder(plan.init_model, num_labels=num_labels, head=head)
    elif plan.start == "static":
        require(num_labels is None and head is None, "a static student is a sentence embedder: it takes no task head; "
                                                     "distil a student with layers for a task")
        model = static_student(plan, teacher.config)
    else:
        config = student_config(teacher.config, plan.shape, dropout, plan.teacher_layers)
        torch.manual_seed(seed)
        head = head or ("classification" if num_labels is not None else None)
        config.architectures = None
        if head == "classification":
            config.num_labels = num_labels
        model = getattr(transformers, HEADS[head]).from_config(
            config, attn_implementation=attn_implementation or attention_implementation(config))
    notes = list(plan.notes)
    if plan.start == "teacher":
        notes += copy_teacher_layers(model, teacher, plan.teacher_layers)
    elif plan.start == "prune":
        kept = pruning.Kept([j - 1 for j in plan.teacher_layers], torch.tensor(plan.kept.hidden),
                            [torch.tensor(h) for h in plan.kept.heads], [torch.tensor(f) for f in plan.kept.ffn])
        pruning.prune_into(model, teacher, kept)
        notes += family_of(teacher).copy_notes(model, teacher, plan.teacher_layers)
    write_plan(model.config, plan, teacher.config)
    for note in notes if say else []:
        say(note)
    return model


def static_student(plan: StudentPlan, teacher_config) -> nn.Module:
    """The static student of a plan, its vectors the plan's start (a new plan) or random (a resumed run's, whose
    weights come from its checkpoint)."""
    from minilm.models.static import StaticConfig, StaticModel

    config = StaticConfig(vocab_size=teacher_config.vocab_size, hidden_size=plan.shape.hidden,
                          special_ids=plan.static["special_ids"], pad_token_id=teacher_config.pad_token_id or 0)
    model = StaticModel(config)
    if plan.start_vectors is not None:
        with torch.no_grad():
            model.embedding.weight.copy_(torch.as_tensor(plan.start_vectors))
    return model


def student_from_teacher(teacher: nn.Module, student: Student, dropout: float = 0.1, seed: int = 0,
                         num_labels: int | None = None, head: str | None = None,
                         attn_implementation: str | None = None, calibration=None, say=None) -> nn.Module:
    """A new student of `teacher` as a `Student` section asks, planned and built in one call (a model made in
    memory, whose teacher has no files: `TeacherId` by name). `calibration`: batches pruning measures on."""
    teacher_id = TeacherId.of(getattr(teacher, "name_or_path", "") or "in memory", teacher.config, {})
    text = RunText(None, None, what="the calibration batches", batches_given=calibration) if calibration else None
    plan = plan_student(student, teacher, teacher_id, text)
    return build_student(plan, teacher, dropout, seed, num_labels, head, attn_implementation, say)


def own_tokenizer_of(student: Student, teacher_tokenizer):
    """The tokenizer of the model `student_init` names when it differs from the teacher's, else None."""
    if student.new_model:
        return None
    own = load_tokenizer(student.student_init)
    return None if own.get_vocab() == teacher_tokenizer.get_vocab() else own


def check_same_tokenizer(teacher_tok, student_tok) -> None:
    require(teacher_tok.get_vocab() == student_tok.get_vocab(),
            "teacher and student tokenizers differ; the student must share the teacher's vocabulary (or learn sentence "
            "embeddings alone: --objective embedding --examples sentence)")


def count_parameters(model: nn.Module, embeddings: bool = True) -> int:
    total = sum(p.numel() for p in model.parameters())
    if not embeddings:
        total -= sum(p.numel() for p in model.base_model.embeddings.parameters())
    return total
