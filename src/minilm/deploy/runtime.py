"""Loading a model for inference, whatever form it was saved in: a directory written by `minilm export` (or one
graph in it) runs with onnxruntime (`OnnxModel`, called like the PyTorch model), any other checkpoint with
PyTorch."""

from __future__ import annotations

from minilm.deploy.layout import graph_path, is_exported
from minilm.errors import require
from minilm.models.source import ModelSource, resolve_model


def load_inference_model(name: str, head: str | None, num_labels: int | None = None, threads: int | None = None,
                         source: ModelSource | None = None):
    """A checkpoint for inference: an export directory or graph runs with onnxruntime (`OnnxModel`, called like
    the PyTorch model, on `threads` threads), any other with PyTorch, loaded through its `ModelSource` (`source`,
    when the caller resolved `name` already)."""
    from minilm.deploy.onnx_model import OnnxModel

    if is_exported(name):
        model = OnnxModel(name, threads)
        require(model.export["head"] == head, f"the exported model '{name}' has a {model.export['head'] or 'bare'} "
                                              f"head, not the {head or 'bare'} head this task needs")
        require(not model.pooled, f"{name} is a pooled graph (sentence embeddings); name its directory or a "
                                  "token-level graph (onnx/model.onnx) for this task")
        return model
    return (source or resolve_model(name)).load(head=head, num_labels=num_labels)


def load_task_model(name: str, data, source: ModelSource | None = None):
    """A checkpoint with the head the task's kind needs (PyTorch, or an exported directory)."""
    kind = data.kind
    return load_inference_model(name, kind.head, kind.num_outputs(data) if kind.head == "classification" else None,
                                source=source)


def load_sentence_graph(name: str, threads: int | None = None):
    """The graph that gives an exported encoder's sentence embeddings: the `.onnx` file `name` names, else the
    directory's pooled graph where it has one (its pooling inside), else its token-level default graph (pooled
    by the caller with the directory's pipeline)."""
    from minilm.deploy.onnx_model import OnnxModel

    model = OnnxModel(graph_path(name, pooled=True) or name, threads)
    require(model.export["head"] is None, f"the exported model '{name}' has a {model.export['head']} head; sentence "
                                          "embeddings come from an exported encoder")
    return model
