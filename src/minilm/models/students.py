"""Students: a smaller model of the teacher's family, shaped by a `Student` section, started at random, from
teacher layers, pruned from the teacher's weights (`models.pruning`), or from a model directory.

The student keeps the teacher's vocabulary, positions and architecture family; `student_config` changes depth,
width, heads and feed-forward width only (by the family's adapter, `architectures`), and refuses a student larger
than its teacher (a model that `student_init` names too). `auto` initialisation copies evenly spaced teacher layers
(the top one last) where the width, heads and FFN are the teacher's, and prunes where the student keeps whole heads
of the teacher's head size and is nowhere wider (`resolve_init`).
"""

from __future__ import annotations

import torch
from torch import nn

from minilm.config.sections import DEFAULT_STUDENT_HIDDEN, DEFAULT_STUDENT_LAYERS, SHAPE_SETTINGS, Student
from minilm.errors import require
from minilm.models.architectures import Shape, family_of
from minilm.models.architectures.base import copy_module
from minilm.models.heads import HEADS
from minilm.models.loading import attention_implementation, load_encoder, load_model_config, load_tokenizer


def student_shape(student: Student, teacher_config) -> Shape:
    """The new student's depth, width, heads and feed-forward width: as given, else 3 layers, 384 wide, whole heads
    of the teacher's head size, and the teacher's feed-forward width per unit of width (4 x for BERT's kind)."""
    layers = student.student_layers or DEFAULT_STUDENT_LAYERS
    hidden = student.student_hidden or DEFAULT_STUDENT_HIDDEN
    heads = student.student_heads
    if heads is None:
        size = family_of(teacher_config).config_head_size(teacher_config)
        require(hidden % size == 0, f"student_hidden {hidden} is not a whole number of the teacher's heads (of size "
                                    f"{size}): give --student-heads, or a width that is a multiple of {size}")
        heads = hidden // size
    require(hidden % heads == 0, f"student_hidden {hidden} is not divisible by student_heads {heads}")
    teacher = family_of(teacher_config).shape(teacher_config)
    return Shape(layers, hidden, heads, student.student_ffn or hidden * teacher.ffn // teacher.hidden)


def check_init_model_shape(student: Student, config) -> None:
    """A model that student_init names is trained as it is: shape flags that disagree with it are refused, not
    ignored."""
    shape = family_of(config).shape(config)
    have = dict(zip(SHAPE_SETTINGS, (shape.layers, shape.hidden, shape.heads, shape.ffn)))
    wrong = [f"--{name.replace('_', '-')} {getattr(student, name)}" for name in SHAPE_SETTINGS
             if getattr(student, name) is not None and getattr(student, name) != have[name]]
    require(not wrong, f"student_init {student.student_init} is a {shape.layers}x{shape.hidden} model ({shape.heads} "
                       f"heads, FFN {shape.ffn}) and is trained as it is, but {', '.join(wrong)} asks for another "
                       "shape: leave out the shape flags, or leave out --student-init to make a new student")


def student_config(teacher_config, student: Student, dropout: float, teacher_layers: list[int] | None = None):
    """The teacher's config with the student's depth, width, heads and feed-forward width (the family's own
    names for them: `architectures`); vocabulary, positions and everything else stay the teacher's. A student
    larger than its teacher is refused. `teacher_layers`: the teacher layers it will copy (ModernBERT keeps each
    copied layer's attention type)."""
    family = family_of(teacher_config)
    shape = student_shape(student, teacher_config)
    config = family.student_config(teacher_config, shape, dropout, teacher_layers)
    check_not_larger(config, teacher_config)
    return config


def check_not_larger(config, teacher_config) -> None:
    """The size rule, for every way a student is made: no more parameters than its teacher."""
    shape = family_of(config).shape(config)
    size, teacher = encoder_size(config), encoder_size(teacher_config)
    require(size <= teacher,
            f"the student ({shape.layers}x{shape.hidden}, FFN {shape.ffn}: {size / 1e6:,.1f}M parameters) would be "
            f"larger than its teacher ({teacher / 1e6:,.1f}M); a student compresses its teacher: lower "
            "--student-layers, --student-hidden or --student-ffn, or start from a smaller model")


def encoder_size(config) -> int:
    """Parameters of the encoder a config builds, counted exactly without allocating anything: models of one, two
    and three layers are built on the meta device, and the depth asked for is the one-layer model plus the third
    layer's count per layer beyond the first (a first layer may differ: ModernBERT's has no attention norm)."""
    from transformers import AutoModel

    family = family_of(config)
    depth = family.shape(config).layers

    def size(layers: int) -> int:
        with torch.device("meta"):
            model = AutoModel.from_config(family.with_depth(config, layers))
        return sum(p.numel() for p in model.parameters())

    if depth <= 3:
        return size(depth)
    first, per_layer = size(1), size(3) - size(2)
    return first + (depth - 1) * per_layer


def default_init_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """Evenly spaced 1-based teacher layers ending at the top one: 6 -> 3 gives [2, 4, 6]."""
    return [round((i + 1) * teacher_layers / student_layers) for i in range(student_layers)]


def init_layers(student: Student, teacher_config) -> list[int]:
    """The 1-based teacher layers a teacher-layer initialisation copies: as given, else evenly spaced."""
    teacher_depth = family_of(teacher_config).shape(teacher_config).layers
    return student.student_init_layers or default_init_layers(teacher_depth,
                                                              student_shape(student, teacher_config).layers)


def copy_teacher_layers(student: nn.Module, teacher: nn.Module, teacher_layers: list[int]) -> list[str]:
    """Initialise the student's embeddings, blocks and the family's shared modules (position biases, pooler, final
    norm) from the given 1-based teacher layers, and a task head of the same shape from the teacher's; returns what
    a run should be told about the copy."""
    family = family_of(teacher)
    s_layers, t_layers = family.layers(student), family.layers(teacher)
    require(len(teacher_layers) == len(s_layers),
            f"student_init_layers names {len(teacher_layers)} layers but the student has {len(s_layers)}")
    for j in teacher_layers:
        require(1 <= j <= len(t_layers), f"student_init_layers: teacher has no layer {j} (it has {len(t_layers)})")
    pairs = family.copy_pairs(student, teacher, teacher_layers)
    for name in ("classifier", "qa_outputs"):  # a task head of the same shape: the fine-tuned one is the better start
        if student is not student.base_model and teacher is not teacher.base_model and hasattr(student, name) \
                and hasattr(teacher, name) and student.config.num_labels == teacher.config.num_labels:
            pairs.append((getattr(student, name), getattr(teacher, name), name))
    with torch.no_grad():
        for dst, src, what in pairs:
            copy_module(dst, src, what)
    return family.copy_notes(student, teacher, teacher_layers)


def resolve_init(student: Student, teacher_config) -> str:
    """teacher, prune, random, or the model student_init names. `auto`: a teacher-layer copy where the student's
    width, heads and feed-forward width are the teacher's (the copy needs equal shapes), else pruning where it
    keeps whole heads of the teacher's head size and is nowhere wider, else random."""
    if student.student_init != "auto":
        return student.student_init
    teacher = family_of(teacher_config).shape(teacher_config)
    shape = student_shape(student, teacher_config)
    if (shape.hidden, shape.heads, shape.ffn) == (teacher.hidden, teacher.heads, teacher.ffn):
        return "teacher"
    return "prune" if not prune_obstacle(shape, teacher_config) else "random"


def prune_obstacle(shape: Shape, teacher_config) -> str | None:
    """Why a student of `shape` cannot be pruned from the teacher, or None when it can: it keeps whole heads of the
    teacher's head size and none of its depth, width, heads or FFN exceeds the teacher's."""
    family = family_of(teacher_config)
    teacher, head_size = family.shape(teacher_config), family.config_head_size(teacher_config)
    wider = [f"{what} {mine} > {theirs}" for what, mine, theirs in (
        ("layers", shape.layers, teacher.layers), ("width", shape.hidden, teacher.hidden),
        ("heads", shape.heads, teacher.heads), ("FFN", shape.ffn, teacher.ffn)) if mine > theirs]
    if wider:
        return f"the student is larger than its teacher ({', '.join(wider)}): pruning only removes"
    if shape.hidden != shape.heads * head_size:
        return (f"{shape.heads} heads of width {shape.hidden} are heads of size {shape.hidden // shape.heads}, and "
                f"pruning keeps whole heads of the teacher's size ({head_size}): leave out --student-heads, or give "
                f"{shape.hidden // head_size if shape.hidden % head_size == 0 else 'a width that is a multiple of'}"
                f"{'' if shape.hidden % head_size == 0 else f' {head_size}'}")
    return None


def student_from_teacher(teacher: nn.Module, student: Student, dropout: float = 0.1, seed: int = 0,
                         num_labels: int | None = None, head: str | None = None,
                         attn_implementation: str | None = None, calibration=None, say=None) -> nn.Module:
    """A new student of the teacher's family sharing its vocabulary: random, teacher-layer or pruned
    initialisation (`resolve_init`). With `num_labels` (or `head`, as for `load_encoder`) it carries a task head (for
    task-specific distillation): a sequence classifier, or a question-answering head. `attn_implementation`: the
    family's fast path unless given (`loading.attention_implementation`). `calibration`: batches of the run's text
    that pruning measures the teacher on (`pruning.calibration_batches`); `say`: where notes on the start go.
    """
    import transformers

    from minilm.models import pruning

    init = resolve_init(student, teacher.config)
    layers = init_layers(student, teacher.config) if init in ("teacher", "prune") else None
    if init == "prune":
        obstacle = prune_obstacle(student_shape(student, teacher.config), teacher.config)
        require(obstacle is None, f"student_init prune: {obstacle}")
        require(calibration is not None, "student_init prune measures the teacher on text: pass calibration batches")
    config = student_config(teacher.config, student, dropout, layers)
    torch.manual_seed(seed)
    head = head or ("classification" if num_labels is not None else None)
    config.architectures = None
    if head == "classification":
        config.num_labels = num_labels
    model = getattr(transformers, HEADS[head]).from_config(
        config, attn_implementation=attn_implementation or attention_implementation(config))
    notes = []
    if init == "teacher":
        notes = copy_teacher_layers(model, teacher, layers)
    elif init == "prune":
        family = family_of(teacher)
        shape, full = family.shape(config), family.shape(teacher.config)
        kept = pruning.choose(pruning.measure_importance(teacher, calibration), [j - 1 for j in layers],
                              shape.hidden, shape.heads, shape.ffn, family.uniform_heads)
        pruning.prune_into(model, teacher, kept)
        model.pruned_channels = kept.hidden  # where its channels sit in the teacher's (`objectives.embedding`)
        examples = sum(len(batch["input_ids"]) for batch in calibration)
        notes = [f"pruned from teacher layers {', '.join(map(str, layers))}: the most active {shape.hidden} of "
                 f"{full.hidden} channels, {shape.heads} of {full.heads} heads and {shape.ffn} of {full.ffn} FFN "
                 f"neurons per layer, measured on {examples} examples of the run's text"]
        notes += family.copy_notes(model, teacher, layers)
    for note in notes if say else []:
        say(note)
    return model


def build_student(student: Student, teacher: nn.Module, tokenizer, dropout: float, seed: int,
                  num_labels: int | None = None, head: str | None = None, reads_its_own_text: bool = False,
                  calibration=None, say=None) -> nn.Module:
    """The student a `Student` section asks for: new (`student_from_teacher`) or, when `student_init` names a
    model (a directory or packaged:NAME), that model, as it is (shape flags that disagree are refused), no larger
    than its teacher, sharing the teacher's tokenizer unless `reads_its_own_text` (sentence-level objectives only:
    `own_tokenizer_of`)."""
    if student.new_model:
        return student_from_teacher(teacher, student, dropout, seed, num_labels, head, calibration=calibration,
                                    say=say)
    config = load_model_config(student.student_init)
    check_init_model_shape(student, config)
    check_not_larger(config, teacher.config)
    if not reads_its_own_text:
        check_same_tokenizer(tokenizer, load_tokenizer(student.student_init))
    return load_encoder(student.student_init, num_labels=num_labels, head=head)


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
