"""Every command's settings: sections of self-describing settings (`minilm.settings`), one config per command.

The defaults are the recommended recipe (docs/transfer_study.md): a bare `minilm distill --data FILE`
distils the packaged all-MiniLM-L6-v2 into a 3x384 student started from its layers 2, 4, 6, by MiniLM v1
on packed 128-token sequences (half of them sentence pairs), lr 2e-4 for 1,000 steps of batch 32, in the
precision this machine multiplies fastest. Flags and YAML keys are the setting names, whatever section
holds them; `minilm COMMAND --help` shows the sections a command uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minilm.errors import MiniLMError, require
from minilm.settings import Section, check_settings, setting, with_defaults

PACKAGED_TEACHER = "packaged:all-MiniLM-L6-v2"
PRECISIONS = ("auto", "bf16", "fp32")
DEVICES = ("auto", "cpu", "cuda")
OBJECTIVES = ("minilm", "minilmv2", "tinybert", "distilbert", "hidden-mse", "embedding")
ALONE = ("tinybert", "distilbert")  # objectives with views of their own (masked input, every layer): not combined
V2_RELATION_NAMES = ("qq", "kk", "vv")
RELATION_KERNELS = ("auto", "torch", "triton")
EXAMPLE_MODES = ("line", "packed")
DOCUMENT_BOUNDARIES = ("auto", "blank", "heading", "line", "file")


def teacher_setting(help: str = "teacher: a model directory, a hub id, or packaged:all-MiniLM-L6-v2"):
    return setting(PACKAGED_TEACHER, help)


@dataclass
class Training(Section):
    """Optimisation, schedule, precision and the run directory's bookkeeping."""

    TITLE = "training"

    output_dir: str = setting("runs/distill", "run directory: final model, checkpoints, metrics.jsonl", resumable=True)
    max_length: int | None = setting(None, "tokens per sequence, [CLS] and [SEP] included", range="[8, inf)",
                                     shown="384 for SQuAD tasks, else 128")
    batch_size: int = setting(32, "global batch in examples, split evenly across processes", range="[1, inf)")
    lr: float = setting(2e-4, "peak learning rate of AdamW", range="(0, inf)", hint="0 trains nothing")
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
    """The student's shape and start: a shallower or narrower BERT sharing the teacher's vocabulary."""

    TITLE = "student"

    student_layers: int = setting(3, "transformer layers of the student", range="[1, inf)")
    student_hidden: int = setting(384, "hidden width of the student", range="[1, inf)")
    student_heads: int = setting(12, "attention heads of the student (must divide its width)", range="[1, inf)")
    student_ffn: int | None = setting(None, "feed-forward width of the student", range="[1, inf)",
                                      hint="leave it out for 4 x student_hidden", shown="4 x student_hidden")
    student_init: str = setting("auto", "auto: teacher layers where the student's width and heads match the "
                                "teacher's, else random; random; teacher; or a model directory to start from")
    student_init_layers: list[int] | None = setting(None, "1-based teacher layers copied into the student",
                                                    range="[1, inf)", hint="1-based teacher layers",
                                                    shown="evenly spaced, the top layer last")

    def check(self) -> None:
        require(self.student_hidden % self.student_heads == 0,
                f"student_hidden {self.student_hidden} is not divisible by student_heads {self.student_heads}")
        from pathlib import Path

        if self.student_init not in ("auto", "random", "teacher") and not Path(self.student_init).is_dir():
            raise MiniLMError(f"student_init must be auto, random, teacher or an existing model directory; "
                              f"'{self.student_init}' is none of these")


