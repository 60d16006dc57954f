"""The summary a task run leaves in `metrics.json`: its best dev scores, the best model's size and inference speed,
and the task (so that `minilm report` can read the same split again)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from minilm.config.sections import QAWindows
from minilm.data.files import write_atomic
from minilm.deploy.runtime import load_task_model
from minilm.models.loading import load_tokenizer
from minilm.models.students import count_parameters
from minilm.tasks.kinds import SPAN
from minilm.tasks.scoring import inference_speed


def write_summary(out: Path, source: str, task, dev, best: dict, steps: int, seconds: float,
                  max_length: int, device, qa: QAWindows) -> dict:
    """`out/metrics.json`: best dev scores, size and inference speed of `out/best`, and the task (its `Task`
    section, so that `minilm report` can read the same split again); QA runs also record their windows' stride."""

    out = Path(out)
    tokenizer = load_tokenizer(str(out / "best"))
    best_model = load_task_model(str(out / "best"), dev)
    summary = {"model": source, "task": task.task, "task_section": dataclasses.asdict(task), "metric": dev.metric,
               "best": best,
               "layers": best_model.config.num_hidden_layers, "hidden": best_model.config.hidden_size,
               "parameters": count_parameters(best_model), "steps": steps, "train_seconds": seconds,
               "max_length": max_length, "kind": dev.kind.name,
               **({"doc_stride": qa.doc_stride} if dev.kind is SPAN else {}),
               **inference_speed(best_model, tokenizer, dev, max_length, device, qa=qa)}
    write_atomic(out / "metrics.json", json.dumps(summary, indent=1))
    print(f"best dev {dev.kind.metric_name(dev)}: {best['main']:.2f} at step {best['step']}; "
          f"model in {out / 'best'}")
    return summary
