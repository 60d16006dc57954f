"""Exported models at run time: an ONNX directory run with onnxruntime (`pip install "minilm[deploy]"`).

An exported directory is self-contained: `model.onnx` (float32, or int8 weights), `config.json` (with the
class names), the tokenizer files, and `export.json`: {"format", "head", "quantize", "inputs", "outputs",
"source", "checks"}. `OnnxModel` runs a directory and is called like the PyTorch model
(`model(input_ids=..., attention_mask=...)` -> an output with `.logits`, `.start_logits` and `.end_logits`, or
`.last_hidden_state`, as torch tensors), so that the evaluation code scores either. How a directory is written
is `onnx_export.py`'s.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from minilm.errors import MiniLMError, require

EXPORT_FORMAT = 1
EXPORT_FILE = "export.json"
GRAPH_FILE = "model.onnx"
OUTPUTS = {None: ("last_hidden_state",), "classification": ("logits",),
           "question-answering": ("start_logits", "end_logits")}
# Dynamic int8 quantization as chosen by measured accuracy (docs/deploy.md compares the variants): weights per
# output channel, onnxruntime's default operators (the matrix products and the embedding lookups).
INT8_SETTINGS = dict(per_channel=True)


def require_deploy_packages() -> None:
    missing = [name for name in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(name) is None]
    require(not missing, f"exporting and running ONNX models needs {', '.join(missing)}: pip install 'minilm[deploy]'")


def is_exported(name: str) -> bool:
    """Whether `name` is a directory written by `minilm export`."""
    return (Path(name) / EXPORT_FILE).is_file() and (Path(name) / GRAPH_FILE).is_file()


def read_export(directory: str | Path) -> dict:
    path = Path(directory) / EXPORT_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        raise MiniLMError(f"{path} is damaged; export the model again") from None
    require(isinstance(record, dict) and record.get("format") == EXPORT_FORMAT,
            f"{path} was written by another minilm version (export format {record.get('format')}); export again")
    return record


def session(path: Path, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxModel:
    """An exported directory, called like the Hugging Face model it came from (inference only, CPU)."""

    training = False

    def __init__(self, directory: str | Path, threads: int | None = None):
        from transformers import AutoConfig

        require_deploy_packages()
        self.directory = Path(directory)
        self.export = read_export(self.directory)
        self.config = AutoConfig.from_pretrained(self.directory)
        self.session = session(self.directory / GRAPH_FILE, threads)
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, **batch) -> SimpleNamespace:
        feed = {name: np.ascontiguousarray(batch[name].cpu().numpy().astype(np.int64)) for name in self.inputs}
        values = self.session.run(list(self.export["outputs"]), feed)
        return SimpleNamespace(**{name: torch.from_numpy(v) for name, v in zip(self.export["outputs"], values)})

    def eval(self) -> "OnnxModel":
        return self

    def train(self, mode: bool = True) -> "OnnxModel":
        require(not mode, f"{self.directory} is an exported (ONNX) model: it runs inference only")
        return self

    def to(self, device) -> "OnnxModel":
        require(torch.device(device).type == "cpu", "exported models run on the CPU (onnxruntime's CPU provider)")
        return self

    def size_on_disk(self) -> int:
        return (self.directory / GRAPH_FILE).stat().st_size


def files_size(directory: str | Path) -> int:
    """Bytes of a model directory's weights (safetensors or ONNX graph) on disk."""
    directory = Path(directory)
    return sum(f.stat().st_size for f in directory.iterdir() if f.suffix in (".onnx", ".safetensors", ".bin"))


os.environ.setdefault("ORT_LOGGING_LEVEL", "3")
