"""The one training loop, shared by `minilm distill` and `minilm finetune`.

A command runs in three moves, top to bottom:

1. `start(training, run)`: the accelerator, the precision (`device_policy.resolve_precision`, said in one line),
   the run-directory check (nothing is written yet) and the seed. It returns the `Runtime`.
2. The command builds what it trains (models, data, the loss terms) on that runtime, and describes it as a
   `Recipe`. A bad input stops here, before anything is written.
3. `fit(runtime, recipe)`: the run's length (`Training.total_steps`), the device step policy
   (`device_policy.apply_step_policy`), the run directory (`run.json` records the resolved precision), AdamW
   with its schedule, `accelerator.prepare`, the resume from the newest checkpoint, then the loop: every step
   `loss_terms` (under the run's autocast), then backward, clip, optimizer and schedule step;
   every `log_every` steps (and at the last) the terms averaged over ranks, the learning rate, tokens/s and the
   real (unpadded) tokens trained on so far to `metrics.jsonl`; every `eval_every` steps (and at the last, and
   when the wall clock is spent) the dev evaluation, the best model kept in `output_dir/best`; every
   `save_every` steps (and at the last) a checkpoint.

The loop owns the precision: `loss_terms` opens bf16 autocast around the recipe's loss terms, and nothing
below opens its own. The command then writes its final artifacts from the `FitResult`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm import tqdm

from minilm.config.sections import Training
from minilm.data.batches import StepBatches
from minilm.errors import MiniLMError
from minilm.train.checkpoints import best_so_far, keep_best, load_checkpoint, save_checkpoint
from minilm.train.device_policy import apply_step_policy, resolve_precision
from minilm.train.metrics_log import MetricsLog, WallClock
from minilm.train.optimization import autocast, make_accelerator, make_optimizer, optimizer_step
from minilm.train.preemption import Preemption
from minilm.train.run_dir import check_run_dir, list_checkpoints, read_run, start_run_dir

Losses = Callable[[nn.Module, dict], dict[str, torch.Tensor]]


@dataclass
class Runtime:
    """A started run: the accelerator, the precision it resolved to (bf16 or fp32) and why, its settings and
    identity, and the checkpoint it resumes from (None for a fresh run)."""

    accelerator: Any
    precision: str
    precision_reason: str
    training: Training
    run: dict[str, Any]
    resume_from: Path | None

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process

    def main_process_first(self):
        """A block the main process runs first (a shared cache written once, then read by every rank)."""
        return self.accelerator.main_process_first()

    def say(self, line: str) -> None:
        """A line for the user, from the main process only (the others say nothing)."""
        if self.is_main_process:
            print(line)

    def from_main(self, compute):
        """`compute()` on the main process, its result handed to every other (one process times or measures;
        the others take its answer)."""
        if self.accelerator.num_processes == 1:
            return compute()
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([compute() if self.is_main_process else None])[0]


@dataclass
class Recipe:
    """What a command hands to `fit`.

    trained: the module whose trainable parameters are optimised (wrapped for DDP/compile by accelerate);
        it may hold training-only parts (projections, heads) beside the model that is saved.
    saved: the plain Hugging Face model written into checkpoints, `best/` and the final model.
    losses: (wrapped `trained`, batch on the device) -> named loss terms; their sum is minimised.
    evaluate: scores of `saved` on the dev split with a "main" key (called on the main process only).
    teacher: a frozen model the losses read, for the device step policy.
    run_files: files the run directory holds beside its record ({name: text}, `run_dir.RUN_FILES`), written when
        the run starts.
    lr: the peak learning rate, when the training section leaves it to the command (`Training.lr_for`).
    """

    trained: nn.Module
    saved: nn.Module
    tokenizer: Any
    batches: StepBatches
    losses: Losses
    evaluate: Callable[[], dict] | None = None
    metric: str = "main"  # the name of the dev score, for messages
    teacher: nn.Module | None = None
    description: str = "train"
    run_files: dict[str, str] | None = None
    lr: float | None = None


@dataclass
class FitResult:
    accelerator: Any
    recipe: Recipe
    step: int  # the last step reached
    trained_steps: int  # steps run by this call (0 when a finished run is restarted)
    seconds: float  # training time of the whole run, the earlier parts of a resumed run included
    best: dict | None  # the best dev record, when the recipe evaluates

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process


def start(training: Training, run: dict[str, Any]) -> Runtime:
    """Begin (or resume) a run under `training`; `run` is its identity (`run_dir.identity` of the command's
    config), recorded in and checked against `run.json`. Nothing is written yet."""
    from accelerate.utils import broadcast_object_list, set_seed

    accelerator = make_accelerator(training.device, training.compile)
    precision, why = resolve_precision(training.precision, accelerator.device)
    if accelerator.num_processes > 1:  # auto's bf16 probe is timed on each rank: every rank takes rank 0's answer
        precision, why = broadcast_object_list([precision, why])
    if accelerator.is_main_process:
        print(why)
    resume_from = check_run_dir(training, run, accelerator.is_main_process)
    set_seed(training.seed)
    return Runtime(accelerator, precision, why, training, run, resume_from)


def nothing_left(runtime: Runtime) -> str | None:
    """Why a resumed run has nothing left to train, or None: its newest checkpoint is at the run's last step (the
    length `fit` recorded in run.json), or its wall-clock budget is spent. A command asks before it builds its
    data and models, which a finished run would build for nothing."""
    if runtime.resume_from is None:
        return None
    out = Path(runtime.training.output_dir)
    state = json.loads((runtime.resume_from / "trainer.json").read_text())
    total = ((read_run(out) or {}).get("resolved") or {}).get("total_steps")
    if total is not None and state["step"] >= total:
        return f"the run in {out} already reached step {state['step']}; nothing to train"
    budget = runtime.training.max_minutes
    if budget is not None and state.get("elapsed_s", 0.0) >= 60.0 * budget:
        return (f"the run in {out} already spent its wall-clock budget of {budget} min at step {state['step']}; "
                "raise --max-minutes to train on")
    return None


def check_finite(loss: torch.Tensor, step: int, out: Path) -> None:
    value = float(loss.detach())
    if not math.isfinite(value):
        last = list_checkpoints(out)
        raise MiniLMError(f"the loss became {value} at step {step}; stopped, last good checkpoint: "
                          f"{last[-1] if last else 'none'} (try a lower --lr or --precision fp32)")


def loss_terms(model: nn.Module, batch: dict, losses: Losses, device_type: str, precision: str
               ) -> dict[str, torch.Tensor]:
    """One step's named loss terms, computed under the run's autocast (bf16, or none for fp32): the one place a
    training step's precision is applied. Losses cast what they read to float32 themselves."""
    with autocast(device_type, precision):
        return losses(model, batch)


