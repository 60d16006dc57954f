"""What every training run shares: the run directory, accelerate, optimizer, checkpoints, metrics.

A run directory holds `run.json` (the settings that define the run), `metrics.jsonl`,
`checkpoints/step-NNNNNNNN/` and, at the end, the final model. A checkpoint holds the model in HF
format (`model/`, loadable with `from_pretrained`), accelerate's training state (`state/`: weights,
optimizer, scheduler, scaler, every rank's RNG states) and `trainer.json` (the step, which fixes the
data position). It is written to a temporary directory and renamed, so a kill during the write leaves
the previous checkpoint intact; only the newest `keep` are kept.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from minilm.errors import MiniLMError, require
from minilm.rundir import list_checkpoints


def make_accelerator(device: str, compile: bool = False):
    """An `Accelerator` for `device` (auto, cpu, cuda): one process, or DDP under torchrun/accelerate launch.

    Mixed precision is not delegated to it: the loops open `autocast` themselves around the model
    code only, so that the relation softmax/KL visibly stays in float32.
    """
    from accelerate import Accelerator

    from minilm.policy import pick_device

    # accelerate only forms a multi-process CPU group (gloo) when told cpu=True.
    cpu = pick_device(device).type == "cpu"
    return Accelerator(cpu=cpu, mixed_precision="no", dynamo_backend="inductor" if compile else "no")


def autocast(device_type: str, precision: str):
    """bf16 autocast for model code (projections, attention); the losses cast to float32 themselves.
    `precision` is a resolved one (bf16 or fp32: `policy.resolve_precision`)."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


def make_optimizer(model: torch.nn.Module, training, total_steps: int):
    """AdamW (no decay on biases and LayerNorm) with linear warm-up then linear decay to zero."""
    from transformers import get_linear_schedule_with_warmup

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    groups = [{"params": decay, "weight_decay": training.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:  # the fused kernel (CPU and CUDA in recent torch) is several times faster than the loop
        optimizer = torch.optim.AdamW(groups, lr=training.lr, betas=tuple(training.betas), fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.AdamW(groups, lr=training.lr, betas=tuple(training.betas))
    warmup = training.warmup_steps if training.warmup_steps >= 0 else total_steps // 10
    warmup = min(warmup, max(total_steps - 1, 0))
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total_steps)


def optimizer_step(accelerator, model, optimizer, scheduler, loss: torch.Tensor, grad_clip: float) -> None:
    """Backward (DDP averages gradients across ranks), clip, AdamW step, schedule step, clear gradients."""
    accelerator.backward(loss)
    if grad_clip > 0:
        accelerator.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def save_checkpoint(accelerator, hf_model, tokenizer, out: Path, step: int, keep: int,
                    extra: dict | None = None) -> Path:
    """Atomically write checkpoint `step` (all ranks must call this) and rotate old ones.

    `hf_model` is the bare Hugging Face model (not the DDP wrapper), saved with `save_pretrained`.
    """
    directory = Path(out) / "checkpoints"
    final = directory / f"step-{step:08d}"
    tmp = directory / f".tmp-step-{step:08d}"
    try:
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp / "state"))
        torch.save(_rng_states(), tmp / "state" / f"{RNG_FILE}_{accelerator.process_index}.pt")
        accelerator.wait_for_everyone()  # every rank's files are in before the directory is renamed
        if accelerator.is_main_process:
            hf_model.save_pretrained(str(tmp / "model"))
            tokenizer.save_pretrained(str(tmp / "model"))
            (tmp / "trainer.json").write_text(json.dumps({"step": step, **(extra or {})}))
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            for old in list_checkpoints(out)[:-keep] if keep > 0 else []:
                shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        last = list_checkpoints(out)
        raise MiniLMError(f"cannot write checkpoint at step {step}: {exc.strerror or exc}; "
                          f"last good checkpoint: {last[-1] if last else 'none'}") from None
    accelerator.wait_for_everyone()
    return final


# This process's torch generators, saved by us as well as by accelerate: accelerate loads its copy with
# `weights_only=True` and, when that fails, only logs "Could not load random states" at info level. It
# failed with numpy 1.24 (its pickled RNG state names numpy classes outside torch's allow-list), and the
# resumed run then silently drew other dropout masks. Tensors alone always load.
RNG_FILE = "minilm_rng"


def _rng_states() -> dict[str, Any]:
    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def load_checkpoint(accelerator, checkpoint: Path) -> dict[str, Any]:
    """Restore accelerate's state (weights, optimizer, scheduler, RNG) and this process's torch
    generators; return trainer.json."""
    state = Path(checkpoint) / "state"
    try:
        accelerator.load_state(str(state))
    except Exception as exc:  # a file missing or damaged: accelerate raises several kinds
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise MiniLMError(f"checkpoint {checkpoint} is incomplete or damaged ({first}); delete it to resume from "
                          "the one before, or pass --overwrite to start afresh") from None
    rng = state / f"{RNG_FILE}_{accelerator.process_index}.pt"
    require(rng.is_file(), f"checkpoint {checkpoint} has no {rng.name}; delete it to resume from the one before, or "
                           "pass --overwrite to start afresh")
    saved = torch.load(rng, weights_only=True)
    torch.set_rng_state(saved["cpu"])
    if saved["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])
    return json.loads((Path(checkpoint) / "trainer.json").read_text())


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


def check_finite(loss: torch.Tensor, step: int, out: Path) -> None:
    value = float(loss.detach())
    if not math.isfinite(value):
        last = list_checkpoints(out)
        raise MiniLMError(f"the loss became {value} at step {step}; stopped, last good checkpoint: "
                          f"{last[-1] if last else 'none'} (try a lower --lr or --precision fp32)")


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
