"""The default adapter, BERT's layout, and what every adapter answers about one attention layer.

A family's adapter says where a layer's query, key and value projections are, how the model forms its attention
logits from them, which inputs the model takes, how a student's config is made from the teacher's, and which
modules a student copies from its teacher. For one layer it gives a `QKV` (below):

    logits_h = scale * Q_h K_h^T + bias        per head h, before the padding mask and the softmax

`scale` a float, `bias` None or an additive float32 tensor broadcastable to (batch, heads, seq, seq) (MPNet's
relative position bias, DeBERTa's disentangled position terms, a local-attention window). Padding is never in
`bias`: the losses exclude padded keys themselves. The layer's input hidden states and the per-layer extras the
encoder passes (position bias, relative positions, rotary cos/sin) are what the block was called with, recorded by
`models.attention` (a forward pre-hook), so no encoder loop is written here.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import astuple, dataclass, replace
from typing import Any, NamedTuple

import torch
from torch import nn

from minilm.errors import MiniLMError, require


@dataclass
class LayerCall:
    """The positional and keyword arguments one encoder block was called with."""

    module: nn.Module
    args: tuple
    kwargs: dict

    def arguments(self) -> dict[str, Any]:
        """The call's arguments by parameter name (positional ones included), defaults not filled in."""
        signature = inspect.signature(self.module.forward)
        named = dict(signature.bind(*self.args, **self.kwargs).arguments)
        var_keyword = next((n for n, p in signature.parameters.items() if p.kind is inspect.Parameter.VAR_KEYWORD),
                           None)
        named.update(named.pop(var_keyword, {}) if var_keyword else {})
        return named

    def get(self, name: str, default=None):
        return self.arguments().get(name, default)

    @property
    def hidden_states(self) -> torch.Tensor:
        return self.args[0] if self.args else self.kwargs["hidden_states"]


