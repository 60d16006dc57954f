"""The sections of settings that commands compose (training, student, objective, relations, corpus, task, ...).

Each section is a dataclass of self-describing settings (`minilm.config.settings`); each default and each rule
across a section's own settings is declared here, once. The defaults are the recommended recipe
(docs/transfer_study.md): a bare `minilm distill --data FILE` distils the packaged all-MiniLM-L6-v2 into a 3x384
student started from its layers 2, 4, 6, by MiniLM v1 on packed 128-token sequences (half of them sentence
pairs), lr 2e-4 for 1,000 steps of batch 32, in the precision this machine multiplies fastest. The library's
functions take sections; the commands' configs (`config.commands`) compose them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from minilm.config.settings import Section, setting, with_defaults
from minilm.errors import MiniLMError, require
from minilm.losses.relations import V2_RELATIONS

PACKAGED_TEACHER = "packaged:all-MiniLM-L6-v2"
PRECISIONS = ("auto", "bf16", "fp32")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class ObjectiveEntry:
    """What the settings know of an objective: whether it reads one shared forward of each model and so combines
    with others (`--objective minilm embedding`), or reads views of its own (masked input, every layer's states)
    and runs alone; and a phrase for `--objective`'s help. Its class registers itself under the name where it is
    defined (`objectives.base.objective`), and is held to the entry there."""

    combinable: bool
    summary: str  # what it distils, for --objective's help


# The objectives by name: the one list of their names (`--objective`'s choices).
OBJECTIVES = {
    "minilm": ObjectiveEntry(True, "attention and value relation"),
    "minilmv2": ObjectiveEntry(True, "Q-Q, K-K, V-V relations"),
    "tinybert": ObjectiveEntry(False, "attention scores, hidden states and embeddings over a layer map"),
    "distilbert": ObjectiveEntry(False, "soft targets, masked LM and hidden-state cosine"),
    "hidden-mse": ObjectiveEntry(True, "last hidden states"),
    "embedding": ObjectiveEntry(True, "sentence embeddings"),
}
COMBINABLE = tuple(name for name, entry in OBJECTIVES.items() if entry.combinable)

RELATION_KERNELS = ("auto", "torch", "triton")
EXAMPLE_MODES = ("line", "packed", "sentence")
STUDENT_INITS = ("auto", "teacher", "prune", "random", "static")
SHAPE_SETTINGS = ("student_layers", "student_hidden", "student_heads", "student_ffn")
# A student's shape when neither the flags nor an init model give it: the paper's depth halving of a 6x384
# sentence encoder (the packaged teacher), a 3x384 student.
DEFAULT_STUDENT_LAYERS, DEFAULT_STUDENT_HIDDEN = 3, 384
STATIC_WIDTH = 256  # a static student's width when none is given (Model2Vec's PCA width), at most the teacher's
RELATION_HEADS = 48  # MiniLMv2's relation heads for base-size teachers
# The learning rate when none is given (`Training.lr_for`): a student as wide as its teacher, the exponent of the
# width ratio for a narrower one, a static student's.
BASE_LR, LR_WIDTH_POWER, STATIC_LR = 2e-4, 1.5, 1e-2
DOCUMENT_BOUNDARIES = ("auto", "blank", "heading", "line", "file")


# Tokens per example when max_length is left out: a sentence task's, and an extractive-QA window's (a question
# and a stretch of its context), the lengths the MiniLM paper fine-tunes with.
SENTENCE_MAX_LENGTH = 128
QA_MAX_LENGTH = 384
# Examples per forward when a split is scored: the dev evaluations while training, `minilm evaluate`, `minilm report`.
EVAL_BATCH_SIZE = 64


def static_obstacle(objectives: list[str], task: str | None) -> str | None:
    """Why a static student (0 layers) cannot be distilled as asked, or None: it has no attention and no task head,
    so it learns sentence embeddings alone, task-agnostically."""
    if task:
        return (f"a static student (student_layers 0) is a sentence embedder with no task head: task-specific "
                f"distillation (--task {task}) needs a student with layers")
    if objectives != ["embedding"]:
        return (f"a static student (student_layers 0) has no attention or hidden layers for --objective "
                f"{' '.join(objectives)} "
                "to read: it learns sentence embeddings alone (--objective embedding)")
    return None


def teacher_setting(help: str = "teacher: a model directory, a hub id, packaged:all-MiniLM-L6-v2 or "
                                "packaged:all-mpnet-base-v2"):
    return setting(PACKAGED_TEACHER, help)


def max_length_setting(help: str = "tokens per sequence, the special tokens included"):
    return setting(None, help, range="[8, inf)", shown=f"{QA_MAX_LENGTH} for SQuAD tasks, else {SENTENCE_MAX_LENGTH}")


@dataclass
class Training(Section):
    """Optimisation, schedule, precision and the run directory's bookkeeping."""

    TITLE = "training"

    output_dir: str = setting("runs/distill", "run directory: final model, checkpoints, metrics.jsonl", resumable=True)
    max_length: int | None = max_length_setting()
    batch_size: int = setting(32, "global batch in examples, split evenly across processes", range="[1, inf)")
    lr: float | None = setting(None, "peak learning rate of AdamW", range="(0, inf)", hint="0 trains nothing",
                               shown=f"auto: {BASE_LR:g} for a student as wide as its teacher, {BASE_LR:g} x "
                               f"(teacher width / student width)^{LR_WIDTH_POWER:g} for a narrower one, "
                               f"{STATIC_LR:g} for a static student")
    betas: list[float] = setting([0.9, 0.999], "AdamW's beta1 and beta2", range="[0, 1)")
    weight_decay: float = setting(0.01, "AdamW's decoupled weight decay (not on biases and LayerNorms)",
                                  range="[0, 1]")
    warmup_steps: int = setting(-1, "linear warm-up steps, then linear decay to zero at the last step",
                                range="[-1, inf)", hint="-1 means 10% of the steps", shown="-1: 10% of the steps")
    max_steps: int = setting(1000, "optimizer steps to train; 0 trains for --epochs passes over the data",
                             range="[0, inf)", hint="0 trains for --epochs")
    epochs: float = setting(3.0, "passes over the training examples, when --max-steps is 0", range="(0, inf)")
    max_minutes: float | None = setting(None, "wall-clock budget; the run stops cleanly when it is spent",
                                        range="(0, inf)", hint="leave it out for no wall-clock budget",
                                        shown="no budget", resumable=True)
    grad_clip: float = setting(1.0, "largest global gradient norm (clipped above it)", range="[0, inf)",
                               hint="0 turns clipping off")
    dropout: float = setting(0.1, "dropout probability of the trained model's hidden states and attention",
                             range="[0, 1)")
    seed: int = setting(42, "seed of initialisation, data order and dropout", range="[0, 4294967295]")
    precision: str = setting("auto", "auto: bf16 autocast where the device multiplies bf16 natively, else fp32; "
                             "softmaxes and losses stay float32", choices=PRECISIONS)
    device: str = setting("auto", "auto takes the GPU when one is visible", choices=DEVICES, resumable=True)
    compile: bool = setting(False, "torch.compile the trained model (through accelerate's dynamo backend)",
                            resumable=True)
    log_every: int = setting(20, "steps between lines of metrics.jsonl (and the last step)", range="[1, inf)",
                             resumable=True)
    save_every: int = setting(200, "steps between checkpoints (and the last step)", range="[0, inf)",
                              hint="0 saves only at the end", resumable=True)
    eval_every: int = setting(200, "steps between dev evaluations of task runs (and the last step)",
                              range="[1, inf)", resumable=True)
    keep: int = setting(2, "checkpoints kept in output_dir/checkpoints, the newest", range="[1, inf)",
                        hint="the newest checkpoints kept", resumable=True)
    resume: bool = setting(True, "continue from the newest checkpoint of the same run in output_dir",
                           resumable=True)
    overwrite: bool = setting(False, "start afresh even if output_dir holds another run (deletes minilm's "
                              "files only)", resumable=True)

    def check(self) -> None:
        require(len(self.betas) == 2,
                f"betas takes two values (Adam's beta1 beta2), got {len(self.betas)}: {self.betas}")

    def lr_for(self, student_width: int, teacher_width: int, static: bool = False) -> float:
        """The run's peak learning rate: as given, else the rule `lr`'s help states. A narrower student, pruned or
        random, moves further from its start than a copy of the teacher's layers, and a narrower layer's updates
        change its outputs less (Adam's steps do not scale with width): 3x128 students of a 384-wide teacher kept
        93.8% of it on held-out pairs at 1e-3 against 91.2% at 2e-4 (docs/frontier.md); a static student's vectors
        move alone, each by its tokens' share of a batch."""
        if self.lr is not None:
            return self.lr
        if static:
            return STATIC_LR
        return BASE_LR * max(1.0, teacher_width / student_width) ** LR_WIDTH_POWER

    def total_steps(self, per_epoch: int) -> int:
        """The run's length: max_steps, or with max_steps 0 `epochs` passes of `per_epoch` steps; the warm-up
        must fit in it."""
        total = self.max_steps if self.max_steps > 0 else max(1, int(self.epochs * per_epoch))
        require(self.warmup_steps <= total, f"warmup_steps {self.warmup_steps} is longer than the run ({total} "
                                            "steps); lower it, or pass -1 for 10% of the steps")
        return total


FinetuneTraining = with_defaults(Training, "FinetuneTraining", output_dir="runs/finetune", lr=5e-5, max_steps=0,
                                 log_every=10, save_every=500, eval_every=500)


@dataclass
class Student(Section):
    """The student's shape and start: a shallower or narrower model of the teacher's family, sharing its vocabulary."""

    TITLE = "student"

    student_layers: int | None = setting(None, "transformer layers of the student; 0 makes a static student (one "
                                         "vector per token, a sentence the mean of its tokens': sentence-"
                                         "transformers' StaticEmbedding), started from the teacher's own output for "
                                         "each token and trained by --objective embedding", range="[0, inf)",
                                         hint="leave it out for the default", shown=f"{DEFAULT_STUDENT_LAYERS}, or "
                                         "the --student-init model's")
    student_hidden: int | None = setting(None, "hidden width of the student", range="[1, inf)",
                                         hint="leave it out for the default", shown=f"{DEFAULT_STUDENT_HIDDEN} ("
                                         f"{STATIC_WIDTH} for a static student), or the --student-init model's")
    student_heads: int | None = setting(None, "attention heads of the student (must divide its width)",
                                        range="[1, inf)", hint="leave it out for whole heads of the teacher's size",
                                        shown="width / the teacher's head size, or the --student-init model's")
    student_ffn: int | None = setting(None, "feed-forward width of the student", range="[1, inf)",
                                      hint="leave it out for the teacher's ratio to the width",
                                      shown="student_hidden x the teacher's FFN / width (4 for BERT), or the "
                                      "--student-init model's")
    student_init: str = setting("auto", "auto: teacher layers where the student's width, heads and FFN are the "
                                "teacher's, else prune where it keeps whole heads of the teacher's size and is no "
                                "wider, else random (static for a student of 0 layers); teacher (copy layers); "
                                "prune (the teacher's most important "
                                "heads, FFN neurons and hidden channels, measured on the run's text: "
                                "docs/frontier.md); random; or a model to start from (a directory or packaged:NAME; "
                                "with a tokenizer of its own: --objective embedding --examples sentence)")
    speedup: float | None = setting(None, "choose the student's shape by speed: the largest whose int8 ONNX graph "
                                    "answers at least this many times as fast as the teacher's at batch 1, "
                                    "measured on this CPU (instead of the shape flags)", range="(1, inf)",
                                    hint="leave it out to give the shape", shown="off: the shape flags")
    student_init_layers: list[int] | None = setting(None, "1-based teacher layers copied into the student",
                                                    range="[1, inf)", hint="1-based teacher layers",
                                                    shown="evenly spaced, the top layer last")

    def check(self) -> None:
        require(self.student_hidden is None or self.student_heads is None or
                self.student_hidden % self.student_heads == 0,
                f"student_hidden {self.student_hidden} is not divisible by student_heads {self.student_heads}")
        from pathlib import Path

        if self.student_init not in STUDENT_INITS and not Path(self.student_init).is_dir() \
                and not self.student_init.startswith("packaged:"):
            raise MiniLMError(f"student_init must be {', '.join(STUDENT_INITS)}, an existing model directory or "
                              f"packaged:NAME; '{self.student_init}' is none of these")
        given = [f"--{name.replace('_', '-')}" for name in SHAPE_SETTINGS if getattr(self, name) is not None]
        require(self.speedup is None or not given, f"--speedup chooses the student's shape itself: leave out "
                                                   f"{' and '.join(given)}, or leave out --speedup")
        require(self.speedup is None or self.student_init in ("auto", "prune", "random", "teacher"),
                f"--speedup chooses a new student's shape; student_init {self.student_init} is a model of its own "
                "shape: leave out one of them")

    @property
    def new_model(self) -> bool:
        """Whether the student is made here (from the teacher or at random), not a model student_init names."""
        return self.student_init in STUDENT_INITS


@dataclass
class Objective(Section):
    """How the student learns from the teacher (docs/objectives.md)."""

    TITLE = "objective"

    objective: list[str] = setting(["minilm"], ", ".join(f"{name} ({entry.summary})" for name, entry in
                                                         OBJECTIVES.items()) + "; several (of "
                                   + ", ".join(COMBINABLE) + ") are summed, weighted by --objective-weights",
                                   choices=tuple(OBJECTIVES))
    objective_weights: list[float] | None = setting(None, "weight of each objective's terms, in the order given",
                                                    range="[0, inf)", shown="1 each")
    value_relation: bool = setting(True, "minilm: include the value relation L_VR (off: the paper's ablation)")
    teacher_layer: int = setting(-1, "1-based teacher layer mimicked (minilm, minilmv2, hidden-mse)",
                                 range="[-1, inf)", hint="-1 means the last layer", shown="-1: the last")
    tinybert_layer_map: list[int] | None = setting(None, "tinybert: the 1-based teacher layer of each student layer",
                                                   range="[1, inf)", hint="1-based teacher layers",
                                                   shown="evenly spaced")
    minilm_variant: str | None = setting(None, "which MiniLM, as earlier scripts give it: v2 reads as --objective "
                                         "minilmv2, v1 as --objective minilm", choices=("v1", "v2"),
                                         shown="from --objective", former="version")
    teacher_cache: str = setting("auto", "keep what the objectives read of the teacher (its Q, K, V, embeddings, "
                                 "logits) for each example on disk, computed once, so that the teacher does not run "
                                 "while the student trains: auto where every objective's reading can be kept and "
                                 "fits the disk (not tinybert's or distilbert's views, nor MiniLM v1's attention of "
                                 "a teacher with a position bias), on (or stop), off", choices=("auto", "on", "off"),
                                 former="embedding_cache")

    def resolve(self) -> None:
        if self.minilm_variant == "v2" and "minilmv2" not in self.objective:
            require("minilm" in self.objective, f"--minilm-variant v2 belongs to the minilm objective (it is "
                                                f"--objective minilmv2), not to {' '.join(self.objective)}")
            self.objective = ["minilmv2" if name == "minilm" else name for name in self.objective]

    def check(self) -> None:
        names = self.objective
        require(len(names) > 0, "objective must name at least one objective")
        require(len(set(names)) == len(names), f"objective names {', '.join(names)}: each at most once")
        alone = [n for n in names if n not in COMBINABLE]
        require(not alone or len(names) == 1, f"{alone[0] if alone else ''} reads views of its own and runs alone; "
                                              f"combine {', '.join(COMBINABLE)}")
        require(not alone or self.objective_weights in (None, [1.0]),
                f"{alone[0] if alone else ''} runs alone: objective_weights weigh combined objectives; leave it out")
        require(self.objective_weights is None or len(self.objective_weights) == len(names),
                f"objective_weights gives {len(self.objective_weights or [])} weight(s) for {len(names)} objective(s)")
        require(self.teacher_layer != 0, "teacher_layer must be >= 1 or -1 for the last layer, got 0")
        require("minilm" in names or self.value_relation,
                "value_relation applies to the minilm objective; choose minilmv2's relations with --relations")

    def weighted(self) -> list[tuple[str, float]]:
        return list(zip(self.objective, self.objective_weights or [1.0] * len(self.objective)))


@dataclass
class Relations(Section):
    """MiniLM's self-attention relations: MiniLMv2's relations and head count, and how the relation KL runs."""

    TITLE = "self-attention relations"

    relations: list[str] = setting(list(V2_RELATIONS), "minilmv2: the relations distilled", choices=tuple(V2_RELATIONS))
    relation_heads: int | None = setting(None, "minilmv2: relation heads, dividing both widths", range="[1, inf)",
                                         hint="leave it out for the default",
                                         shown=f"{RELATION_HEADS} where it divides both widths (the paper's for "
                                         f"base-size teachers), else the most under {RELATION_HEADS} that do")
    query_chunk: int | None = setting(None, "query rows per chunk of the relation KL", range="[1, inf)",
                                      hint="leave it out for automatic chunks", shown="chunks of ~2 MiB maps")
    relation_kernel: str = setting("auto", "relation KL implementation: auto (Triton on CUDA when installed), "
                                   "torch (chunked) or triton", choices=RELATION_KERNELS)

    def check(self) -> None:
        require(len(self.relations) > 0, f"relations must name at least one of {', '.join(V2_RELATIONS)}")

    def heads_for(self, teacher_width: int, student_width: int) -> int:
        """The relation heads of a teacher and student of these widths: as given, else 48 where it divides both,
        else the most under 48 that divide both (a pruned 256-wide student of a 384-wide teacher: 32)."""
        if self.relation_heads is not None:
            return self.relation_heads
        common = math.gcd(teacher_width, student_width)
        return max(d for d in range(1, min(RELATION_HEADS, common) + 1) if common % d == 0)


@dataclass
class DistilBERTLoss(Section):
    """Weights and masking of the distilbert objective (Sanh et al. 2019)."""

    TITLE = "distilbert objective"

    distilbert_mlm: str = setting("auto", "masked-LM terms: auto (when the teacher has an MLM head), on, off",
                                  choices=("auto", "on", "off"))
    distilbert_mlm_probability: float = setting(0.15, "share of real tokens chosen for masking (80/10/10)",
                                                range="(0, 1]")
    distilbert_temperature: float = setting(2.0, "softmax temperature of the soft targets", range="(0, inf)")
    distilbert_alpha_ce: float = setting(5.0, "weight of the soft-target loss", range="[0, inf)")
    distilbert_alpha_mlm: float = setting(2.0, "weight of the student's own masked-LM loss", range="[0, inf)")
    distilbert_alpha_cos: float = setting(1.0, "weight of the hidden-state cosine loss", range="[0, inf)")


@dataclass
class EmbeddingLoss(Section):
    """The embedding objective: the student's sentence embedding against the teacher's (its own pooling)."""

    TITLE = "embedding objective"

    embedding_loss: str = setting("mse", "mse (as sentence-transformers distils) or cosine (1 - cos) between the "
                                  "student's and the teacher's sentence embeddings", choices=("mse", "cosine"))
    embedding_output: str = setting("teacher", "a student narrower than its teacher trains through a projection to "
                                     "the teacher's width: teacher keeps it in the saved sentence-transformers "
                                     "model (embeddings comparable with the teacher's), own drops it (the "
                                     "student's own width; docs/seed_system.md measured it better on STS)",
                                     choices=("teacher", "own"), resumable=True)


@dataclass
class Corpus(Section):
    """Unlabeled text for task-agnostic distillation, and how it becomes examples (docs/design.md)."""

    TITLE = "corpus"

    data: list[str] = setting(["wikitext-2"], "named corpora (wikitext-2), text/TSV/CSV/JSONL files, or "
                              "hf:NAME[:CONFIG]:SPLIT hub datasets")
    text_column: str | None = setting(None, "column of TSV/CSV/JSONL inputs", shown="text, then sentence")
    examples: str = setting("packed", "line: one example per line, long lines cut into windows; packed: documents "
                            "filling max_length, some as sentence pairs; sentence: one example per line, truncated "
                            "to max_length (as sentence-transformers encodes a sentence)", choices=EXAMPLE_MODES)
    pair_fraction: float = setting(0.5, "packed: share of examples made two segments [CLS] A [SEP] B [SEP]",
                                   range="[0, 1]")
    cross_documents: bool = setting(False, "packed: let a sequence run on into the next document")
    document_boundary: str = setting("auto", "where a document ends in plain text: blank line, WikiText heading, "
                                     "line or file; auto: a named corpus's own, else blank",
                                     choices=DOCUMENT_BOUNDARIES)
    cache_dir: str = setting(".cache/minilm", "tokenized corpora, reused by later runs", resumable=True)


@dataclass
class Task(Section):
    """The labeled task: a GLUE task, squad2/squad, or a custom TSV/CSV/JSONL task."""

    TITLE = "task"

    task: str | None = setting("sst2", "a GLUE task, squad2 or squad (extractive QA), or a custom task's name")
    task_dir: str | None = setting(None, "task data directory; hf for the hub", shown="DATA_ROOT/glue/TASK")
    text_columns: list[str] | None = setting(None, "custom tasks: one or two text columns", shown="none")
    label_column: str | None = setting(None, "custom tasks: the label column", shown="none")
    regression: bool = setting(False, "custom tasks: real-valued labels")
    skip_bad_rows: bool = setting(False, "skip and count malformed rows instead of stopping at the first")
    max_examples: int | None = setting(None, "use only the first N training and dev examples (a quick try)",
                                       range="[1, inf)", hint="leave it out to use every example", shown="all")


DistillTask = with_defaults(Task, "DistillTask", task=None)


@dataclass
class OutputLoss(Section):
    """Task-specific distillation's output loss: L = objective + output_weight * L_OUT (+ hard labels)."""

    TITLE = "task-specific output loss"

    output_weight: float = setting(1.0, "weight of L_OUT, the KL of the teacher's and student's outputs",
                                   range="[0, inf)")
    temperature: float = setting(1.0, "softmax temperature of L_OUT", range="(0, inf)")
    hard_label_weight: float = setting(0.0, "weight of the task loss on the gold labels", range="[0, inf)")


@dataclass
class QAWindows(Section):
    """Extractive question answering (SQuAD): windows of a context, and how answers are chosen."""

    TITLE = "SQuAD windows and post-processing"

    doc_stride: int = setting(128, "tokens shared by consecutive windows of a long context (under half of "
                              "max_length)", range="[1, inf)", hint="under half of max_length")
    n_best: int = setting(20, "start and end candidates per window", range="[1, inf)")
    max_answer_length: int = setting(30, "longest answer, in tokens", range="[1, inf)")
    null_threshold: float = setting(0.0, "answer \"\" where the null score beats the best span by more than this",
                                    unbounded="any real margin: negative answers more, positive fewer")
