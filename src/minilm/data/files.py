"""Writing outputs safely: writability probes before a run starts, and atomic writes of files and directories
(a kill or a full disk leaves the previous version, never half of a new one).

A directory is written under `.tmp-NAME.pidPID` beside it: Ctrl-C and SIGTERM remove it on the way out, and one
left by a process that is gone (SIGKILL, out of memory) is removed by the next directory written beside it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from minilm.errors import MiniLMError, require


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


def write_atomic(path: Path, text: str) -> None:
    """Write a text file under a temporary name, then rename it: a kill or a full disk leaves the old file."""
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def remove_abandoned(parent: Path) -> list[Path]:
    """Delete the temporary directories (`.tmp-NAME.pidPID`) in `parent` of processes that are gone; returns them."""
    removed = []
    for folder in Path(parent).glob(".tmp-*.pid*"):
        pid = folder.name.rsplit(".pid", 1)[1]
        try:
            if pid.isdigit():
                os.kill(int(pid), 0)  # raises when no such process exists
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        except PermissionError:
            pass  # a live process of another user
    return removed


def write_directory(directory: Path, write, what: str) -> None:
    """Fill `directory` through `write(tmp)` under a temporary name, then rename it into place: a full disk or a
    kill leaves the previous directory (or none), never half of one. `write` may read the previous one."""
    tmp = directory.with_name(f".tmp-{directory.name}.pid{os.getpid()}")
    old = directory.with_name(f".old-{directory.name}")
    try:
        if directory.parent.is_dir():
            remove_abandoned(directory.parent)
        shutil.rmtree(tmp, ignore_errors=True)
        write(tmp)
        if directory.exists():
            shutil.rmtree(old, ignore_errors=True)
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:  # nothing half-written stays behind, whatever stopped the write
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not directory.exists():
            old.rename(directory)
        if isinstance(exc, OSError):
            raise MiniLMError(f"cannot write {what} to {directory}: {exc.strerror or exc}") from None
        raise