@dataclass
class Objective(Section):
    """How the student learns from the teacher (docs/objectives.md)."""

    TITLE = "objective"

    objective: list[str] = setting(["minilm"], "minilm (attention + value relation), minilmv2 (Q-Q, K-K, V-V "
                                   "relations), tinybert, distilbert, hidden-mse or embedding (sentence embeddings); "
                                   "several are summed, weighted by --objective-weights", choices=OBJECTIVES)
    objective_weights: list[float] | None = setting(None, "weight of each objective's terms, in the order given",
                                                    range="[0, inf)", shown="1 each")
    value_relation: bool = setting(True, "minilm: include the value relation L_VR (off: the paper's ablation)")
    relations: list[str] = setting(list(V2_RELATION_NAMES), "minilmv2: the relations distilled",
                                   choices=V2_RELATION_NAMES)
    relation_heads: int = setting(48, "minilmv2: relation heads, dividing both widths (48 for base-size teachers)",
                                  range="[1, inf)")
    teacher_layer: int = setting(-1, "1-based teacher layer mimicked (minilm, minilmv2, hidden-mse)",
                                 range="[-1, inf)", hint="-1 means the last layer", shown="-1: the last")
    query_chunk: int | None = setting(None, "query rows per chunk of the relation KL", range="[1, inf)",
                                      hint="leave it out for automatic chunks", shown="chunks of ~2 MiB maps")
    relation_kernel: str = setting("auto", "relation KL implementation: auto (Triton on CUDA when installed), "
                                   "torch (chunked) or triton", choices=RELATION_KERNELS)
    tinybert_layer_map: list[int] | None = setting(None, "tinybert: the 1-based teacher layer of each student layer",
                                                   range="[1, inf)", hint="1-based teacher layers",
                                                   shown="evenly spaced")
    version: str | None = setting(None, "the MiniLM version as earlier scripts give it: v2 reads as --objective "
                                  "minilmv2, v1 as --objective minilm", choices=("v1", "v2"), shown="from --objective")

    def resolve(self) -> None:
        if self.version == "v2" and "minilmv2" not in self.objective:
            require("minilm" in self.objective, f"--version v2 belongs to the minilm objective (it is --objective "
                                                f"minilmv2), not to {' '.join(self.objective)}")
            self.objective = ["minilmv2" if name == "minilm" else name for name in self.objective]

    def check(self) -> None:
        names = self.objective
        require(len(names) > 0, "objective must name at least one objective")
        require(len(set(names)) == len(names), f"objective names {', '.join(names)}: each at most once")
        alone = [n for n in names if n in ALONE]
        first = alone[0] if alone else ""
        require(not alone or len(names) == 1, f"{first} reads views of its own and runs alone; combine minilm, "
                                              "minilmv2, hidden-mse and embedding")
        require(self.objective_weights is None or len(self.objective_weights) == len(names),
                f"objective_weights gives {len(self.objective_weights or [])} weight(s) for {len(names)} objective(s)")
        require(self.teacher_layer != 0, "teacher_layer must be >= 1 or -1 for the last layer, got 0")
        require("minilm" in names or self.value_relation,
                "value_relation applies to the minilm objective; choose minilmv2's relations with --relations")
        require(len(self.relations) > 0, "relations must name at least one of qq, kk, vv")

    def weighted(self) -> list[tuple[str, float]]:
        return list(zip(self.objective, self.objective_weights or [1.0] * len(self.objective)))


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


@dataclass
class Corpus(Section):
    """Unlabeled text for task-agnostic distillation, and how it becomes examples (docs/design.md)."""

    TITLE = "corpus"

    data: list[str] = setting(["wikitext-2"], "named corpora (wikitext-2), text/TSV/CSV/JSONL files, or "
                              "hf:NAME[:CONFIG]:SPLIT hub datasets")
    text_column: str | None = setting(None, "column of TSV/CSV/JSONL inputs", shown="text, then sentence")
    examples: str = setting("packed", "line: one example per line; packed: documents filling max_length, "
                            "some as sentence pairs", choices=EXAMPLE_MODES)
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
class Span(Section):
    """Extractive question answering (SQuAD): windows of a context, and how answers are chosen."""

    TITLE = "SQuAD windows and post-processing"

    doc_stride: int = setting(128, "tokens shared by consecutive windows of a long context (under half of "
                              "max_length)", range="[1, inf)", hint="under half of max_length")
    n_best: int = setting(20, "start and end candidates per window", range="[1, inf)")
    max_answer_length: int = setting(30, "longest answer, in tokens", range="[1, inf)")
    null_threshold: float = setting(0.0, "answer \"\" where the null score beats the best span by more than this",
                                    unbounded="any real margin: negative answers more, positive fewer")


@dataclass
class DistillConfig(Section):
    """`minilm distill`: task-agnostic distillation on unlabeled text, or task-specific with --task."""

    TITLE = "teacher"

    teacher: str = teacher_setting()
    training: Training = field(default_factory=Training)
    student: Student = field(default_factory=Student)
    objective: Objective = field(default_factory=Objective)
    distilbert: DistilBERTLoss = field(default_factory=DistilBERTLoss)
    embedding: EmbeddingLoss = field(default_factory=EmbeddingLoss)
    corpus: Corpus = field(default_factory=Corpus)
    task: DistillTask = field(default_factory=DistillTask)
    output_loss: OutputLoss = field(default_factory=OutputLoss)
    span: Span = field(default_factory=Span)


@dataclass
class StudentConfig(Section):
    """`minilm student`: build an untrained student from a teacher and save it."""

    TITLE = "teacher and output"

    teacher: str = teacher_setting()
    output_dir: str = setting("runs/student", "directory for the new student (must be empty or absent)")
    dropout: float = setting(0.1, "dropout probability written into the student's config", range="[0, 1)")
    seed: int = setting(42, "seed of the random initialisation", range="[0, 4294967295]")
    student: Student = field(default_factory=Student)


@dataclass
class FinetuneConfig(Section):
    """`minilm finetune`: a classification, regression or span head on any encoder, trained on a task."""

    TITLE = "model"

    model: str = teacher_setting("encoder to fine-tune: a model directory, hub id or packaged:all-MiniLM-L6-v2")
    training: FinetuneTraining = field(default_factory=FinetuneTraining)
    task: Task = field(default_factory=Task)
    span: Span = field(default_factory=Span)


