"""The export directory: a copy of the model's directory with its graphs in `onnx/`, as sentence-transformers lays
out a model with ONNX files, and `export.json`, the record of what was written and checked.

    OUT/config.json, tokenizer files, model.safetensors, modules.json, 1_Pooling/, ...   (the model's own files)
    OUT/onnx/model.onnx                           float32, token-level (what SentenceTransformer(OUT,
                                                  backend="onnx") reads: output last_hidden_state)
    OUT/onnx/model_qint8_<target>.onnx            int8 for a target CPU (--quantize int8)
    OUT/onnx/model_pooled.onnx                    pooling and normalisation inside (--pooling): output
                                                  sentence_embedding; model_pooled_qint8_<target>.onnx its int8 form
    OUT/openvino/openvino_model*.xml              OpenVINO IR of the same graphs (--openvino: `deploy.openvino`)
    OUT/export.json                               {"format", "head", "quantize", "source", "graph", "int8",
                                                  "default", "default_pooled", "graphs": {file: {...}}, "size_bytes"}

`default` is the graph a directory runs as (the int8 token-level graph of an int8 export, else the float32
one); `default_pooled` the pooled graph of the same precision (or null). Anything that takes an exported model
(`OnnxModel`, `minilm evaluate`, `minilm bench --inference-models`) takes the directory or one `.onnx` file in it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from minilm.errors import MiniLMError, require

EXPORT_FORMAT = 2
EXPORT_FILE = "export.json"
GRAPH_DIR = "onnx"
# The PyTorch weights, copied with the rest so that the directory still loads with PyTorch (SentenceTransformer's
# default backend); and what an export never copies from its source (an earlier export's graphs and record).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
NOT_COPIED = (GRAPH_DIR, EXPORT_FILE, "openvino", ".lock")


def graph_file(pooled: bool = False, target: str | None = None) -> str:
    """A graph's path inside the directory: onnx/model.onnx, onnx/model_qint8_avx2.onnx, onnx/model_pooled.onnx,
    onnx/model_pooled_qint8_avx2.onnx (`target`: the int8 target CPU, None for float32)."""
    stem = "model_pooled" if pooled else "model"
    return f"{GRAPH_DIR}/{stem}{f'_qint8_{target}' if target else ''}.onnx"


def export_directory(name: str | Path) -> Path | None:
    """The export directory `name` names (the directory itself, or the directory one of its graphs lies in), or
    None when it names no export."""
    path = Path(name)
    if path.is_dir():
        return path if (path / EXPORT_FILE).is_file() else None
    if path.suffix in (".onnx", ".xml") and path.is_file():  # an ONNX graph, or an OpenVINO IR
        for directory in (path.parent.parent, path.parent):
            if (directory / EXPORT_FILE).is_file():
                return directory
    return None


def is_exported(name: str | Path) -> bool:
    """Whether `name` is a directory written by `minilm export`, or a graph file in one."""
    return export_directory(name) is not None


def read_export(directory: str | Path) -> dict:
    path = Path(directory) / EXPORT_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        raise MiniLMError(f"{path} is damaged; export the model again") from None
    found = record.get("format") if isinstance(record, dict) else None
    require(found == EXPORT_FORMAT, f"{path} was written by another minilm version (export format {found}, this one "
                                    f"reads {EXPORT_FORMAT}); export the model again")
    return record


def graph_path(name: str | Path, pooled: bool = False) -> Path | None:
    """The graph `name` runs as: the `.onnx` file it names, else the directory's default graph (its default pooled
    graph with `pooled`, None when it has none)."""
    directory = export_directory(name)
    require(directory is not None, f"{name} is not a directory written by minilm export, nor a graph in one")
    if Path(name).suffix in (".onnx", ".xml"):
        return Path(name)
    record = read_export(directory)
    chosen = record.get("default_pooled") if pooled else record["default"]
    return None if chosen is None else directory / chosen


def copy_model_files(source: Path, target: Path) -> None:
    """The model's directory copied into `target`: its files (config, tokenizer, weights, sentence-transformers
    settings) and the module folders its `modules.json` names (1_Pooling, ...); not other folders, not an
    earlier export's graphs."""
    modules = set()
    if (source / "modules.json").is_file():
        try:
            modules = {m.get("path") for m in json.loads((source / "modules.json").read_text()) if isinstance(m, dict)}
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError):
            modules = set()
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.name in NOT_COPIED or path.name.startswith((".tmp-", ".old-")):
            continue
        if path.is_file():
            shutil.copyfile(path, target / path.name)  # contents only: a read-only source stays ours to replace
        elif path.is_dir() and path.name in modules:
            shutil.copytree(path, target / path.name, copy_function=shutil.copyfile)
