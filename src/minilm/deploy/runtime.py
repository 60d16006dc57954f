"""Loading a model for inference, whatever form it was saved in: a directory written by `minilm export` runs with
onnxruntime (`OnnxModel`, called like the PyTorch model), any other checkpoint with PyTorch."""

from __future__ import annotations

from minilm.errors import require
from minilm.models.loading import load_encoder


def load_inference_model(name: str, head: str | None, num_labels: int | None = None):
    """A checkpoint for inference: a directory written by `minilm export` runs with onnxruntime (`OnnxModel`,
    called like the PyTorch model), any other with PyTorch."""
    from minilm.deploy.onnx_model import OnnxModel, is_exported

    if is_exported(name):
        model = OnnxModel(name)
        require(model.export["head"] == head, f"the exported model '{name}' has a {model.export['head'] or 'bare'} "
                                              f"head, not the {head or 'bare'} head this task needs")
        return model
    return load_encoder(name, num_labels=num_labels, head=head)


def load_task_model(name: str, data):
    """A checkpoint with the head the task's kind needs (PyTorch, or an exported directory)."""
    kind = data.kind
    return load_inference_model(name, kind.head, kind.num_outputs(data) if kind.head == "classification" else None)
