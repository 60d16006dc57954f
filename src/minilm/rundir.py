"""Run directories: what identifies a run, who may write into one, and what `--overwrite` may delete.

A run directory holds `run.json` (the settings that define the run), `metrics.jsonl`, `checkpoints/`, the
final `model/` or `best/`, `metrics.json` and `tensorboard/`, and while a run is writing it, `.lock`.
Rules:
* the run's identity is its settings minus those that may change on a resume (`RESUMABLE`), and never
  where the directory lives: `runs/x`, `runs/x/`, its absolute path or the directory after a move are one run;
* one run at a time: the first holds an OS lock on `.lock` (released by the OS when the process ends,
  even by SIGKILL), a second is refused with the first one's process id;
* a directory with files that minilm did not write is never written into, and `--overwrite` deletes
  only minilm's own files of a minilm run.
Every check here happens before anything is written.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from minilm.config import field_default, to_dict
from minilm.errors import MiniLMError, require

# Settings that may change between a run and its resumption without making it another run.
RESUMABLE = {"output_dir", "max_minutes", "resume", "overwrite", "log_every", "save_every", "keep", "device",
             "cache_dir", "eval_every", "compile"}
# What minilm writes into a run directory: all that --overwrite may delete.
RUN_FILES = ("run.json", "metrics.jsonl", "metrics.json", "checkpoints", "model", "best", "tensorboard")
LOCK = ".lock"
_held: dict[tuple[int, int], Any] = {}  # (device, inode) of a .lock file -> this process's open, locked handle


def settings(cfg) -> dict[str, Any]:
    """What identifies a run: every setting but those a resume may change."""
    return {k: v for k, v in to_dict(cfg).items() if k not in RESUMABLE}


def check_writable(path: str | Path, what: str) -> None:
    """Fail now, with the path named, if `path` (or the directory it would be created in) cannot be written.

    Probes the nearest existing ancestor with a temporary file that is removed at once: nothing is left.
    """
    probe = Path(path).absolute()
    while not probe.exists():
        probe = probe.parent
    require(probe.is_dir(), f"{what} {path} cannot be created: {probe} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise MiniLMError(f"cannot write to {what} {path} ({probe}: {exc.strerror}); choose a directory you can "
                          "write to") from None


def lock_holder(out: Path) -> str | None:
    """Who holds the lock on run directory `out` ("pid N on HOST since T"), or None when no process does."""
    path = out / LOCK
    if not path.is_file() or _identity(path) in _held:  # none, or ours (the same file even after a move)
        return None
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def _identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def acquire_lock(out: Path) -> None:
    """Hold the run directory's lock until `release_locks` or the end of this process (a second run into the
    directory is refused meanwhile)."""
    if (out / LOCK).is_file() and _identity(out / LOCK) in _held:
        return
    handle = open(out / LOCK, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise MiniLMError(f"output_dir {out} is in use by another minilm run ({holder}); wait for it to finish "
                          "or choose another --output-dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    _held[_identity(out / LOCK)] = handle


def release_locks() -> None:
    """Release every run-directory lock this process holds (a command has written all it writes)."""
    for handle in _held.values():
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
    _held.clear()


def list_checkpoints(out: Path) -> list[Path]:
    directory = Path(out) / "checkpoints"
    if not directory.is_dir():
        return []
    found = [p for p in directory.glob("step-*") if (p / "trainer.json").is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def _foreign(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name not in RUN_FILES and p.name != LOCK
                  and not p.name.startswith((".tmp-", ".old-")))


def check_run_dir(cfg, main: bool = True) -> Path | None:
    """Check the output directory without writing; return the checkpoint to resume from, if any.

    A directory holding another run (different settings) is refused unless `overwrite` is set; one holding
    this run resumes from its newest checkpoint when `resume` is set; one with files minilm did not write,
    or one another run is writing, is refused. `main`: only the main process checks the lock.
    """
    out = Path(cfg.output_dir)
    require(not out.exists() or out.is_dir(), f"output_dir {out} exists and is not a directory")
    check_writable(out, "output_dir")
    if not out.is_dir() or not any(out.iterdir()):
        return None
    holder = lock_holder(out) if main else None
    require(holder is None, f"output_dir {out} is in use by another minilm run ({holder}); wait for it to finish "
                            "or choose another --output-dir")
    run_file = out / "run.json"
    if not run_file.is_file():
        foreign = _foreign(out)
        raise MiniLMError(f"output_dir {out} holds files that minilm did not write ({', '.join(foreign[:3])}"
                          f"{', ...' if len(foreign) > 3 else ''}); choose another --output-dir")
    if cfg.overwrite:
        return None
    try:
        previous = json.loads(run_file.read_text())
        require(isinstance(previous, dict), "not a mapping")
    except (json.JSONDecodeError, MiniLMError, UnicodeDecodeError) as exc:
        raise MiniLMError(f"output_dir {out} has a damaged run.json ({getattr(exc, 'msg', exc)}); pass --overwrite "
                          "to start this run afresh (minilm deletes only its own files)") from None
    previous.pop("output_dir", None)  # written by earlier versions; where a run lives is not what it is
    current = settings(cfg)
    defaults = {f.name: field_default(f) for f in dataclasses.fields(cfg)}
    # A setting that a later minilm added is no change while it keeps its default (the earlier run had it too).
    changed = sorted(k for k in set(current) | set(previous) if current.get(k) != previous.get(k)
                     and not (k not in previous and current.get(k) == defaults.get(k)))
    require(not changed, f"output_dir {out} holds a different run (changed: {', '.join(changed[:5])}); "
                         "choose another --output-dir, or pass --overwrite to replace it")
    checkpoints = list_checkpoints(out)
    require(cfg.resume or not checkpoints, f"output_dir {out} holds a started run; pass --resume or --overwrite")
    return checkpoints[-1] if checkpoints else None


def start_run_dir(cfg, accelerator) -> None:
    """Take the directory's lock, clear a previous run under `overwrite` (minilm's files only), record the run."""
    out = Path(cfg.output_dir)
    if accelerator.is_main_process:
        try:
            out.mkdir(parents=True, exist_ok=True)
            acquire_lock(out)
            if cfg.overwrite:
                for name in RUN_FILES:
                    target = out / name
                    if target.is_dir():
                        shutil.rmtree(target)
                    elif target.exists():
                        target.unlink()
            write_atomic(out / "run.json", json.dumps(settings(cfg), indent=1, sort_keys=True))
        except OSError as exc:
            raise MiniLMError(f"cannot write to output_dir {out}: {exc.strerror or exc}") from None
    accelerator.wait_for_everyone()


def write_atomic(path: Path, text: str) -> None:
    """Write a text file under a temporary name, then rename it: a kill or a full disk leaves the old file."""
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