class QKV(NamedTuple):
    """The query, key and value of one layer, each (batch, seq, hidden) with heads concatenated, and how the model
    forms its attention logits from the query and key: scale * Q_h K_h^T + bias (`base` module docstring). The
    value relation and MiniLMv2's relations use the tensors alone."""

    query: torch.Tensor
    key: torch.Tensor
    value: torch.Tensor
    heads: int = 1
    scale: float | None = None  # None: 1 / sqrt(head size)
    bias: torch.Tensor | None = None

    def attention_logits(self) -> torch.Tensor:
        """(batch, heads, seq, seq) float32 logits of the model's own attention, before the padding mask."""
        q, k = split_heads(self.query.float(), self.heads), split_heads(self.key.float(), self.heads)
        scale = self.scale if self.scale is not None else q.shape[-1] ** -0.5
        logits = scale * (q @ k.transpose(-1, -2))
        return logits if self.bias is None else logits + self.bias


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    batch, seq, hidden = x.shape
    return x.view(batch, seq, num_heads, hidden // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    batch, heads, seq, d = x.shape
    return x.transpose(1, 2).reshape(batch, seq, heads * d)


def submodule(module: nn.Module, dotted: str) -> nn.Module | None:
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


@dataclass(frozen=True)
class Shape:
    """A model's depth, width, attention heads and feed-forward width, whatever its config calls them."""

    layers: int
    hidden: int
    heads: int
    ffn: int


class Family:
    """BERT (and the default for the BERT layout): `base_model.encoder.layer[i].attention.self.{query,key,value}`;
    logits = Q K^T / sqrt(d); token types when `type_vocab_size` > 1; a pooler."""

    name = "BERT"
    model_types: tuple[str, ...] = ("bert",)
    supports_sdpa = True  # loads with SDPA attention (else eager: the family writes its attention out)
    attention_interface = True  # attention runs through transformers' interface (our CPU kernel can replace it)
    shared_modules: tuple[str, ...] = ("pooler",)  # base_model modules besides embeddings and blocks a student copies
    sentence_module = "Transformer"  # the sentence-transformers module it is saved as the first module of
    # What the family's config calls depth, width, heads and feed-forward width, and its dropout probabilities.
    config_names = Shape("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")
    dropout_names: tuple[str, ...] = ("hidden_dropout_prob", "attention_probs_dropout_prob")

    # -- structure ----------------------------------------------------------------------------------------------
    def layers(self, model: nn.Module) -> nn.ModuleList:
        return model.base_model.encoder.layer

    def projections(self, layer: nn.Module) -> dict[str, nn.Module]:
        """The Linear modules the layer's query, key and value come from (one fused "qkv" module for some
        families): the `block_linears` that carry a `part`."""
        return {roles.part: submodule(layer, name) for name, roles in self.block_linears().items() if roles.part}

    def shape(self, config) -> Shape:
        return Shape(*(getattr(config, name) for name in astuple(self.config_names)))

    def with_shape(self, config, shape: Shape):
        """A copy of `config` with `shape`'s depth, width, heads and feed-forward width, nothing else changed."""
        config = copy.deepcopy(config)
        for name, value in zip(astuple(self.config_names), astuple(shape)):
            setattr(config, name, value)
        return config

    def with_depth(self, config, layers: int):
        """A copy of `config` with `layers` layers (for counting parameters)."""
        return self.with_shape(config, replace(self.shape(config), layers=layers))

    def max_positions(self, config) -> int:
        """Tokens a sequence may hold, the special tokens included."""
        return config.max_position_embeddings

    def takes_token_types(self, config) -> bool:
        return (getattr(config, "type_vocab_size", 0) or 0) > 1

    # -- sentence embeddings ------------------------------------------------------------------------------------
    def pooling_mask(self, config, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The tokens a sentence embedding of the model pools over: its real tokens."""
        return attention_mask

    def own_pooling(self, modes: tuple[str, ...]) -> tuple[str, ...]:
        """The pooling a student of this family takes when its teacher pools by `modes`: the teacher's."""
        return modes

    # -- one layer ----------------------------------------------------------------------------------------------
    def qkv(self, model: nn.Module, layer: nn.Module, call: LayerCall) -> tuple[torch.Tensor, ...]:
        x = call.hidden_states
        p = self.projections(layer)
        return p["query"](x), p["key"](x), p["value"](x)

    def scale(self, model: nn.Module, layer: nn.Module) -> float:
        return self.head_size(model.config) ** -0.5

    def head_size(self, config) -> int:
        """The width of one attention head, as the config makes it (every module of the model reads it there)."""
        shape = self.shape(config)
        return shape.hidden // shape.heads

    def bias(self, model: nn.Module, layer: nn.Module, call: LayerCall, query, key) -> torch.Tensor | None:
        return None

    def bias_kind(self, config, index: int) -> str | None:
        """What the attention bias of block `index` (0-based) is, in words, or None where it has none."""
        return None

    def layer_qkv(self, model: nn.Module, index: int, call: LayerCall) -> QKV:
        """The `QKV` of block `index` (0-based) from what the block was called with."""
        layer = self.layers(model)[index]
        q, k, v = self.qkv(model, layer, call)
        return QKV(q, k, v, self.shape(model.config).heads, self.scale(model, layer),
                   self.bias(model, layer, call, q, k))

    # -- students -----------------------------------------------------------------------------------------------
    def student_config(self, teacher_config, shape: Shape, dropout: float, teacher_layers: list[int] | None = None):
        """The teacher's config with the student's depth, width, heads, feed-forward width and dropout."""
        config = self.with_shape(teacher_config, shape)
        for name in self.dropout_names:
            setattr(config, name, dropout)
        if getattr(config, "head_dim", None) is not None:
            config.head_dim = shape.hidden // shape.heads
        return config

    def copy_pairs(self, student: nn.Module, teacher: nn.Module, teacher_layers: list[int]) -> list[tuple]:
        """(student module, teacher module, what) pairs a teacher-layer initialisation copies."""
        s_base, t_base = student.base_model, teacher.base_model
        s_layers, t_layers = self.layers(student), self.layers(teacher)
        pairs = [(s_base.embeddings, t_base.embeddings, "embeddings")]
        pairs += [(s_layers[i], t_layers[j - 1], f"layer {j}") for i, j in enumerate(teacher_layers)]
        for dotted in self.shared_modules:
            s_module, t_module = submodule(s_base, dotted), submodule(t_base, dotted)
            if s_module is not None and t_module is not None:
                pairs.append((s_module, t_module, dotted))
        return pairs

    def copy_notes(self, student: nn.Module, teacher: nn.Module, teacher_layers: list[int]) -> list[str]:
        """What a run should be told about a copy (a layer copied into a slot that works differently)."""
        return []

    # -- pruning (`models.pruning`) ------------------------------------------------------------------------------
    # A per-head parameter shared by every layer (MPNet's relative position bias): all layers keep the same heads.
    uniform_heads = False

    def block_linears(self) -> dict[str, "Roles"]:
        """The Linear modules of one block whose rows or columns are whole heads or FFN neurons, by dotted name
        within the block (a name the block lacks is skipped: DeBERTa's optional position projections)."""
        return {"attention.self.query": QUERY, "attention.self.key": KEY, "attention.self.value": VALUE,
                "attention.output.dense": HIDDEN_FROM_HEADS, "intermediate.dense": FFN_FROM_HIDDEN,
                "output.dense": HIDDEN_FROM_FFN}

    def head_parameters(self) -> dict[str, int]:
        """Parameters outside the blocks with one entry per head, by dotted name under `base_model`: the dimension
        that counts heads."""
        return {}


UNITS = ("hidden", "heads", "ffn")  # what a Linear's rows and columns can be, for pruning


class Roles(NamedTuple):
    """What a Linear's output rows and input columns are, for pruning: "hidden" (the residual stream's channels),
    "heads" (whole heads, head after head) or "ffn" (feed-forward neurons); `chunks`: a fused projection's output
    is that many such blocks one after another (ModernBERT's Q|K|V, its GLU's input|gate); `part`: which of the
    attention's query, key and value it computes ("qkv" for a fused one), for `Family.projections`."""

    out: str
    inp: str
    chunks: int = 1
    part: str | None = None


HEADS_FROM_HIDDEN = Roles("heads", "hidden")
QUERY, KEY, VALUE = (Roles("heads", "hidden", part=part) for part in ("query", "key", "value"))
HIDDEN_FROM_HEADS = Roles("hidden", "heads")
FFN_FROM_HIDDEN = Roles("ffn", "hidden")
HIDDEN_FROM_FFN = Roles("hidden", "ffn")


def copy_module(dst: nn.Module, src: nn.Module, what: str) -> None:
    """Load `src`'s weights into `dst`; a shape that differs is a one-line error naming it."""
    if isinstance(dst, nn.Identity) or isinstance(src, nn.Identity):
        return
    src_state, dst_state = src.state_dict(), dst.state_dict()
    for key in sorted(dst_state.keys() & src_state.keys()):
        require(src_state[key].shape == dst_state[key].shape,
                f"student_init=teacher: teacher {what} does not fit the student ({key}: {tuple(src_state[key].shape)} "
                f"vs {tuple(dst_state[key].shape)}); use student_init=random")
    dst.load_state_dict(src_state, strict=False)


def unsupported(model_type: str, supported: list[str]) -> MiniLMError:
    return MiniLMError(f"minilm has no adapter for {model_type} models; supported: {', '.join(supported)}")
