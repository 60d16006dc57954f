"""What kind of task a split is, and what follows from it: head, loss, L_OUT, metric, predictions.

| kind | head (`models.heads.HEADS`) | outputs | task loss | L_OUT (task-specific distillation) | scored by |
|---|---|---|---|---|---|
| `CLASSIFICATION` | sequence classification | one per class | cross-entropy | `losses.output_kl` | the task's GLUE metric |
| `REGRESSION` | sequence classification | 1 | mean squared error | MSE to the teacher's value | Pearson/Spearman |
| `SPAN` | question answering | start and end per token | `losses.span_loss` | `losses.span_kl` | SQuAD EM/F1 |

Task logits are what `models.heads.task_logits` returns: (batch, outputs), or (batch, seq, 2) start and end
scores for `SPAN`. A fine-tuned checkpoint says its own kind (`kind_of_model`): its head, and for a
sequence classifier its `problem_type`. How a split is encoded and scored follows its kind too
(`tasks.encode`, `tasks.scoring.evaluate_model`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from minilm.config.sections import QA_MAX_LENGTH, SENTENCE_MAX_LENGTH
from minilm.errors import require
from minilm.losses.output import output_kl, span_kl, span_loss


class TaskKind:
    name = ""
    head = "classification"
    default_max_length = SENTENCE_MAX_LENGTH
    label_keys: tuple[str, ...] = ("labels",)  # what a batch holds beside the model inputs
    logits_layout = "vector"  # the task logits' shape, as a kept teacher's are stored: (batch, outputs)

    def num_outputs(self, data) -> int:
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """The supervised loss of task logits against a batch's gold labels (float32)."""
        raise NotImplementedError

    def output_loss(self, teacher_logits: torch.Tensor, student_logits: torch.Tensor, attention_mask: torch.Tensor,
                    temperature: float) -> torch.Tensor:
        """L_OUT: the student's task logits against the teacher's."""
        raise NotImplementedError

    def metric_name(self, data) -> str:
        return data.metric

    def __repr__(self) -> str:
        return f"TaskKind({self.name})"


class _Sentence(TaskKind):
    def name_model(self, config, data) -> None:
        """Record the task's class names and problem type in a model config (what pipelines and `evaluate` read)."""
        config.id2label = data.id2label()
        config.label2id = {v: k for k, v in config.id2label.items()}
        config.problem_type = self.problem_type

    def check_training_split(self, train) -> None:
        """A training split this kind can learn from (see `Classification`)."""


class Classification(_Sentence):
    name = "classification"
    problem_type = "single_label_classification"

    def num_outputs(self, data) -> int:
        return len(data.label_names)

    def loss(self, logits, batch):
        return F.cross_entropy(logits.float(), batch["labels"])

    def output_loss(self, teacher_logits, student_logits, attention_mask, temperature):
        return output_kl(teacher_logits, student_logits, temperature)

    def predictions(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.argmax(-1)

    def shown(self, value, data) -> str:
        return data.label_names[int(value)]

    def check_training_split(self, train) -> None:
        """At least two classes present: one class "learns" 100% dev accuracy without a warning."""
        present = sorted({train.label_names[y] for y in train.labels})
        require(len(present) >= 2, f"the training split {train.source} has examples of one class only "
                                   f"({present[0]}); a classifier needs at least two")


class Regression(_Sentence):
    name = "regression"
    problem_type = "regression"

    def num_outputs(self, data) -> int:
        return 1

    def loss(self, logits, batch):
        return F.mse_loss(logits.float().squeeze(-1), batch["labels"].float())

    def output_loss(self, teacher_logits, student_logits, attention_mask, temperature):
        return F.mse_loss(student_logits.float(), teacher_logits.detach().float())

    def predictions(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.squeeze(-1)

    def shown(self, value, data) -> str:
        return str(value)


class SpanExtraction(TaskKind):
    name = "span"
    head = "question-answering"
    default_max_length = QA_MAX_LENGTH
    label_keys = ("start_positions", "end_positions")
    logits_layout = "token"  # (batch, seq, 2)

    def num_outputs(self, data) -> int:
        return 2

    def loss(self, logits, batch):
        return span_loss(logits[..., 0], logits[..., 1], batch["start_positions"], batch["end_positions"])

    def output_loss(self, teacher_logits, student_logits, attention_mask, temperature):
        return span_kl(teacher_logits, student_logits, attention_mask, temperature)

    def metric_name(self, data) -> str:
        return "F1"

    def name_model(self, config, data) -> None:
        """A question-answering head has no classes to name."""

    def check_training_split(self, train) -> None:
        """Any set of questions can be learned from."""


CLASSIFICATION, REGRESSION, SPAN = Classification(), Regression(), SpanExtraction()
KINDS = {kind.name: kind for kind in (CLASSIFICATION, REGRESSION, SPAN)}


def kind_named(name: str) -> TaskKind:
    """The kind recorded by name in a run's metrics.json."""
    return KINDS[name]


def kind_of_model(config) -> TaskKind | None:
    """The kind a checkpoint was fine-tuned for, from its head and problem type; None for a bare encoder.

    A sequence classifier written without a `problem_type` is a regressor when it has one output (a softmax
    over one logit is constant, so no classifier has one)."""
    from minilm.models.heads import head_of

    head = head_of(config)
    if head == SPAN.head:
        return SPAN
    if head != "classification":
        return None
    if config.problem_type:
        return REGRESSION if config.problem_type == "regression" else CLASSIFICATION
    return REGRESSION if config.num_labels == 1 else CLASSIFICATION
