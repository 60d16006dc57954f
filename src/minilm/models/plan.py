"""A student's plan: what the student is and where it came from, decided once and saved with its weights.

`plan_student` decides it from the `Student` settings, the teacher and the run's own text: the shape (given, the
default, or the one `--speedup` chose from a `SpeedTable`), the start (`resolve_init`: teacher layers, pruning,
random, or a model to start from), the teacher layers kept and, for a pruned start, the heads, FFN neurons and
hidden channels kept (`models.pruning`, measured on a few batches of the run's text). `students.build_student` then
builds exactly that, and writes the plan into the student's config (`config.minilm_plan`, as transformers keeps
`pruned_heads` there), so that every copy of the student carries it: checkpoints, the final model, its
sentence-transformers layout, its export. Whoever starts from a saved student reads it back (`read_plan`): a
resumed run (the checkpoint's plan, never a new choice), `--student-init DIR`, the next step of a teacher-assistant
chain (its teacher's plan, `teacher_plan`), and the embedding objective (its projection starts at the kept
channels of the teacher the plan was made against, `channels_in`).

Kept units are the teacher's indices, written as hexadecimal bit masks over the teacher's units (`index_mask`), so
that a plan stays a few lines of config.json even for thousands of FFN neurons.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from minilm.config.sections import (DEFAULT_STUDENT_HIDDEN, DEFAULT_STUDENT_LAYERS, SHAPE_SETTINGS, STATIC_WIDTH,
                                    STUDENT_INITS, Student)
from minilm.errors import MiniLMError, require
from minilm.models.architectures import Shape, family_of
from minilm.models.speed_table import SHAPES_FILE, SpeedTable

PLAN_KEY = "minilm_plan"  # the key of the plan in a student's config.json
PLAN_FORMAT = 1


# -- kept units as bit masks ------------------------------------------------------------------------------------

def index_mask(indices, size: int) -> str:
    """Indices of `size` units as a hexadecimal bit mask (unit i is bit i, least significant first)."""
    value = 0
    for i in indices:
        value |= 1 << int(i)
    return f"{value:0{(size + 3) // 4}x}"


def mask_indices(mask: str) -> list[int]:
    """The ascending indices an `index_mask` holds."""
    value = int(mask, 16)
    return [i for i in range(value.bit_length()) if value >> i & 1]


@dataclass
class KeptUnits:
    """What a pruned student keeps of its teacher, in the teacher's indices (ascending): the hidden channels, and
    per student layer the teacher's heads and FFN neurons (`models.pruning.Kept` as plain lists)."""

    hidden: list[int]
    heads: list[list[int]]
    ffn: list[list[int]]

    def to_dict(self, teacher: Shape) -> dict[str, Any]:
        return {"hidden": index_mask(self.hidden, teacher.hidden),
                "heads": [index_mask(h, teacher.heads) for h in self.heads],
                "ffn": [index_mask(f, teacher.ffn) for f in self.ffn]}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "KeptUnits":
        return cls(mask_indices(record["hidden"]), [mask_indices(h) for h in record["heads"]],
                   [mask_indices(f) for f in record["ffn"]])


# -- the rules of a student's shape and start -------------------------------------------------------------------

