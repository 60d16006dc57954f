"""Exported models at run time: a graph of an export directory run with onnxruntime (`pip install "minilm[deploy]"`).

`OnnxModel(name)` takes an export directory (its default graph, `layout.graph_path`) or one `.onnx` file in it,
and is called like the PyTorch model (`model(input_ids=..., attention_mask=...)` -> an output with `.logits`,
`.start_logits` and `.end_logits`, `.last_hidden_state`, or a pooled graph's `.sentence_embedding`, as torch
tensors), so that the evaluation and timing code runs either. The directory's layout is `layout.py`'s; how it is
written, `writer.py`'s.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from minilm.deploy.cpu_target import run_here_note
from minilm.deploy.layout import export_directory, graph_path, read_export
from minilm.errors import require


def require_deploy_packages() -> None:
    missing = [name for name in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(name) is None]
    require(not missing, f"exporting and running ONNX models needs {', '.join(missing)}: pip install 'minilm[deploy]'")


def session(path: Path, threads: int | None = None):
    """An onnxruntime CPU session of a graph file, on `threads` threads (torch's count when None)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxModel:
    """A graph of an export directory, called like the Hugging Face model it came from (inference only, CPU)."""

    training = False

    def __init__(self, name: str | Path, threads: int | None = None, say=print):
        from transformers import AutoConfig

        require_deploy_packages()
        self.directory = export_directory(name)
        require(self.directory is not None, f"{name} is not a directory written by minilm export, nor a graph in one")
        self.export = read_export(self.directory)
        self.graph = graph_path(name)
        require(self.graph is not None and self.graph.is_file(), f"{self.graph} is missing; export the model again")
        self.graph_name = self.graph.resolve().relative_to(self.directory.resolve()).as_posix()  # onnx/model.onnx
        self.record = self.export["graphs"].get(self.graph_name, {})  # what export.json says of it
        self.config = AutoConfig.from_pretrained(self.directory)
        self.session = session(self.graph, threads)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.pooled = self.outputs == ["sentence_embedding"]
        note = run_here_note(self.graph_name, self.record.get("int8") or {})
        if note:  # an int8 graph of another CPU runs here without complaint, and scores otherwise
            say(note)

    def __call__(self, **batch) -> SimpleNamespace:
        feed = {name: np.ascontiguousarray(batch[name].cpu().numpy().astype(np.int64)) for name in self.inputs}
        values = self.session.run(self.outputs, feed)
        return SimpleNamespace(**{name: torch.from_numpy(v) for name, v in zip(self.outputs, values)})

    def describe(self) -> str:
        """The graph in words: "onnx int8 fused (avx2)", "onnx float32 pooled", ..."""
        record = self.record
        words = ["onnx", record.get("precision", "float32")]
        words += ["fused"] if record.get("fusion") else []
        words += ["pooled"] if self.pooled else []
        target = (record.get("int8") or {}).get("target")
        return " ".join(words) + (f" ({target})" if target else "")

    def eval(self) -> "OnnxModel":
        return self

    def train(self, mode: bool = True) -> "OnnxModel":
        require(not mode, f"{self.graph} is an exported (ONNX) model: it runs inference only")
        return self

    def to(self, device) -> "OnnxModel":
        require(torch.device(device).type == "cpu", "exported models run on the CPU (onnxruntime's CPU provider)")
        return self

    def size_on_disk(self) -> int:
        return self.graph.stat().st_size


def files_size(directory: str | Path) -> int:
    """Bytes of a model directory's weights (safetensors or ONNX graphs) on disk."""
    directory = Path(directory)
    return sum(f.stat().st_size for f in directory.iterdir() if f.suffix in (".onnx", ".safetensors", ".bin"))


os.environ.setdefault("ORT_LOGGING_LEVEL", "3")
