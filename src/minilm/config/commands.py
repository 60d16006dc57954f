"""The commands' configs: each composes the sections it uses (`config.sections`) and a few settings of its own.

CLI flags, YAML keys and Python keywords fill the same dataclass (`config.settings.build`); `minilm COMMAND
--help` shows one argument group per section. Only the commands (`minilm.commands`) and the package's face
read these classes; the library below takes sections.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minilm.config.sections import (DEVICES, EVAL_BATCH_SIZE, Corpus, DistilBERTLoss, DistillTask, EmbeddingLoss,
                                    FinetuneTraining, Objective, OutputLoss, QAWindows, Relations, Student, Task,
                                    Training, max_length_setting, static_obstacle, teacher_setting)
from minilm.config.settings import Section, setting, with_defaults
from minilm.errors import require


@dataclass
class DistillConfig(Section):
    """`minilm distill`: task-agnostic distillation on unlabeled text, or task-specific with --task."""

    TITLE = "teacher"

    teacher: str = teacher_setting()
    training: Training = field(default_factory=Training)
    student: Student = field(default_factory=Student)
    objective: Objective = field(default_factory=Objective)
    relations: Relations = field(default_factory=Relations)
    distilbert: DistilBERTLoss = field(default_factory=DistilBERTLoss)
    embedding: EmbeddingLoss = field(default_factory=EmbeddingLoss)
    corpus: Corpus = field(default_factory=Corpus)
    task: DistillTask = field(default_factory=DistillTask)
    output_loss: OutputLoss = field(default_factory=OutputLoss)
    qa: QAWindows = field(default_factory=QAWindows)

    def check(self) -> None:
        if self.student.student_layers == 0:
            obstacle = static_obstacle(self.objective.objective, self.task.task)
            require(obstacle is None, obstacle or "")
        # minilm (v1) relates the teacher's own attention heads; a head count given for it was silently unused
        require(self.relations.relation_heads is None or "minilmv2" in self.objective.objective,
                f"relation_heads {self.relations.relation_heads} splits minilmv2's relations; --objective "
                f"{' '.join(self.objective.objective)} does not read it: drop --relation-heads, or use "
                "--objective minilmv2")


@dataclass
class StudentConfig(Section):
    """`minilm student`: build an untrained student from a teacher and save it."""

    TITLE = "teacher and output"

    teacher: str = teacher_setting()
    output_dir: str = setting("runs/student", "directory for the new student (must be empty or absent)")
    dropout: float = setting(0.1, "dropout probability written into the student's config", range="[0, 1)")
    seed: int = setting(42, "seed of the random initialisation and of the text pruning measures on",
                        range="[0, 4294967295]")
    max_length: int | None = max_length_setting("tokens per example of the text pruning measures on (as the "
                                                "distillation that follows will read it)")
    student: Student = field(default_factory=Student)
    corpus: Corpus = field(default_factory=Corpus)  # the text a pruned student's importances are measured on


@dataclass
class FinetuneConfig(Section):
    """`minilm finetune`: a classification, regression or span head on any encoder, trained on a task."""

    TITLE = "model"

    model: str = teacher_setting("encoder to fine-tune: a model directory, hub id or packaged:all-MiniLM-L6-v2")
    training: FinetuneTraining = field(default_factory=FinetuneTraining)
    task: Task = field(default_factory=Task)
    qa: QAWindows = field(default_factory=QAWindows)


@dataclass
class EvaluateConfig(Section):
    """`minilm evaluate`: score a fine-tuned checkpoint on one split with the task's official metric."""

    TITLE = "evaluation"

    model: str = setting("runs/finetune/best", "fine-tuned checkpoint directory")
    split: str = setting("dev", "split to score: dev, train, test, or a file name in the task directory")
    max_length: int | None = max_length_setting("tokens per example")
    batch_size: int = setting(EVAL_BATCH_SIZE, "examples per forward", range="[1, inf)")
    device: str = setting("auto", "auto takes the GPU when one is visible", choices=DEVICES)
    output: str | None = setting(None, "directory for metrics.json and the predictions", shown="print only")
    zero_shot: bool = setting(False, "score the model's sentence embeddings without a task head: sentence pairs "
                              "by their cosine (STS: Spearman x 100), or SQuAD questions against every passage of "
                              "the split (retrieval: nDCG@10, MRR@10, recall@1 and @10)")
    task: Task = field(default_factory=Task)
    qa: QAWindows = field(default_factory=QAWindows)


