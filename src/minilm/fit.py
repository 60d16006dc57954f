"""The one training loop, shared by `minilm distill` and `minilm finetune`.

A command describes its run as a `Recipe` (the module trained, the model saved, the batches, the
named loss terms, an optional dev evaluation) built by a function `fit` calls once the accelerator
exists; `fit` owns everything else, in this order:

1. the accelerator, the precision (`policy.resolve_precision`, said in one line), the run-directory check
   (nothing written yet) and the seed;
2. `build(runtime)`: the command loads models and data and checks its settings; a bad input
   stops here, before anything is written; the run's length follows from its batches
   (`Training.total_steps`);
3. the device step policy (`policy.apply_step_policy`), the run directory (`run.json` records the
   resolved precision), AdamW with its schedule, `accelerator.prepare`, and the resume from the newest
   checkpoint;
4. the loop: loss terms, backward, clip, optimizer and schedule step; every `log_every` steps (and
   at the last) the terms averaged over ranks, the learning rate, tokens/s and the real (unpadded)
   tokens trained on so far (the earlier parts of a resumed run included) to `metrics.jsonl`;
   every `eval_every` steps (and at the last, and when the wall clock is spent) the dev evaluation,
   the best model kept in `output_dir/best`; every `save_every` steps (and at the last) a checkpoint.

The command then writes its final artifacts from the `FitResult` (the final model, `metrics.json`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm import tqdm

from minilm.config import Training
from minilm.data import StepBatches
from minilm.evaluation import best_so_far, keep_best
from minilm.policy import apply_step_policy, resolve_precision
from minilm.rundir import check_run_dir, start_run_dir
from minilm.training import (MetricsLog, WallClock, check_finite, load_checkpoint, make_accelerator, make_optimizer,
                             optimizer_step, save_checkpoint)


@dataclass
class Runtime:
    """What `build` is handed: the accelerator and the precision the run resolved to (bf16 or fp32)."""

    accelerator: Any
    precision: str

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process


@dataclass
class Recipe:
    """What a command hands to `fit`.

    trained: the module whose trainable parameters are optimised (wrapped for DDP/compile by accelerate);
        it may hold training-only parts (projections, heads) beside the model that is saved.
    saved: the plain Hugging Face model written into checkpoints, `best/` and the final model.
    losses: (wrapped `trained`, batch on the device) -> named loss terms; their sum is minimised.
    evaluate: scores of `saved` on the dev split with a "main" key (called on the main process only).
    teacher: a frozen model the losses read, for the device step policy.
    """

    trained: nn.Module
    saved: nn.Module
    tokenizer: Any
    batches: StepBatches
    losses: Callable[[nn.Module, dict], dict[str, torch.Tensor]]
    evaluate: Callable[[], dict] | None = None
    metric: str = "main"  # the name of the dev score, for messages
    teacher: nn.Module | None = None
    description: str = "train"


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


def fit(training: Training, build: Callable[[Runtime], Recipe], run: dict[str, Any]) -> FitResult:
    """Run (or resume) the training that `build` describes under `training`; `run` is the run's identity
    (`rundir.identity` of the command's config), recorded in and checked against `run.json`."""
    from accelerate.utils import broadcast_object_list, set_seed

    cfg = training
    accelerator = make_accelerator(cfg.device, cfg.compile)
    out, main = Path(cfg.output_dir), accelerator.is_main_process
    precision, why = resolve_precision(cfg.precision, accelerator.device)
    if accelerator.num_processes > 1:  # auto's bf16 probe is timed on each rank: every rank takes rank 0's answer
        precision, why = broadcast_object_list([precision, why])
    if main:
        print(why)
    resume_from = check_run_dir(cfg, run, main)
    set_seed(cfg.seed)
    recipe = build(Runtime(accelerator, precision))
    total = cfg.total_steps(recipe.batches.per_epoch)
    applied = apply_step_policy(accelerator.device.type, precision, cfg.compile, [recipe.saved], recipe.teacher)
    start_run_dir(cfg, run, {"precision": precision, "precision_reason": why}, accelerator)
    optimizer, scheduler = make_optimizer(recipe.trained, cfg, total)
    model, optimizer = accelerator.prepare(recipe.trained, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    start, already, seen = 0, 0.0, 0
    if resume_from:
        state = load_checkpoint(accelerator, resume_from)
        start, already, seen = state["step"], state["elapsed_s"], state["tokens"]
        if main:
            print(f"resuming from {resume_from} (step {start})")
    if main and applied:
        print(f"{accelerator.device.type} step policy: {', '.join(applied)}")
    log = MetricsLog(out, main, start)
    best = best_so_far(out) if resume_from else None
    clock, tokens = WallClock(cfg.max_minutes, already), 0
    this_call = WallClock(None)
    step = start
    stop = clock.spent(accelerator)  # a resumed run may have spent its budget already
    with tqdm(total=total, initial=start, desc=recipe.description, disable=not main, dynamic_ncols=True) as bar:
        model.train()
        while step < total and not stop:
            batch = {k: v.to(accelerator.device) for k, v in recipe.batches[step].items()}
            terms = recipe.losses(model, batch)
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
            if recipe.evaluate is not None and (step % cfg.eval_every == 0 or last or stop):
                if main:
                    scores = recipe.evaluate()
                    log.write({"step": step, **{f"dev_{k}": v for k, v in scores.items()}})
                    best = keep_best(recipe.saved, recipe.tokenizer, scores, step, best, out)
                    bar.write(f"step {step}: dev {recipe.metric} {scores['main']:.2f}")
                accelerator.wait_for_everyone()
            if (cfg.save_every and step % cfg.save_every == 0) or last or stop:
                save_checkpoint(accelerator, recipe.saved, recipe.tokenizer, out, step, cfg.keep,
                                extra={"elapsed_s": clock.elapsed(), "tokens": seen})
            if stop and main:
                print(f"wall-clock budget of {cfg.max_minutes} min spent at step {step}")
    if main and step == start:
        print(f"the run in {out} already reached step {step}; nothing to train" if step == total else
              f"the run in {out} already spent its wall-clock budget of {cfg.max_minutes} min at step {step}; "
              "raise --max-minutes to train on")
    return FitResult(accelerator, recipe, step, step - start, clock.elapsed() if step > start else already, best)
