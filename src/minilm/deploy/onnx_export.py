"""Writing ONNX graphs: a Hugging Face model (encoder, classifier, question answering) traced by `torch.onnx` with
dynamic batch and sequence axes, token-level (the model's own outputs) or pooled (its sentence-transformers pooling
and normalisation inside: one `sentence_embedding` per sentence).

Two exporters: "torchscript" (`torch.onnx.export(dynamo=False)`, opset 17) traces the eager attention code into
the graph onnxruntime's transformer optimizer recognises and fuses (`fusion.py`); "dynamo" (`torch.export`)
traces every family, and is what families the optimizer does not know, and any graph whose fused form fails its
check, are written with. torch 2.13 deprecates the TorchScript exporter with a warning, which is silenced here.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from minilm.models.architectures import family_of
from minilm.models.sentence import Pipeline, embed

OUTPUTS = {None: ("last_hidden_state",), "classification": ("logits",),
           "question-answering": ("start_logits", "end_logits")}
PER_TOKEN = ("last_hidden_state", "start_logits", "end_logits")  # outputs with a sequence axis
POOLED_OUTPUTS = ("sentence_embedding",)
POOLED_INPUTS = ("input_ids", "attention_mask")
EXPORTERS = ("torchscript", "dynamo")
TORCHSCRIPT_OPSET = 17


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


class _Pooled(nn.Module):
    """input_ids, attention_mask -> the sentence embedding of `pipeline` (`models.sentence.embed`: pooling over the
    real tokens, then L2 normalisation where the pipeline normalises). Single sentences have token type 0
    throughout, so models that take token types get zeros and the graph has no such input."""

    def __init__(self, model: nn.Module, pipeline: Pipeline):
        super().__init__()
        self.model, self.pipeline = model, pipeline
        self.token_types = family_of(model).takes_token_types(model.config)

    def forward(self, input_ids, attention_mask):
        inputs = dict(input_ids=input_ids, attention_mask=attention_mask)
        if self.token_types:
            inputs["token_type_ids"] = torch.zeros_like(input_ids)
        hidden = self.model(**inputs).last_hidden_state
        mask = family_of(self.model).pooling_mask(self.model.config, input_ids, attention_mask)
        return embed(hidden, mask, self.pipeline)


def export_graph(model: nn.Module, head: str | None, sample: dict[str, torch.Tensor], path: Path,
                 exporter: str = "dynamo") -> None:
    """Write `model` (float32) as a single-file token-level ONNX graph with dynamic batch and sequence axes.

    sample: input_ids, attention_mask (and token_type_ids, for models that take them) of a batch of at least two
    examples and two tokens, one of them padded (the exporters need them to keep the axes dynamic).
    """
    inputs = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in sample]  # forward's order
    outputs = OUTPUTS[head]
    per_token = {name: name in PER_TOKEN for name in outputs}
    _export(_Graph(model.float(), outputs), [sample[k] for k in inputs], path, inputs, list(outputs), per_token,
            exporter)


def export_pooled(model: nn.Module, pipeline: Pipeline, sample: dict[str, torch.Tensor], path: Path,
                  exporter: str = "dynamo") -> None:
    """Write the encoder `model` with `pipeline`'s pooling and normalisation as an ONNX graph: inputs input_ids,
    attention_mask; output sentence_embedding (batch, width)."""
    _export(_Pooled(model.float(), pipeline), [sample[k] for k in POOLED_INPUTS], path, list(POOLED_INPUTS),
            list(POOLED_OUTPUTS), {POOLED_OUTPUTS[0]: False}, exporter)


def _export(module: nn.Module, args: list, path: Path, inputs: list[str], outputs: list[str],
            per_token: dict[str, bool], exporter: str) -> None:
    """`torch.onnx.export` of `module` in eval mode (the exporter puts a module back in the mode it found it in,
    so the wrapper is put in eval mode too: else the model's dropout would come back on)."""
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the exporter's notes (skipped torchvision operators, ...) are not the user's
    module.eval()
    if exporter == "torchscript":
        axes = {name: {0: "batch", 1: "sequence"} for name in inputs}
        axes.update({name: {0: "batch", 1: "sequence"} if per_token[name] else {0: "batch"} for name in outputs})
        options = dict(dynamo=False, opset_version=TORCHSCRIPT_OPSET, dynamic_axes=axes, do_constant_folding=True)
    else:
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
        options = dict(dynamo=True, external_data=False, dynamic_shapes={name: {0: batch, 1: seq} for name in inputs})
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TorchScript's deprecation and tracer warnings, dynamo's notes
            torch.onnx.export(module, tuple(args), str(path), verbose=False, input_names=inputs, output_names=outputs,
                              **options)
    finally:
        quiet.setLevel(level)
