"""What a run reports while it trains: metrics.jsonl (and TensorBoard), and the wall-clock budget all ranks agree on."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch


class MetricsLog:
    """Append-only JSONL metrics (main process only), plus TensorBoard when it is installed."""

    def __init__(self, out: Path, enabled: bool, resume_step: int = 0):
        self.path = Path(out) / "metrics.jsonl"
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        if self.path.exists():  # drop what a killed run logged after its last checkpoint
            kept, unreadable = [], 0
            for line in self.path.read_text(errors="replace").splitlines():
                try:
                    if line.strip() and json.loads(line).get("step", 0) <= resume_step:
                        kept.append(line)
                except (json.JSONDecodeError, AttributeError):
                    unreadable += 1  # a line half-written when a run was killed
            if unreadable:
                print(f"{self.path}: dropped {unreadable} unreadable line(s) left by a run that was killed")
            self.path.write_text("".join(line + "\n" for line in kept))
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(out) / "tensorboard"))
        except ImportError:
            pass

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, record["step"])


class WallClock:
    """A wall-clock budget that all ranks agree on (the slowest rank decides).

    `already` is the training time of the earlier parts of a resumed run: the budget and the reported
    training time cover the whole run, not only this process's part.
    """

    def __init__(self, minutes: float | None, already: float = 0.0):
        self.start = time.perf_counter() - already
        self.limit = None if minutes is None else 60.0 * minutes

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def spent(self, accelerator) -> bool:
        if self.limit is None:
            return False
        flag = torch.tensor([float(self.elapsed() >= self.limit)], device=accelerator.device)
        return bool(accelerator.reduce(flag, reduction="sum").item() > 0)
