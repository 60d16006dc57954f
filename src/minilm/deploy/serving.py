"""Serving a sentence encoder as light as its graph: the model's own tokenizer (the Rust `tokenizers` library,
`tokenizer.json`) and one onnxruntime session of the export's pooled graph, nothing else.

    from minilm.deploy.serving import Embedder

    embedder = Embedder("runs/student_int8")          # a `minilm export --pooling` directory (its default pooled graph)
    vectors = embedder.encode(["A man plays a guitar.", "Kids play soccer."])   # (2, width) float32, normalised
    Embedder("runs/student_int8/openvino/openvino_model_pooled_qint8_quantized.xml")  # its OpenVINO IR (--openvino)

sentence-transformers' wrapper around the same graph costs about a fifth of the time at batch 1 (docs/deploy.md);
this is what a server would run. Texts are cut at the model's `max_seq_length` (its sentence-transformers
configuration, else the tokenizer's own limit), padded to the longest text of each batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minilm.deploy.layout import export_directory, graph_path, read_export
from minilm.deploy.onnx_model import session
from minilm.errors import require
from minilm.models.sentence import pipeline_of
from minilm.models.static import MODEL_TYPE as _STATIC  # noqa: F401 - a static student's config reads as its own

MAX_LENGTH = 512  # where neither the model nor its tokenizer says how long a text may be


class Embedder:
    """Sentence embeddings from an export directory's pooled graph (or the pooled `.onnx` file named)."""

    def __init__(self, name: str | Path, threads: int | None = None, max_length: int | None = None):
        import copy

        from transformers import AutoTokenizer

        directory = export_directory(name)
        require(directory is not None, f"{name} is not a directory written by minilm export, nor a graph in one")
        graph = graph_path(name, pooled=True) if Path(name).is_dir() else Path(name)
        require(graph is not None and graph.is_file(),
                f"{name} has no pooled graph: export it with --pooling (its sentence embedding inside the graph)")
        record = read_export(directory)["graphs"].get(graph.resolve().relative_to(directory.resolve()).as_posix(), {})
        require(record.get("level", "sentence") == "sentence", f"{graph} is a token-level graph; name a pooled one")
        if graph.suffix == ".xml":
            from minilm.deploy.openvino import OpenVinoGraph

            self.session = OpenVinoGraph(graph, threads, exact=False)  # as OpenVINO serves: bf16 where the CPU has it
        else:
            self.session = session(graph, threads)
        self.inputs = [i.name for i in self.session.get_inputs()]
        wrapper = AutoTokenizer.from_pretrained(str(directory))  # read once for its settings; its Rust core encodes
        self.tokenizer = copy.deepcopy(wrapper.backend_tokenizer)
        limit = max_length or pipeline_of(str(directory)).max_seq_length or min(wrapper.model_max_length, MAX_LENGTH)
        self.tokenizer.enable_truncation(int(limit))
        self.tokenizer.enable_padding(pad_id=wrapper.pad_token_id or 0, pad_token=wrapper.pad_token or "[PAD]")
        self.graph, self.max_length = graph, int(limit)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), width) float32: each text's sentence embedding, batches of `batch_size`."""
        out = []
        for start in range(0, len(texts), batch_size):
            encoded = self.tokenizer.encode_batch(texts[start:start + batch_size])
            feed = {"input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64)}
            out.append(self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0])
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