def student_shape(student: Student, teacher_config) -> Shape:
    """The new student's depth, width, heads and feed-forward width: as given, else 3 layers, 384 wide, whole heads
    of the teacher's head size, and the teacher's feed-forward width per unit of width (4 x for BERT's kind). A
    student of 0 layers is static: its width alone (256 when not given, at most the teacher's), no heads, no FFN."""
    family = family_of(teacher_config)
    teacher = family.shape(teacher_config)
    layers = DEFAULT_STUDENT_LAYERS if student.student_layers is None else student.student_layers
    if layers == 0:
        require(student.student_heads is None and student.student_ffn is None,
                "a static student (student_layers 0) has no attention heads or feed-forward layers: leave out "
                "--student-heads and --student-ffn")
        return Shape(0, student.student_hidden or min(STATIC_WIDTH, teacher.hidden), 0, 0)
    hidden = student.student_hidden or DEFAULT_STUDENT_HIDDEN
    heads = student.student_heads
    if heads is None:
        size = family.head_size(teacher_config)
        require(hidden % size == 0, f"student_hidden {hidden} is not a whole number of the teacher's heads (of size "
                                    f"{size}): give --student-heads, or a width that is a multiple of {size}")
        heads = hidden // size
    require(hidden % heads == 0, f"student_hidden {hidden} is not divisible by student_heads {heads}")
    return Shape(layers, hidden, heads, student.student_ffn or hidden * teacher.ffn // teacher.hidden)


def resolve_init(student: Student, teacher_config) -> str:
    """teacher, prune, random, static, or the model student_init names; `auto` as `--student-init`'s help states
    the rule (the copy needs equal shapes; pruning keeps whole heads of the teacher's head size: `prune_obstacle`)."""
    shape = student_shape(student, teacher_config)
    if shape.layers == 0:  # a static student starts from the teacher's per-token outputs, whatever else was asked
        require(student.student_init in ("auto", "static"),
                f"a static student (student_layers 0) starts from the teacher's outputs for each token; "
                f"student_init {student.student_init} starts a student with layers: leave out --student-init")
        return "static"
    require(student.student_init != "static", "student_init static makes a static student: give --student-layers 0")
    if student.student_init != "auto":
        return student.student_init
    teacher = family_of(teacher_config).shape(teacher_config)
    if (shape.hidden, shape.heads, shape.ffn) == (teacher.hidden, teacher.heads, teacher.ffn):
        return "teacher"
    return "prune" if not prune_obstacle(shape, teacher_config) else "random"


def prune_obstacle(shape: Shape, teacher_config) -> str | None:
    """Why a student of `shape` cannot be pruned from the teacher, or None when it can: it keeps whole heads of the
    teacher's head size and none of its depth, width, heads or FFN exceeds the teacher's."""
    family = family_of(teacher_config)
    teacher, head_size = family.shape(teacher_config), family.head_size(teacher_config)
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


def default_init_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """Evenly spaced 1-based teacher layers ending at the top one: 6 -> 3 gives [2, 4, 6]."""
    return [round((i + 1) * teacher_layers / student_layers) for i in range(student_layers)]


def init_layers(student: Student, teacher_config) -> list[int]:
    """The 1-based teacher layers a teacher-layer or pruned start keeps: as given, else evenly spaced."""
    teacher_depth = family_of(teacher_config).shape(teacher_config).layers
    layers = student.student_init_layers or default_init_layers(teacher_depth,
                                                                student_shape(student, teacher_config).layers)
    require(len(layers) == student_shape(student, teacher_config).layers,
            f"student_init_layers names {len(layers)} layers but the student has "
            f"{student_shape(student, teacher_config).layers}")
    for j in layers:
        require(1 <= j <= teacher_depth, f"student_init_layers: teacher has no layer {j} (it has {teacher_depth})")
    return layers


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


# -- the plan ---------------------------------------------------------------------------------------------------

@dataclass
class TeacherId:
    """The teacher a plan was made against: its name as given, its width, and a digest of its files
    (`models.fingerprint`), so that kept channels are only read against the model they index."""

    name: str
    width: int
    files: str

    @classmethod
    def of(cls, name: str, config, files: dict[str, str]) -> "TeacherId":
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16] if files else ""
        return cls(name, family_of(config).shape(config).hidden, digest)

    def same_model(self, other: "TeacherId") -> bool:
        """The same files (a hub id, which has no files here, by its name)."""
        return (self.files == other.files and bool(self.files)) or (not self.files and not other.files
                                                                     and self.name == other.name)