@dataclass
class EvaluateConfig(Section):
    """`minilm evaluate`: score a fine-tuned checkpoint on one split with the task's official metric."""

    TITLE = "evaluation"

    model: str = setting("runs/finetune/best", "fine-tuned checkpoint directory")
    split: str = setting("dev", "split to score: dev, train, test, or a file name in the task directory")
    max_length: int | None = setting(None, "tokens per example", range="[8, inf)",
                                     shown="384 for SQuAD tasks, else 128")
    batch_size: int = setting(64, "examples per forward", range="[1, inf)")
    device: str = setting("auto", "auto takes the GPU when one is visible", choices=DEVICES)
    output: str | None = setting(None, "directory for metrics.json and the predictions", shown="print only")
    zero_shot: bool = setting(False, "score sentence pairs by the cosine of the model's sentence embeddings, "
                              "without a task head (STS: Spearman x 100)")
    task: Task = field(default_factory=Task)
    span: Span = field(default_factory=Span)


@dataclass
class ExportConfig(Section):
    """`minilm export`: a checkpoint as a self-contained ONNX directory, float32 or int8."""

    TITLE = "export"

    model: str = setting("runs/finetune/best", "an encoder, sequence-classification or question-answering "
                         "checkpoint directory")
    output_dir: str = setting("runs/export", "directory for model.onnx, its config, tokenizer and export.json")
    quantize: str = setting("none", "none: float32 weights; int8: onnxruntime's dynamic int8 quantization",
                            choices=("none", "int8"))
    overwrite: bool = setting(False, "replace an earlier export in output_dir")


@dataclass
class BenchConfig(Section):
    """`minilm bench`: our distillation step against a naive one, matmul peak and inference speed."""

    TITLE = "benchmark"

    preset: str | None = setting(None, "bert-base: a random BERT-base teacher (12x768) and a 6x768 student; no "
                                 "weights needed", choices=("bert-base",), shown="the packaged teacher")
    teacher: str = teacher_setting("teacher, when no preset is given")
    student_layers: int | None = setting(None, "student layers", range="[1, inf)", shown="3; 6 with bert-base")
    student_hidden: int | None = setting(None, "student width", range="[1, inf)", shown="384; 768 with bert-base")
    student_heads: int = setting(12, "student attention heads", range="[1, inf)")
    versions: list[str] | None = setting(None, "MiniLM versions benchmarked: v1, v2", choices=("v1", "v2"),
                                         shown="v1; v1 v2 with bert-base")
    precisions: list[str] | None = setting(None, "precisions of our step's rows (naive rows are fp32)",
                                           choices=("fp32", "bf16"),
                                           shown="fp32, and bf16 where the device multiplies it natively")
    relation_heads: int = setting(48, "relation heads of the v2 rows", range="[1, inf)")
    relation_kernel: str = setting("auto", "our step's relation KL: auto, torch or triton",
                                   choices=RELATION_KERNELS)
    batch_size: int = setting(32, "examples per step", range="[1, inf)")
    seq_lengths: list[int] = setting([128, 512], "sequence lengths of the random-token rows", range="[8, inf)")
    steps: int = setting(5, "timed steps per row (after two warm-up steps)", range="[1, inf)")
    rounds: int = setting(2, "times each row runs, interleaved with the rows it is compared with",
                          range="[1, inf)")
    sst2: str | None = setting(None, "SST-2 train.tsv for the real-batch rows", shown="DATA_ROOT/glue/SST-2/train.tsv")
    device: str = setting("auto", "auto takes the GPU when one is visible", choices=DEVICES)
    compile: bool = setting(False, "torch.compile the student in our step")
    output: str | None = setting(None, "JSON file for the results", shown="print only")
    inference_models: list[str] | None = setting(None, "inference mode: these model directories (PyTorch "
                                                 "checkpoints or minilm export directories) timed side by side on "
                                                 "SST-2 dev sentences, instead of the distillation step",
                                                 shown="none: the step benchmark")
    inference_batch_sizes: list[int] = setting([1, 32], "inference mode: batch sizes timed", range="[1, inf)")


@dataclass
class ReportConfig(Section):
    """`minilm report`: a Markdown table and plots from several runs."""

    TITLE = "report"

    runs: list[str] = setting([], "run directories (finetune and distill runs; task-agnostic ones plot only)")
    teacher_run: str | None = setting(None, "the run that retention and speed-up are measured against",
                                      shown="none")
    output: str = setting("runs/report", "directory for report.md and the PNG plots")
    speed_data: str | None = setting(None, "texts (file or hf: spec) to re-measure every model's speed on",
                                     shown="none")
    remeasure: bool = setting(False, "re-measure speeds side by side (implied by speed_data)")
    speed_examples: int = setting(512, "examples timed per model when re-measuring", range="[1, inf)")
    exported: list[str] = setting([], "minilm export directories added as rows: scored on the runs' dev split and "
                                  "timed beside them (implies remeasure)")
    device: str = setting("cpu", "device of the speed measurements", choices=DEVICES)


__all__ = ["DistillConfig", "StudentConfig", "FinetuneConfig", "EvaluateConfig", "ExportConfig", "BenchConfig",
           "ReportConfig",
           "Training", "Student", "Objective", "DistilBERTLoss", "EmbeddingLoss", "Corpus", "Task", "OutputLoss", "Span",
           "check_settings", "PACKAGED_TEACHER"]