def fit(runtime: Runtime, recipe: Recipe) -> FitResult:
    """Train what `recipe` describes on a started run (see the module docstring)."""
    cfg, accelerator = runtime.training, runtime.accelerator
    out, main = Path(cfg.output_dir), accelerator.is_main_process
    total = cfg.total_steps(recipe.batches.per_epoch)
    applied = apply_step_policy(accelerator.device.type, runtime.precision, cfg.compile, [recipe.saved], recipe.teacher)
    lr = recipe.lr if recipe.lr is not None else cfg.lr
    if lr is None:
        raise MiniLMError("no learning rate: give --lr")
    start_run_dir(cfg, runtime.run, {"precision": runtime.precision, "precision_reason": runtime.precision_reason,
                                     "total_steps": total, "lr": lr}, accelerator, recipe.run_files)
    optimizer, scheduler = make_optimizer(recipe.trained, cfg, total, lr)
    model, optimizer = accelerator.prepare(recipe.trained, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    begin, already, seen = 0, 0.0, 0
    if runtime.resume_from:
        state = load_checkpoint(accelerator, runtime.resume_from)
        begin, already, seen = state["step"], state["elapsed_s"], state["tokens"]
        if main:
            print(f"resuming from {runtime.resume_from} (step {begin})")
    if main and applied:
        print(f"{accelerator.device.type} step policy: {', '.join(applied)}")
    log = MetricsLog(out, main, begin)
    best = best_so_far(out) if runtime.resume_from else None
    clock, tokens = WallClock(cfg.max_minutes, already), 0
    this_call = WallClock(None)
    step = begin
    stop = clock.spent(accelerator)  # a resumed run may have spent its budget already
    terminated = False
    with Preemption() as preemption, tqdm(total=total, initial=begin, desc=recipe.description, disable=not main,
                                          dynamic_ncols=True) as bar:
        model.train()
        while step < total and not stop and not terminated:
            batch = {k: v.to(accelerator.device) for k, v in recipe.batches[step].items()}
            terms = loss_terms(model, batch, recipe.losses, accelerator.device.type, runtime.precision)
            loss = sum(terms.values())
            check_finite(loss, step + 1, out)
            optimizer_step(accelerator, model, optimizer, scheduler, loss, cfg.grad_clip)
            step += 1
            step_tokens = int(batch["attention_mask"].sum()) * accelerator.num_processes
            tokens, seen = tokens + step_tokens, seen + step_tokens
            bar.update(1)
            last = step == total
            if step % cfg.log_every == 0 or last:
                values = {k: accelerator.reduce(v.detach(), reduction="mean").item() for k, v in terms.items()}
                record = {"step": step, **(values if len(values) > 1 else {}), "loss": sum(values.values()),
                          "lr": scheduler.get_last_lr()[0], "tokens_per_s": tokens / max(this_call.elapsed(), 1e-9),
                          "tokens": seen, "elapsed_s": clock.elapsed(), "processes": accelerator.num_processes}
                bar.set_postfix(loss=f"{record['loss']:.4f}", tok_s=f"{record['tokens_per_s']:,.0f}")
                log.write(record)
            stop = clock.spent(accelerator)
            # SIGTERM (or Ctrl-C) skips the evaluation it did not fall on: the grace period is short, and the
            # resumed run then evaluates at the steps an uninterrupted one does.
            terminated = preemption.requested(accelerator) and not last
            if recipe.evaluate is not None and (step % cfg.eval_every == 0 or last or stop):
                if main:
                    scores = recipe.evaluate()
                    log.write({"step": step, **{f"dev_{k}": v for k, v in scores.items()}})
                    best = keep_best(recipe.saved, recipe.tokenizer, scores, step, best, out)
                    bar.write(f"step {step}: dev {recipe.metric} {scores['main']:.2f}")
                accelerator.wait_for_everyone()
            if (cfg.save_every and step % cfg.save_every == 0) or last or stop or terminated:
                saved = save_checkpoint(accelerator, recipe.saved, recipe.tokenizer, out, step, cfg.keep,
                                        extra={"elapsed_s": clock.elapsed(), "tokens": seen})
            if terminated:
                raise preemption.stopped(step, total, saved)
            if stop and main:
                print(f"wall-clock budget of {cfg.max_minutes} min spent at step {step}")
    if main and step == begin:
        print(f"the run in {out} already reached step {step}; nothing to train" if step == total else
              f"the run in {out} already spent its wall-clock budget of {cfg.max_minutes} min at step {step}; "
              "raise --max-minutes to train on")
    return FitResult(accelerator, recipe, step, step - begin, clock.elapsed() if step > begin else already, best)
