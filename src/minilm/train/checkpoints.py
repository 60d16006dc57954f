"""Checkpoints of a run, and the best dev checkpoint of a task run.

A checkpoint holds the model in Hugging Face format (`model/`, loadable with `from_pretrained`), accelerate's
training state (`state/`: weights, optimizer, scheduler, scaler, every rank's RNG states) and `trainer.json` (the
step, which fixes the data position). It is written to a temporary directory and renamed, so a kill during the
write leaves the previous checkpoint intact; only the newest `keep` are kept. `best/` holds the model with the
best dev score so far (`keep_best`), with its scores in `dev.json`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from minilm.errors import MiniLMError, require
from minilm.models.loading import save_model
from minilm.train.run_dir import list_checkpoints


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
            # the run directory's lock makes this the only writer: any other .tmp-step-* is a killed run's
            for stale in directory.glob(".tmp-step-*"):
                shutil.rmtree(stale, ignore_errors=True)
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


def best_so_far(out: Path) -> dict | None:
    """The dev record of `out/best` (scores and step), if a checkpoint was kept there."""
    path = Path(out) / "best" / "dev.json"
    return json.loads(path.read_text()) if path.is_file() else None


def keep_best(model, tokenizer, scores: dict, step: int, best: dict | None, out: Path) -> dict:
    """Save `model` to `out/best` (with dev.json) when `scores["main"]` beats `best`; return the best record."""
    if best is None or scores["main"] > best["main"]:
        best = {**scores, "step": step}
        save_model(model, tokenizer, Path(out) / "best")
        (Path(out) / "best" / "dev.json").write_text(json.dumps(best, indent=1))
    return best