@dataclass
class ExportConfig(Section):
    """`minilm export`: a checkpoint as ONNX graphs (float32, int8 for a target CPU) in a copy of its directory."""

    TITLE = "export"

    model: str = setting("runs/finetune/best", "an encoder, sequence-classification or question-answering "
                         "checkpoint directory")
    output_dir: str = setting("runs/export", "directory for the copy of the model with its graphs in onnx/ and "
                              "export.json")
    quantize: str = setting("none", "none: float32 weights; int8: onnxruntime's dynamic int8 quantization for "
                            "--target's CPU (onnx/model_qint8_TARGET.onnx beside the float32 onnx/model.onnx)",
                            choices=("none", "int8"))
    target: str = setting("auto", "the CPU the int8 graph is for: avx2 (7-bit weights), avx512_vnni (VNNI: "
                          "AVX512-VNNI or AVX-VNNI), arm64; auto reads the CPU this runs on",
                          choices=("auto", "avx2", "avx512_vnni", "arm64"))
    graph: str = setting("auto", "fused: onnxruntime's transformer fusions (Attention, EmbedLayerNormalization, "
                         "SkipLayerNormalization, Gelu); plain: the graph as traced; auto: fused for the families "
                         "whose graph fuses (BERT, ELECTRA, RoBERTa, DistilBERT), else plain",
                         choices=("auto", "fused", "plain"))
    pooling: bool = setting(False, "also onnx/model_pooled.onnx, a sentence-transformers model's pooling and "
                            "normalisation inside the graph (inputs input_ids, attention_mask; output "
                            "sentence_embedding), and its int8 form with --quantize int8")
    openvino: bool = setting(False, "also OpenVINO IR in openvino/ (sentence-transformers' layout: "
                             "openvino_model.xml, and with --quantize int8 openvino_model_qint8_quantized.xml, "
                             "statically quantized by NNCF on --calibration-data); needs minilm[openvino]")
    calibration_data: list[str] = setting(["wikitext-2", "stsb-train"], "text the static int8 OpenVINO graph "
                                          "measures its activations on (named corpora or files, as --data takes "
                                          "them; 300 lines drawn)")
    overwrite: bool = setting(False, "replace an earlier export in output_dir")

    def check(self) -> None:
        require(self.target == "auto" or self.quantize == "int8",
                f"--target {self.target} picks the CPU of an int8 graph; add --quantize int8, or drop --target")


# The bench's student is the packaged teacher's 3x384 or, with --preset bert-base, the paper's 6x768, unless given.
BenchStudent = with_defaults(Student, "BenchStudent", student_layers=None, student_hidden=None, student_init="random",
                             shown={"student_layers": "3; 6 with bert-base", "student_hidden": "384; 768 with bert-base"},
                             module=__name__)


@dataclass
class BenchConfig(Section):
    """`minilm bench`: our distillation step against a naive one, matmul peak and inference speed."""

    TITLE = "benchmark"

    preset: str | None = setting(None, "bert-base: a random BERT-base teacher (12x768) and a 6x768 student; no "
                                 "weights needed", choices=("bert-base",), shown="the packaged teacher")
    teacher: str = teacher_setting("teacher, when no preset is given")
    versions: list[str] | None = setting(None, "MiniLM versions benchmarked: v1, v2", choices=("v1", "v2"),
                                         shown="v1; v1 v2 with bert-base")
    precisions: list[str] | None = setting(None, "precisions of our step's rows (naive rows are fp32)",
                                           choices=("fp32", "bf16"),
                                           shown="fp32, and bf16 where the device multiplies it faster")
    batch_size: int = setting(32, "examples per step", range="[1, inf)")
    seq_lengths: list[int] = setting([128, 512], "sequence lengths of the random-token rows", range="[8, inf)")
    steps: int = setting(5, "timed steps per row (after two warm-up steps)", range="[1, inf)")
    rounds: int = setting(2, "times each row runs, interleaved with the rows it is compared with",
                          range="[1, inf)")
    sst2: str | None = setting(None, "SST-2 train.tsv for the real-batch rows", shown="DATA_ROOT/glue/SST-2/train.tsv")
    device: str = setting("auto", "auto takes the GPU when one is visible", choices=DEVICES)
    compile: bool = setting(False, "torch.compile the student in our step")
    output: str | None = setting(None, "JSON file for the results", shown="print only")
    inference_models: list[str] | None = setting(None, "inference mode: these models (PyTorch checkpoints, minilm "
                                                 "export directories or one .onnx graph in one) timed side by side on "
                                                 "SST-2 dev sentences, instead of the distillation step",
                                                 shown="none: the step benchmark")
    inference_batch_sizes: list[int] = setting([1, 32], "inference mode: batch sizes timed", range="[1, inf)")
    inference_lengths: list[int] = setting([0, 128], "inference mode: input lengths timed: 0 is the dev sentences "
                                           "as they are (each batch padded to its longest), N inputs of N tokens of "
                                           "running dev text", range="[0, inf)", hint="0: the sentences as they are")
    inference_threads: list[int] = setting([1, 2], "inference mode: threads each runtime computes with (PyTorch's "
                                           "and onnxruntime's alike), each count timed", range="[1, inf)")
    student: BenchStudent = field(default_factory=BenchStudent)
    relations: Relations = field(default_factory=Relations)

    def check(self) -> None:
        require(self.student.student_layers != 0, "student_layers 0 is a static student, which has no distillation "
                                                  "step of attention to time: give student_layers >= 1 (--speedup "
                                                  "times static students among the shapes)")


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
