"""Queries, keys and values of one self-attention layer, without `output_attentions=True`.

MiniLM only needs the Q, K, V projections of one layer (the teacher's last, or an upper-middle one
for MiniLMv2; the student's last). Asking HF for `output_attentions=True` forces eager attention in
every layer and keeps every layer's maps, so instead:

* `truncated_qkv` runs the embeddings and the blocks below the chosen layer (with whatever fast
  attention kernel the model was loaded with, SDPA by default) and applies the chosen layer's
  query/key/value projections to that layer's input. Nothing above runs: the chosen layer's
  attention output and feed-forward contribute nothing to L_AT + L_VR.
* `capture_qkv` hooks the projections during a full forward, for task-specific distillation
  where the classifier logits are needed as well.

All tensors are `(batch, seq, hidden)` with heads still concatenated, which is what
`minilm.losses.relation_kl` takes.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, NamedTuple

import torch
from torch import nn

from minilm.models.heads import task_logits
from minilm.models.loading import encoder_layers


class QKV(NamedTuple):
    query: torch.Tensor  # (batch, seq, hidden)
    key: torch.Tensor
    value: torch.Tensor


def layer_index(model: nn.Module, layer: int) -> int:
    """0-based index from a 1-based layer number, -1 meaning the last layer."""
    n = len(encoder_layers(model))
    if layer == -1:
        return n - 1
    if not 1 <= layer <= n:
        from minilm.errors import MiniLMError

        raise MiniLMError(f"layer {layer} does not exist: the model has {n} layers (use 1..{n} or -1 for the last)")
    return layer - 1


def truncated_qkv(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, layer: int = -1,
                  token_type_ids: torch.Tensor | None = None) -> QKV:
    """Q, K, V of `layer` (1-based, -1 = last), running only the blocks below it.

    input_ids, attention_mask: (batch, seq); attention_mask is 1 for real tokens, 0 for padding.
    """
    from transformers.masking_utils import create_bidirectional_mask

    base = model.base_model
    index = layer_index(model, layer)
    layers = encoder_layers(model)
    hidden = base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
    mask = create_bidirectional_mask(config=base.config, inputs_embeds=hidden, attention_mask=attention_mask)
    for block in layers[:index]:
        hidden = block(hidden, mask)
        if isinstance(hidden, tuple):  # older transformers return (hidden_states, ...)
            hidden = hidden[0]
    attention = layers[index].attention.self
    return QKV(attention.query(hidden), attention.key(hidden), attention.value(hidden))


def unused_by_relations(model: nn.Module, layer: int = -1) -> list[nn.Parameter]:
    """Parameters that `truncated_qkv` never touches: above the chosen projections, and the pooler.

    They get no gradient from L_AT + L_VR; freezing them keeps DDP from waiting for their gradients
    and keeps weight decay from shrinking them for nothing.
    """
    index = layer_index(model, layer)
    layers = encoder_layers(model)
    chosen = layers[index]
    modules = [m for name, m in chosen.named_children() if name != "attention"]
    modules += [m for name, m in chosen.attention.named_children() if name != "self"]
    modules += list(layers[index + 1:])
    pooler = getattr(model.base_model, "pooler", None)
    if pooler is not None:
        modules.append(pooler)
    if model is not model.base_model:  # a task head on top
        modules += [m for name, m in model.named_children() if m is not model.base_model]
    return [p for m in modules for p in m.parameters()]


@contextlib.contextmanager
def capture_qkv(model: nn.Module, layer: int = -1) -> Iterator[dict[str, torch.Tensor]]:
    """Record the query/key/value projection outputs of `layer` during the forwards in this block.

    Yields a dict that holds `query`, `key`, `value` (each `(batch, seq, hidden)`) after a forward.
    """
    attention = encoder_layers(model)[layer_index(model, layer)].attention.self
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name in ("query", "key", "value"):
        def hook(_module, _inputs, output, name=name):
            captured[name] = output

        handles.append(getattr(attention, name).register_forward_hook(hook))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def capture_layers_qkv(model: nn.Module, layers: list[int]) -> Iterator[dict[int, dict[str, torch.Tensor]]]:
    """`capture_qkv` for several 1-based layers at once: yields {layer: {query, key, value}}."""
    with contextlib.ExitStack() as stack:
        yield {layer: stack.enter_context(capture_qkv(model, layer)) for layer in layers}


class RelationModel(nn.Module):
    """A model whose forward returns the Q, K, V of one layer (and the logits when it has a head).

    Wrapping the computation in `forward` lets DDP (through accelerate) see it as one model call.
    With `full=False` only the blocks up to the chosen layer run (task-agnostic distillation);
    with `full=True` the whole model runs and the logits come back too (task-specific).
    """

    def __init__(self, model: nn.Module, layer: int = -1, full: bool = False):
        super().__init__()
        layer_index(model, layer)  # fail now, not at the first step, on a layer the model lacks
        self.model = model
        self.layer = layer
        self.full = full

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        if not self.full:
            return truncated_qkv(self.model, input_ids, attention_mask, self.layer, token_type_ids), None
        with capture_qkv(self.model, self.layer) as captured:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return QKV(captured["query"], captured["key"], captured["value"]), task_logits(out)