@dataclass
class StudentPlan:
    """What a student is and where it came from (module docstring).

    shape: depth, width, heads, FFN width. start: teacher (layers copied), prune (units kept), random, or model (the
    model `init_model` names, trained as it is). teacher_layers: the 1-based teacher layers a copied or pruned
    student keeps, one per student layer. kept: a pruned student's units. calibration: the text pruning measured
    on, in words. speed: the table `--speedup` chose the shape from (`SpeedTable`), None when the shape was given.
    teacher_plan: the teacher's own plan, when minilm made the teacher (a teacher-assistant chain). init_plan: for
    start model, that model's own plan."""

    shape: Shape
    start: str
    teacher: TeacherId
    teacher_layers: list[int] | None = None
    kept: KeptUnits | None = None
    init_model: str | None = None
    calibration: str | None = None
    speed: SpeedTable | None = None
    teacher_plan: dict | None = None
    init_plan: dict | None = None
    static: dict | None = None  # a static student's start: its special tokens, PCA and weighting
    notes: list[str] = field(default_factory=list, compare=False)  # what a run is told of the start, once
    start_vectors: Any = field(default=None, compare=False, repr=False)  # a new static student's first vectors

    def channels_in(self, teacher: TeacherId) -> list[int] | None:
        """The teacher channels the student's channels are, when it was pruned from this very teacher (its own
        pruning, or the one of the model it started from); None otherwise."""
        plan = self
        if self.start == "model":
            plan = StudentPlan.from_dict(self.init_plan) if self.init_plan else None
        if plan is None or plan.kept is None or not plan.teacher.same_model(teacher):
            return None
        return plan.kept.hidden

    def describe(self) -> str:
        s = self.shape
        start = {"teacher": f"teacher layers {', '.join(map(str, self.teacher_layers or []))}",
                 "prune": f"pruned from teacher layers {', '.join(map(str, self.teacher_layers or []))}",
                 "random": "random", "model": f"the model {self.init_model}",
                 "static": "the teacher's output for each token (a static student)"}[self.start]
        return f"student: {s.layers}x{s.hidden}, {s.heads} heads, FFN {s.ffn}, start: {start}"

    def to_dict(self, teacher_shape: Shape) -> dict[str, Any]:
        """The plan as config.json keeps it (`teacher_shape`: the teacher's, for the kept units' masks)."""
        record = {"format": PLAN_FORMAT, "shape": asdict(self.shape), "start": self.start,
                  "teacher": asdict(self.teacher), "teacher_shape": asdict(teacher_shape),
                  "teacher_layers": self.teacher_layers, "init_model": self.init_model,
                  "calibration": self.calibration, "teacher_plan": self.teacher_plan, "init_plan": self.init_plan,
                  "static": self.static}
        if self.kept is not None:
            record["kept"] = self.kept.to_dict(teacher_shape)
        if self.speed is not None:
            row = self.speed.chosen_row
            record["speed"] = {"speedup": self.speed.speedup, "cpu": self.speed.cpu,
                               "measured": row.measured_speedup if row else None,
                               "predicted": row.predicted_speedup if row else None, "table": SHAPES_FILE}
        return {k: v for k, v in record.items() if v is not None}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "StudentPlan":
        require(isinstance(record, dict) and record.get("format") == PLAN_FORMAT,
                f"a student plan of another format ({record.get('format') if isinstance(record, dict) else record})")
        kept = KeptUnits.from_dict(record["kept"]) if "kept" in record else None
        return cls(Shape(**record["shape"]), record["start"], TeacherId(**record["teacher"]),
                   record.get("teacher_layers"), kept, record.get("init_model"), record.get("calibration"), None,
                   record.get("teacher_plan"), record.get("init_plan"), record.get("static"))


def read_plan(config) -> StudentPlan | None:
    """The plan a saved student's config holds, or None (a model minilm did not make); a damaged one is one line."""
    record = getattr(config, PLAN_KEY, None)
    if record is None:
        return None
    try:
        return StudentPlan.from_dict(record)
    except (MiniLMError, KeyError, TypeError, ValueError) as exc:
        raise MiniLMError(f"the student plan in {getattr(config, 'name_or_path', '') or 'the config'} is damaged "
                          f"({exc}); delete its '{PLAN_KEY}' entry from config.json to train it as a plain model"
                          ) from None


def write_plan(config, plan: StudentPlan, teacher_config) -> None:
    setattr(config, PLAN_KEY, plan.to_dict(family_of(teacher_config).shape(teacher_config)))


@dataclass
class RunText:
    """The run's own text as the teacher reads it, for a start measured on it: pruning's importances (`batches`:
    a few batches drawn with `seed`, or the `batches_given`), a static student's token weights (its token counts)
    and its first vectors (the teacher's `tokenizer` and sentence `pipeline`). `what` names the text. `examples`
    may be a function that makes them, called the first time a start reads them (`rows`)."""

    examples: Any
    tokenizer: Any
    seed: int = 0
    what: str = "the run's text"
    pipeline: Any = None
    batches_given: list | None = None

    @property
    def rows(self):
        if callable(self.examples):
            self.examples = self.examples()
        return self.examples

    def batches(self) -> list[dict]:
        from minilm.models.pruning import calibration_batches

        if self.batches_given is not None:
            return self.batches_given
        return calibration_batches(self.rows, self.tokenizer.pad_token_id, self.seed)


