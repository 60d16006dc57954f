"""Queries, keys and values of one self-attention layer, of any supported family, without `output_attentions=True`.

MiniLM needs the Q, K, V of one layer (the teacher's last, or an upper-middle one for MiniLMv2; the student's
last) and how that layer forms its attention logits (`architectures`: scale and additive bias). Asking the model
for `output_attentions=True` forces eager attention in every layer and keeps every layer's maps, so instead a
forward pre-hook records what the chosen block is called with (its input hidden states, and the per-layer extras
the encoder passes it), and the family's adapter computes that layer's Q, K, V, scale and bias from it:

* truncated (`layer_qkv(..., full=False)`): the hook stops the forward there, so the embeddings and the blocks
  below run (with the fast attention the model was loaded with) and nothing above: the chosen layer's attention
  output and feed-forward contribute nothing to L_AT + L_VR;
* full (`full=True`): the whole model runs and its task logits come back too (task-specific distillation).

All tensors are `(batch, seq, hidden)` with heads still concatenated, as `losses.chunked_kl` takes them.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from minilm.errors import MiniLMError
from minilm.models.architectures import QKV, LayerCall, family_of, inputs_for
from minilm.models.heads import task_logits

__all__ = ["QKV", "layer_index", "record_layer_calls", "truncated_forward", "layer_qkv", "unused_by_relations",
           "RelationModel"]


class _StopForward(Exception):
    """Raised by the pre-hook of a truncated forward once the chosen block's inputs are recorded."""


def layer_index(model: nn.Module, layer: int) -> int:
    """0-based index from a 1-based layer number, -1 meaning the last layer."""
    n = len(family_of(model).layers(model))
    if layer == -1:
        return n - 1
    if not 1 <= layer <= n:
        raise MiniLMError(f"layer {layer} does not exist: the model has {n} layers (use 1..{n} or -1 for the last)")
    return layer - 1


@contextlib.contextmanager
def record_layer_calls(model: nn.Module, layers: list[int], stop: bool = False) -> Iterator[dict[int, LayerCall]]:
    """Record the first call of each block in `layers` (1-based, -1 the last) during the forwards in this block;
    with `stop`, end the forward once every one of them is recorded (at the highest) by raising `_StopForward`
    (`truncated_forward` catches it)."""
    blocks = family_of(model).layers(model)
    record: dict[int, LayerCall] = {}
    handles = []
    for layer in layers:
        def hook(module, args, kwargs, layer=layer):
            if layer not in record:
                record[layer] = LayerCall(module, args, dict(kwargs))
                if stop and len(record) == len(set(layers)):
                    raise _StopForward
        handles.append(blocks[layer_index(model, layer)].register_forward_pre_hook(hook, with_kwargs=True))
    try:
        yield record
    finally:
        for handle in handles:
            handle.remove()


def layers_qkv(model: nn.Module, record: dict[int, LayerCall]) -> dict[int, QKV]:
    """The `QKV` of each recorded layer."""
    family = family_of(model)
    return {layer: family.layer_qkv(model, layer_index(model, layer), call) for layer, call in record.items()}


def layer_qkv(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, layer: int = -1,
              token_type_ids: torch.Tensor | None = None, full: bool = False) -> tuple[QKV, object]:
    """The `QKV` of `layer` (1-based, -1 = last), and the model's outputs when `full` (else None).

    input_ids, attention_mask: (batch, seq); attention_mask is 1 for real tokens, 0 for padding. Token types
    reach only models that take them (`architectures.inputs_for`).
    """
    inputs = inputs_for(model, dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids))
    record, outputs = truncated_forward(model, inputs, [layer], full)
    return layers_qkv(model, record)[layer], outputs


def truncated_forward(model: nn.Module, inputs: dict, layers: list[int], full: bool = False, **kwargs
                      ) -> tuple[dict[int, LayerCall], object]:
    """What the blocks in `layers` (1-based, -1 the last) were called with, and the model's outputs: with `full`
    the whole model (head included) runs, else the base encoder up to the highest of them, and no outputs (None).
    `kwargs` go to the forward (output_hidden_states)."""
    outputs = None
    with record_layer_calls(model, layers, stop=not full) as record:
        try:
            outputs = model(**inputs, **kwargs) if full else model.base_model(**inputs, **kwargs)
        except _StopForward:
            pass
    missing = [layer for layer in layers if layer not in record]
    if missing:
        raise RuntimeError(f"layer {missing[0]} of {type(model).__name__} never ran")
    return record, outputs


def unused_by_relations(model: nn.Module, layer: int = -1, reads: tuple[str, ...] = ("query", "key", "value")
                        ) -> list[nn.Parameter]:
    """The parameters a truncated forward to `layer` never touches on the way to the parts of its `QKV` a loss
    `reads` (and the attention bias with the query and key): the chosen layer's attention output and feed-forward,
    the layers above, the pooler, a task head; the value projection when only the attention relation is read.

    They get no gradient from the relation losses; freezing them keeps DDP from waiting for their gradients and
    weight decay from shrinking them for nothing. Found by one backward pass of a two-example batch in eval mode
    (no dropout drawn, no random state used), so every family's layout answers for itself.
    """
    config = model.config
    pad = getattr(config, "pad_token_id", None) or 0
    ids = torch.full((2, 6), 5 if pad != 5 else 6, dtype=torch.long, device=next(model.parameters()).device)
    mask = torch.ones_like(ids)
    ids[1, 4:], mask[1, 4:] = pad, 0
    was_training = model.training
    saved = {p: p.grad for p in model.parameters()}  # a query: the model's own gradients are put back after
    model.eval()
    try:
        for p in saved:
            p.grad = None
        with torch.enable_grad():
            qkv, _ = layer_qkv(model, ids, mask, layer)
            used = [getattr(qkv, name) for name in reads]
            if qkv.bias is not None and qkv.bias.requires_grad and "query" in reads:
                used.append(qkv.bias)
            sum(t.float().sum() for t in used).backward()
        unused = [p for p in model.parameters() if p.requires_grad and p.grad is None]
    finally:
        for p, grad in saved.items():
            p.grad = grad
        model.train(was_training)
    return unused


class RelationModel(nn.Module):
    """A model whose forward returns the `QKV` of one layer (and the task logits when it runs whole).

    Wrapping the computation in `forward` lets DDP (through accelerate) see it as one model call. With
    `full=False` only the blocks below the chosen layer run (task-agnostic distillation); with `full=True` the whole
    model runs and its logits come back too (task-specific).
    """

    def __init__(self, model: nn.Module, layer: int = -1, full: bool = False):
        super().__init__()
        layer_index(model, layer)  # fail now, not at the first step, on a layer the model lacks
        self.model, self.layer, self.full = model, layer, full

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        qkv, outputs = layer_qkv(self.model, input_ids, attention_mask, self.layer, token_type_ids, self.full)
        return qkv, (task_logits(outputs) if self.full else None)
