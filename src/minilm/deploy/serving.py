"""Serving a sentence encoder as light as its graph: the model's own tokenizer (the Rust `tokenizers` library,
`tokenizer.json`) and one onnxruntime session of the export's pooled graph, nothing else.

    from minilm.deploy.serving import Embedder

    embedder = Embedder("runs/student_int8")          # a `minilm export --pooling` directory (its default pooled graph)
    vectors = embedder.encode(["A man plays a guitar.", "Kids play soccer."])   # (2, width) float32, normalised
    Embedder("runs/student_int8/openvino/openvino_model_pooled_qint8_quantized.xml")  # its OpenVINO IR (--openvino)

sentence-transformers' wrapper around the same graph costs about a fifth of the time at batch 1 (docs/deploy.md);
this is what a server would run. An export with several int8 pooled graphs (`--openvino`) records which serves
fastest here at batch 1 and at batch 32 (`serving_choice`), and a directory given whole runs each call on the
faster one. Texts are cut at the model's `max_seq_length` (its sentence-transformers
configuration, else the tokenizer's own limit), padded to the longest text of each batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minilm.deploy.layout import export_directory, graph_path, read_export
from minilm.deploy.serving_choice import graph_runner
from minilm.errors import require
from minilm.models.sentence import pipeline_of
from minilm.models.static import MODEL_TYPE as _STATIC  # noqa: F401 - a static student's config reads as its own

MAX_LENGTH = 512  # where neither the model nor its tokenizer says how long a text may be


class Embedder:
    """Sentence embeddings from an export directory's pooled graph (or the pooled `.onnx` or OpenVINO `.xml` file
    named). A directory whose export measured which int8 graph serves fastest on this CPU (`serving_choice`: the
    export's `serving` record) runs each call on the graph chosen for its size: fewer texts than `small_batch` on
    the batch-1 choice, more on the batch-32 one."""

    def __init__(self, name: str | Path, threads: int | None = None, max_length: int | None = None):
        import copy

        from transformers import AutoTokenizer

        directory = export_directory(name)
        require(directory is not None, f"{name} is not a directory written by minilm export, nor a graph in one")
        record = read_export(directory)
        graph = graph_path(name, pooled=True) if Path(name).is_dir() else Path(name)
        require(graph is not None and graph.is_file(),
                f"{name} has no pooled graph: export it with --pooling (its sentence embedding inside the graph)")
        graphed = record["graphs"].get(graph.resolve().relative_to(directory.resolve()).as_posix(), {})
        require(graphed.get("level", "sentence") == "sentence", f"{graph} is a token-level graph; name a pooled one")
        serving = record.get("serving") if Path(name).is_dir() else None
        self.graphs = {size: directory / serving[size] for size in ("1", "32")} if serving else \
            {"1": graph, "32": graph}
        self.small_batch = serving["small_batch"] if serving else 0
        runners = {path: graph_runner(path, threads) for path in set(self.graphs.values())}
        self.sessions = {size: runners[path] for size, path in self.graphs.items()}
        self.graph = self.graphs["32"]
        wrapper = AutoTokenizer.from_pretrained(str(directory))  # read once for its settings; its Rust core encodes
        self.tokenizer = copy.deepcopy(wrapper.backend_tokenizer)
        limit = max_length or pipeline_of(str(directory)).max_seq_length or min(wrapper.model_max_length, MAX_LENGTH)
        self.tokenizer.enable_truncation(int(limit))
        self.tokenizer.enable_padding(pad_id=wrapper.pad_token_id or 0, pad_token=wrapper.pad_token or "[PAD]")
        self.max_length = int(limit)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), width) float32: each text's sentence embedding, in the order given. Batches of `batch_size`
        are formed longest first, as sentence-transformers forms them, so that a batch pads little: on SST-2's
        sentences in batches of 32, batching them in their own order ran the same IR at three quarters of the
        speed (docs/deploy.md)."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = []
        for start in range(0, len(texts), batch_size):
            chunk = [texts[i] for i in order[start:start + batch_size]]
            runner = self.sessions["1" if len(chunk) < self.small_batch else "32"]
            encoded = self.tokenizer.encode_batch(chunk)
            feed = {"input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64)}
            wanted = {i.name for i in runner.get_inputs()}
            out.append(runner.run(None, {k: v for k, v in feed.items() if k in wanted})[0])
        if not out:
            return np.zeros((0, 0), dtype=np.float32)
        by_length = np.concatenate(out)
        vectors = np.empty_like(by_length)
        vectors[order] = by_length
        return vectors
