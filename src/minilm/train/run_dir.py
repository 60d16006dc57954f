"""Run directories: what identifies a run, who may write into one, and what `--overwrite` may delete.

A run directory holds `run.json` (its format, the settings that define the run, and what `auto` settings
resolved to on this machine), `metrics.jsonl`, `checkpoints/`, the final `model/` or `best/`, `metrics.json`
and `tensorboard/`, and while a run is writing it, `.lock`.
Rules:
* the run's identity is its settings minus those declared `resumable` (they may change on a resume), and
  never where the directory lives: `runs/x`, `runs/x/`, its absolute path or the directory after a move are
  one run; a run directory of another `RUN_FORMAT` (an earlier minilm) is refused, never half-read;
* one run at a time: the first holds an OS lock on `.lock` (released by the OS when the process ends,
  even by SIGKILL), a second is refused with the first one's process id;
* a directory with files that minilm did not write is never written into, and `--overwrite` deletes
  only minilm's own files of a minilm run.
Every check here happens before anything is written.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from minilm.config.settings import flatten, resumable_names
from minilm.data.files import check_writable, write_atomic
from minilm.errors import MiniLMError, require
from minilm.models.fingerprint import changed_files, fingerprint

RUN_FORMAT = 3  # run.json's layout: {"format", "settings", "resolved"}; 3: students carry their plan (`models.plan`)
# What minilm writes into a run directory: all that --overwrite may delete.
RUN_FILES = ("run.json", "metrics.jsonl", "metrics.json", "checkpoints", "model", "best", "tensorboard",
             "student_shapes.json")
LOCK = ".lock"
_held: dict[tuple[int, int], Any] = {}  # (device, inode) of a .lock file -> this process's open, locked handle


TRAINED_AGAINST = "trained_against"  # the identity's record of the models a run reads, beside its settings


def identity(cfg, models: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    """What identifies a run of command config `cfg`: every setting but the resumable ones, and what it is trained
    against: `models` maps a role ("teacher", "model", "student_init") to (the name given, its resolved path),
    each recorded by the fingerprint of its files (`models.fingerprint`). A name alone would let a resume train
    against other weights put at the same path."""
    skip = resumable_names(type(cfg))
    run = {k: v for k, v in flatten(cfg).items() if k not in skip}
    if models:
        run[TRAINED_AGAINST] = {role: {"name": name, "files": fingerprint(path)}
                                for role, (name, path) in models.items()}
    return run


def _check_trained_against(out: Path, run: dict[str, Any], before: dict[str, Any]) -> None:
    """Refuse a resume whose models' files differ from those the run began with (a run.json written before
    fingerprints were recorded is not checked)."""
    now, then = run.get(TRAINED_AGAINST) or {}, before.get(TRAINED_AGAINST)
    for role, record in now.items() if then else ():
        earlier = then.get(role, {})
        if earlier.get("name") != record["name"]:
            continue  # a changed name is a changed setting, said below
        changed = changed_files(earlier.get("files", {}), record["files"])
        require(not changed, f"output_dir {out} was trained against another {role}: {record['name']} has changed "
                             f"since the run began ({', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''} "
                             f"differ); resuming would mix two {role}s: put the original files back, or pass "
                             "--overwrite to start afresh, or choose another --output-dir")


def lock_holder(out: Path) -> str | None:
    """Who holds the lock on run directory `out` ("pid N on HOST since T"), or None when no process does."""
    path = out / LOCK
    if not path.is_file() or _file_key(path) in _held:  # none, or ours (the same file even after a move)
        return None
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def _file_key(path: Path) -> tuple[int, int]:
    """(device, inode): the same file whatever path names it (a moved run directory keeps its lock)."""
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def acquire_lock(out: Path) -> None:
    """Hold the run directory's lock until `release_locks` or the end of this process (a second run into the
    directory is refused meanwhile)."""
    if (out / LOCK).is_file() and _file_key(out / LOCK) in _held:
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
    _held[_file_key(out / LOCK)] = handle


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


def check_run_dir(training, run: dict[str, Any], main: bool = True) -> Path | None:
    """Check `training.output_dir` without writing; return the checkpoint to resume from, if any.

    `run` is the run's identity (`identity(cfg)`). A directory holding another run (different settings) is
    refused unless `overwrite` is set; one holding this run resumes from its newest checkpoint when `resume`
    is set; one with files minilm did not write, or one another run is writing, is refused. `main`: only
    the main process checks the lock.
    """
    out = Path(training.output_dir)
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
    if training.overwrite:
        return None
    try:
        previous = json.loads(run_file.read_text())
        require(isinstance(previous, dict), "not a mapping")
    except (json.JSONDecodeError, MiniLMError, UnicodeDecodeError) as exc:
        raise MiniLMError(f"output_dir {out} has a damaged run.json ({getattr(exc, 'msg', exc)}); pass --overwrite "
                          "to start this run afresh (minilm deletes only its own files)") from None
    require(previous.get("format") == RUN_FORMAT and isinstance(previous.get("settings"), dict),
            f"output_dir {out} holds a run of an earlier minilm version (run format {previous.get('format', 1)}, "
            f"now {RUN_FORMAT}); pass --overwrite to start it afresh, or choose another --output-dir")
    before = previous["settings"]
    _check_trained_against(out, run, before)
    changed = sorted(k for k in set(run) | set(before) if k != TRAINED_AGAINST and run.get(k) != before.get(k))
    require(not changed, f"output_dir {out} holds a different run (changed: {', '.join(changed[:5])}); "
                         "choose another --output-dir, or pass --overwrite to replace it")
    checkpoints = list_checkpoints(out)
    require(training.resume or not checkpoints, f"output_dir {out} holds a started run; pass --resume or --overwrite")
    return checkpoints[-1] if checkpoints else None


def start_run_dir(training, run: dict[str, Any], resolved: dict[str, Any], accelerator,
                  files: dict[str, str] | None = None) -> None:
    """Take the directory's lock, clear a previous run under `overwrite` (minilm's files only), record the run:
    its identity and what its `auto` settings resolved to here, and the run's own `files` ({name in RUN_FILES:
    text}: the speed table a student was chosen from), each written atomically."""
    out = Path(training.output_dir)
    if accelerator.is_main_process:
        try:
            out.mkdir(parents=True, exist_ok=True)
            acquire_lock(out)
            if training.overwrite:
                for name in RUN_FILES:
                    target = out / name
                    if target.is_dir():
                        shutil.rmtree(target)
                    elif target.exists():
                        target.unlink()
            record = {"format": RUN_FORMAT, "settings": run, "resolved": resolved}
            write_atomic(out / "run.json", json.dumps(record, indent=1, sort_keys=True))
            for name, text in (files or {}).items():
                require(name in RUN_FILES, f"{name} is not a run file")
                write_atomic(out / name, text)
        except OSError as exc:
            raise MiniLMError(f"cannot write to output_dir {out}: {exc.strerror or exc}") from None
    accelerator.wait_for_everyone()


def read_run(out: Path) -> dict[str, Any] | None:
    """The run.json of a run directory ({"format", "settings", "resolved"}), or None when it has none that this
    version writes."""
    try:
        record = json.loads((Path(out) / "run.json").read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("format") == RUN_FORMAT else None
