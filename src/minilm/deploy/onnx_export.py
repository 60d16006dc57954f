"""Writing ONNX graphs: a Hugging Face model (encoder, classifier, question answering) traced by `torch.onnx` with
dynamic batch and sequence axes, and onnxruntime's dynamic int8 quantization of a graph."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from minilm.deploy.onnx_model import INT8_SETTINGS, OUTPUTS


class _Graph(nn.Module):
    """The model as a function of its input tensors returning a tuple: what the ONNX exporter traces."""

    def __init__(self, model: nn.Module, outputs: tuple[str, ...]):
        super().__init__()
        self.model, self.outputs = model, outputs

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        inputs = dict(input_ids=input_ids, attention_mask=attention_mask)
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        result = self.model(**inputs)
        return tuple(getattr(result, name) for name in self.outputs)


def export_graph(model: nn.Module, head: str | None, sample: dict[str, torch.Tensor], path: Path) -> None:
    """Write `model` (eval mode, float32) as a single-file ONNX graph with dynamic batch and sequence axes.

    sample: input_ids, attention_mask (and token_type_ids, for models that take them) of a batch of at least two
    examples and two tokens (the exporter needs them to keep the axes dynamic).
    """
    import logging
    import warnings

    inputs = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in sample]  # forward's order
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the exporter's notes (skipped torchvision operators, ...) are not the user's
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Graph(model.eval().float(), OUTPUTS[head]), tuple(sample[k] for k in inputs),
                              str(path), dynamo=True, external_data=False, verbose=False, input_names=inputs,
                              output_names=list(OUTPUTS[head]),
                              dynamic_shapes={name: {0: batch, 1: seq} for name in inputs})
    finally:
        quiet.setLevel(level)


def quantize_int8(source: Path, target: Path) -> None:
    """onnxruntime's dynamic quantization: int8 weights, activations quantized on the fly (`INT8_SETTINGS`)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process is for static quantization
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, **INT8_SETTINGS)
