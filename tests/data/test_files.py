"""Atomic directory writes: a write that fails leaves the previous directory and no temporary one, and the temporary
directory of a process that is gone (SIGKILL) is removed by the next write beside it, whatever its name."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from minilm.data.files import write_directory
from minilm.errors import MiniLMError


def test_a_killed_writers_temporary_directory_is_removed_by_the_next_write(tmp_path):
    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    abandoned = tmp_path / f".tmp-other.pid{gone}"  # an export of another name, killed half-way
    running = tmp_path / f".tmp-busy.pid{os.getpid()}"  # a live process's write under way
    for folder in (abandoned, running):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"half")
    write_directory(tmp_path / "model", lambda tmp: (tmp.mkdir(), (tmp / "a.txt").write_text("new")), "the model")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model", running.name])
    assert (tmp_path / "model" / "a.txt").read_text() == "new"


def test_a_failed_write_keeps_the_previous_directory_and_leaves_no_temporary_one(tmp_path):
    write_directory(tmp_path / "model", lambda tmp: (tmp.mkdir(), (tmp / "a.txt").write_text("old")), "the model")

    def full(tmp):
        tmp.mkdir()
        raise OSError(28, "No space left on device")
    with pytest.raises(MiniLMError, match="cannot write the model to .*No space left on device"):
        write_directory(tmp_path / "model", full, "the model")
    assert [p.name for p in tmp_path.iterdir()] == ["model"] and (tmp_path / "model" / "a.txt").read_text() == "old"