def plan_student(student: Student, teacher, teacher_id: TeacherId, text: RunText | None,
                 speed: SpeedTable | None = None) -> StudentPlan:
    """The plan of the student `student` asks for, against `teacher` (a model).

    `text`: the run's own text (read only when the start is measured on it: pruning, a static student); `speed`:
    the table `--speedup` chose the shape from (its `chosen` shape replaces the shape flags). A shape that cannot
    start as asked is refused in one line, before anything is built."""
    from minilm.models.loading import load_model_config

    config = teacher.config
    teacher_plan = getattr(config, PLAN_KEY, None)
    if not student.new_model:
        init_config = load_model_config(student.student_init)
        check_init_model_shape(student, init_config)
        check_not_larger(init_config, config)
        own = read_plan(init_config)
        return StudentPlan(family_of(init_config).shape(init_config), "model", teacher_id,
                           init_model=student.student_init, teacher_plan=teacher_plan,
                           init_plan=getattr(init_config, PLAN_KEY, None) if own else None)
    if speed is not None:
        require(speed.chosen is not None, speed.verdict())
        s = speed.chosen
        student = Student(student_layers=s.layers, student_hidden=s.hidden, student_heads=s.heads or None,
                          student_ffn=s.ffn or None, student_init=student.student_init,
                          student_init_layers=student.student_init_layers)
    shape = student_shape(student, config)
    start = resolve_init(student, config)
    assert start in STUDENT_INITS and start != "auto"
    if start == "static":
        return static_plan(shape, teacher, teacher_id, text, speed, teacher_plan)
    check_not_larger(family_of(config).student_config(config, shape, 0.0), config)
    layers = init_layers(student, config) if start in ("teacher", "prune") else None
    plan = StudentPlan(shape, start, teacher_id, layers, speed=speed, teacher_plan=teacher_plan)
    if student.student_init == "auto" and start == "random":  # a choice made for the user: said, not silent
        teacher_shape = family_of(config).shape(config)
        why = prune_obstacle(shape, config) or "its heads are not the teacher's"
        plan.notes.append(f"student_init auto: the student starts from random weights, since it cannot copy the "
                          f"teacher's layers (width, heads and FFN must be the teacher's {teacher_shape.hidden}, "
                          f"{teacher_shape.heads}, {teacher_shape.ffn}) nor be pruned from them ({why})")
    if start == "prune":
        from minilm.models import pruning

        obstacle = prune_obstacle(shape, config)
        require(obstacle is None, f"student_init prune: {obstacle}")
        require(text is not None, "student_init prune measures the teacher on text: pass the run's text")
        batches = text.batches()
        kept = pruning.choose(pruning.measure_importance(teacher, batches), [j - 1 for j in layers], shape.hidden,
                              shape.heads, shape.ffn, family_of(config).uniform_heads)
        plan.kept = KeptUnits(kept.hidden.tolist(), [h.tolist() for h in kept.heads], [f.tolist() for f in kept.ffn])
        full = family_of(config).shape(config)
        examples = sum(len(batch["input_ids"]) for batch in batches)
        plan.calibration = f"{examples} examples of {text.what}"
        plan.notes.append(f"pruned from teacher layers {', '.join(map(str, layers))}: the most active {shape.hidden} "
                          f"of {full.hidden} channels, {shape.heads} of {full.heads} heads and {shape.ffn} of "
                          f"{full.ffn} FFN neurons per layer, measured on {plan.calibration}")
    return plan


def static_plan(shape: Shape, teacher, teacher_id: TeacherId, text: RunText | None, speed, teacher_plan
                ) -> StudentPlan:
    """A static student's plan: its first vectors the teacher's output for each token alone, reduced to its width
    by PCA and weighted by each token's rarity in the run's text (`models.static`)."""
    from minilm.models import static

    teacher_width = family_of(teacher.config).shape(teacher.config).hidden
    require(shape.hidden <= teacher_width, f"a static student of width {shape.hidden} is wider than its teacher "
                                           f"({teacher_width}); its vectors come from the teacher's: give at most "
                                           f"--student-hidden {teacher_width}")
    require(text is not None and text.tokenizer is not None,
            "a static student starts from the teacher's output for each token: pass the run's text and tokenizer")
    specials = sorted(set(text.tokenizer.all_special_ids))
    from minilm.models.sentence import Pipeline, embed

    pipeline = text.pipeline or Pipeline()
    outputs = static.token_outputs(teacher, text.tokenizer, lambda hidden, mask: embed(hidden, mask, pipeline))
    counts = static.token_counts(text.rows, teacher.config.vocab_size) if text.examples is not None else None
    vectors, record = static.static_start(outputs, shape.hidden, counts, specials)
    plan = StudentPlan(shape, "static", teacher_id, speed=speed, teacher_plan=teacher_plan,
                       calibration=f"the token counts of {text.what}" if counts is not None else None,
                       static={**record, "special_ids": specials})
    plan.start_vectors = vectors
    weighting = f", weighted by a / (a + p), a = {record['sif_coefficient']:g}, p its share of {text.what}" \
        if counts is not None else ""
    plan.notes.append(f"static student: each of the {len(outputs):,} tokens' vectors starts as the teacher's output "
                      f"for it alone, reduced to {shape.hidden} dimensions by PCA "
                      f"({100 * record['pca_explained']:.1f}% of their variance){weighting}")
    return plan
