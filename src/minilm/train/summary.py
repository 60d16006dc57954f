"""The record a task run leaves in `metrics.json` (`RunSummary`): its best dev scores, the best model's size and
inference speed, and the task and QA settings it was scored with, so that `minilm report` reads the same split again
and re-scores it exactly as the run did. One dataclass: `write_summary` writes it, `RunSummary.read` reads it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minilm.config.sections import QAWindows, Task
from minilm.data.files import write_atomic
from minilm.deploy.runtime import load_task_model
from minilm.errors import MiniLMError
from minilm.models.architectures import family_of
from minilm.models.source import resolve_model
from minilm.models.students import count_parameters
from minilm.tasks.kinds import SPAN
from minilm.tasks.scoring import inference_speed


@dataclass
class RunSummary:
    """What a task run (`minilm finetune`, task-specific `minilm distill`) wrote into `metrics.json`."""

    model: str  # the model the run started from (the teacher, for a distillation)
    task: str
    task_section: dict[str, Any]  # the run's `Task` settings
    metric: str
    kind: str  # the task's kind by name (`tasks.kinds.kind_named`)
    best: dict[str, Any]  # the best dev scores ("main", "step", ...)
    layers: int
    hidden: int
    parameters: int
    max_length: int
    examples_per_s: float
    speed_batch_size: int = 32
    steps: int = 0
    train_seconds: float = 0.0
    qa: dict[str, Any] = field(default_factory=dict)  # the run's `QAWindows` settings (QA runs)

    def task_settings(self) -> Task:
        return Task(**self.task_section)

    def windows(self) -> QAWindows:
        """The QA windows and post-processing the run scored with."""
        return QAWindows(**self.qa)

    @classmethod
    def read(cls, path: Path) -> "RunSummary":
        """The summary in `path` (a metrics.json); a record of an earlier minilm, which kept only the stride of its
        QA windows, reads with the other QA settings at their defaults."""
        try:
            record = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise MiniLMError(f"{path} is not valid JSON ({exc.msg})") from None
        if "doc_stride" in record:
            record.setdefault("qa", {"doc_stride": record.pop("doc_stride")})
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in record
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise MiniLMError(f"{path} lacks {', '.join(missing)}: is it the metrics.json of a minilm task run?")
        return cls(**{k: v for k, v in record.items() if k in names})

    def write(self, out: Path) -> None:
        write_atomic(Path(out) / "metrics.json", json.dumps(dataclasses.asdict(self), indent=1))


def write_summary(out: Path, source: str, task, dev, best: dict, steps: int, seconds: float,
                  max_length: int, device, qa: QAWindows) -> RunSummary:
    """`out/metrics.json`: best dev scores, size and inference speed of `out/best`, the task (its `Task` section)
    and, for QA runs, every setting of its windows and answer selection."""
    out = Path(out)
    best_source = resolve_model(str(out / "best"))
    best_model = load_task_model(best_source.path, dev, source=best_source)
    speed = inference_speed(best_model, best_source.tokenizer, dev, max_length, device, qa=qa)
    shape = family_of(best_model).shape(best_model.config)
    summary = RunSummary(model=source, task=task.task, task_section=dataclasses.asdict(task), metric=dev.metric,
                         kind=dev.kind.name, best=best, layers=shape.layers, hidden=shape.hidden,
                         parameters=count_parameters(best_model),
                         max_length=max_length, examples_per_s=speed["examples_per_s"],
                         speed_batch_size=speed["speed_batch_size"], steps=steps, train_seconds=seconds,
                         qa=dataclasses.asdict(qa) if dev.kind is SPAN else {})
    summary.write(out)
    print(f"best dev {dev.kind.metric_name(dev)}: {best['main']:.2f} at step {best['step']}; "
          f"model in {out / 'best'}")
    return summary
