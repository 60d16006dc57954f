"""A narrower student from its teacher's own weights: structured pruning as a student's start.

Which units matter is measured on a few batches of the run's own text by their activations, as Minitron does
(Muralidharan et al., "Compact Language Models via Pruning and Knowledge Distillation", 2024, Sec. 2.2), with no
gradient and no labels:

    head h of layer l:        mean over real tokens of || context_l,h ||_2    (the head's output, before W_O)
    FFN neuron n of layer l:  mean over real tokens of | act(x W_in)_n |      (the input of the FFN's output layer)
    hidden channel c:         mean over real tokens and over the embeddings' and every layer's output of | h_c |

The most important are kept (`choose`) and every matrix is sliced consistently (`prune_into`): a head is kept
whole, at the teacher's head size, so the student is a standard config of its family (AutoModel and
sentence-transformers load it); the hidden channels are sliced in every embedding, LayerNorm, projection, pooler
and task head; each family's adapter names its block's projections and what their rows and columns are
(`Family.block_linears`) and any per-head parameter outside the blocks (MPNet's relative position bias, whose
column h serves head h of every layer: such a family keeps the same heads in every layer). Layers are the evenly
spaced ones a layer copy takes (`plan.default_init_layers`), the top one last.

Keeping everything gives the teacher back exactly; dropping FFN neurons equals zeroing them; dropping heads (where
a config lets the head count differ from width / head size) equals zeroing their outputs; the tests check each.
Pruning hidden channels is not equivalent to zeroing them (each LayerNorm then normalises fewer channels), which
is why distillation follows (CoFi, Xia et al. 2022; Minitron).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from minilm.errors import MiniLMError, require
from minilm.models.architectures import family_of, inputs_for
from minilm.models.architectures.base import submodule

CALIBRATION_EXAMPLES = 256  # examples of the run's text the importances are measured on (Minitron: 1,024 samples)
CALIBRATION_BATCH = 32


@dataclass
class Importance:
    """Activation importances of a teacher: hidden (width,), heads[l] (heads,), ffn[l] (ffn,) per teacher layer."""

    hidden: torch.Tensor
    heads: list[torch.Tensor]
    ffn: list[torch.Tensor]


@dataclass
class Kept:
    """What a pruned student keeps of its teacher: `layers` the 0-based teacher blocks, one per student block;
    `hidden` the teacher's channel indices; `heads[i]` and `ffn[i]` the teacher heads and FFN neurons of student
    block i. Indices are in the teacher's order (ascending), so keeping everything is the identity."""

    layers: list[int]
    hidden: torch.Tensor
    heads: list[torch.Tensor]
    ffn: list[torch.Tensor]


def block_roles(family, block: nn.Module) -> dict:
    """The family's role table of the Linear modules one block has."""
    return {name: roles for name, roles in family.block_linears().items() if submodule(block, name) is not None}


@torch.no_grad()
def measure_importance(teacher: nn.Module, batches) -> Importance:
    """Mean absolute activations of the teacher's heads, FFN neurons and hidden channels over the real tokens of
    `batches` (dicts of input_ids, attention_mask, token_type_ids), in float32 and eval mode."""
    family = family_of(teacher)
    blocks = family.layers(teacher)
    shape = family.shape(teacher.config)
    mask = {}
    sums = {"heads": [0.0] * len(blocks), "ffn": [0.0] * len(blocks)}

    def recorder(kind: str, index: int, head_size: int | None):
        def hook(module, args):
            x = args[0].float()
            m = mask["current"].to(x.dtype)[..., None]  # (batch, seq, 1)
            if kind == "heads":
                x = x.view(*x.shape[:-1], -1, head_size).norm(dim=-1)  # (batch, seq, heads)
            else:
                x = x.abs()
            sums[kind][index] = sums[kind][index] + (x * m).sum(dim=(0, 1))
        return hook

    handles = []
    for index, block in enumerate(blocks):
        for name, roles in block_roles(family, block).items():
            if roles.inp in ("heads", "ffn"):
                head_size = family.head_size(teacher.config) if roles.inp == "heads" else None
                handles.append(submodule(block, name).register_forward_pre_hook(
                    recorder(roles.inp, index, head_size)))
    was_training = teacher.training
    teacher.eval()
    device = next(teacher.parameters()).device
    hidden, tokens = torch.zeros(shape.hidden, device=device), 0
    try:
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            mask["current"] = batch["attention_mask"]
            out = teacher.base_model(**inputs_for(teacher, batch), output_hidden_states=True)
            m = batch["attention_mask"].float()[..., None]
            for states in out.hidden_states:
                if states.shape[-1] == shape.hidden:  # ELECTRA's narrower embeddings are not the blocks' width
                    hidden += (states.float().abs() * m).sum(dim=(0, 1))
            tokens += int(batch["attention_mask"].sum())
    finally:
        for handle in handles:
            handle.remove()
        teacher.train(was_training)
    require(tokens > 0, "pruning measures the teacher on text, and the calibration batches hold no token")
    return Importance((hidden / tokens).cpu(), [(h / tokens).cpu() for h in sums["heads"]],
                      [(f / tokens).cpu() for f in sums["ffn"]])


def top(scores: torch.Tensor, count: int) -> torch.Tensor:
    """The indices of the `count` largest scores, in ascending index order (ties to the lower index)."""
    order = torch.argsort(-scores.double(), stable=True)[:count]
    return torch.sort(order).values


def choose(importance: Importance, layers: list[int], hidden: int, heads: int, ffn: int,
           uniform_heads: bool = False) -> Kept:
    """The most important `hidden` channels, and in each kept layer (0-based teacher blocks) its `heads` heads and
    `ffn` neurons; with `uniform_heads` every layer keeps the heads of the largest summed share of importance."""
    kept_heads = [top(importance.heads[j], heads) for j in layers]
    if uniform_heads:
        share = sum(importance.heads[j] / importance.heads[j].sum().clamp_min(1e-12) for j in layers)
        kept_heads = [top(share, heads)] * len(layers)
    return Kept(list(layers), top(importance.hidden, hidden), kept_heads, [top(importance.ffn[j], ffn) for j in layers])


def channels(heads: torch.Tensor, head_size: int) -> torch.Tensor:
    """The channel indices of whole heads: head h is channels h*d .. h*d + d - 1."""
    return (heads[:, None] * head_size + torch.arange(head_size)).reshape(-1)


def chunked(index: torch.Tensor, size: int, chunks: int) -> torch.Tensor:
    """`index` repeated in each of `chunks` blocks of `size` rows (a fused projection's Q|K|V or input|gate)."""
    return torch.cat([index + k * size for k in range(chunks)])


def prune_into(student: nn.Module, teacher: nn.Module, kept: Kept) -> None:
    """Fill `student` (built from the pruned config) with the teacher's weights at the kept indices. A task head
    is taken from the teacher when both are models of the same class (task-specific distillation: the same
    labels); a parameter that does not come out in the student's shape is an error, never a silent random start."""
    family = family_of(teacher)
    t_shape, s_shape = family.shape(teacher.config), family.shape(student.config)
    t_blocks, s_blocks = family.layers(teacher), family.layers(student)
    require(len(kept.layers) == len(s_blocks), f"pruning keeps {len(kept.layers)} layers for a student of "
                                               f"{len(s_blocks)}")
    head_size = family.head_size(teacher.config)
    hidden = kept.hidden
    same_head = type(student) is type(teacher) and student is not student.base_model
    t_root, s_root = (teacher, student) if same_head else (teacher.base_model, student.base_model)
    with torch.no_grad():
        for i, j in enumerate(kept.layers):
            index = {"hidden": hidden, "heads": channels(kept.heads[i], head_size), "ffn": kept.ffn[i]}
            roles = block_roles(family, t_blocks[j])
            done = set()
            for name, role in roles.items():
                t_linear, s_linear = submodule(t_blocks[j], name), submodule(s_blocks[i], name)
                rows = chunked(index[role.out], t_linear.out_features // role.chunks, role.chunks)
                copy_sliced(s_linear.weight, t_linear.weight, {0: rows, 1: index[role.inp]}, f"layer {j + 1} {name}")
                if t_linear.bias is not None:
                    copy_sliced(s_linear.bias, t_linear.bias, {0: rows}, f"layer {j + 1} {name}")
                done |= {f"{name}.weight", f"{name}.bias"}
            t_block = dict(t_blocks[j].named_parameters())
            for name, param in s_blocks[i].named_parameters():
                if name not in done:
                    dims = hidden_dims(owner(t_blocks[j], name), t_block[name], param, t_shape.hidden,
                                       s_shape.hidden, hidden)
                    copy_sliced(param, t_block[name], dims, f"layer {j + 1} {name}")
        block_names = {f"{prefix(s_root, s_blocks)}.{n}" for n, _ in s_blocks.named_parameters()}
        base = prefix(s_root, student.base_model)
        per_head = {f"{base}.{name}" if base else name: dim for name, dim in family.head_parameters().items()}
        t_params = dict(t_root.named_parameters())
        for name, param in s_root.named_parameters():
            if name in block_names:
                continue
            require(name in t_params, f"pruning: the teacher has no {name} to start the student's from")
            if name in per_head:
                copy_sliced(param, t_params[name], {per_head[name]: kept.heads[0]}, name)
                continue
            dims = hidden_dims(owner(t_root, name), t_params[name], param, t_shape.hidden, s_shape.hidden,
                               hidden)
            copy_sliced(param, t_params[name], dims, name)


def prefix(root: nn.Module, module: nn.Module) -> str:
    """The dotted name of `module` inside `root` ('' for root itself)."""
    return next(name for name, m in root.named_modules() if m is module)


def owner(root: nn.Module, parameter: str) -> nn.Module:
    """The module that holds a parameter, by its dotted name."""
    return submodule(root, parameter.rsplit(".", 1)[0]) if "." in parameter else root


def hidden_dims(t_module: nn.Module, t_param: torch.Tensor, s_param: torch.Tensor, t_width: int,
                s_width: int, hidden: torch.Tensor) -> dict:
    """The dimensions of a parameter outside the declared projections that run along the residual width: those its
    module's kind can have there (an embedding's columns, a norm's entries, a Linear's or convolution's rows and
    columns) whose size is the teacher's width in the teacher's parameter and the student's width in the
    student's; both must hold, so a dimension that only happens to be as long as one width is never sliced."""
    if isinstance(t_module, nn.Embedding):
        candidates = [1]
    elif isinstance(t_module, (nn.Linear, nn.Conv1d)) and t_param.dim() >= 2:
        candidates = [0, 1]
    else:
        candidates = list(range(t_param.dim()))
    return {d: hidden for d in candidates if d < s_param.dim() and t_param.shape[d] == t_width
            and s_param.shape[d] == s_width}


def copy_sliced(target: torch.Tensor, source: torch.Tensor, index: dict[int, torch.Tensor], what: str) -> None:
    """target <- source indexed along the given dimensions; a shape that does not come out is a one-line error."""
    sliced = source
    for dim, idx in index.items():
        sliced = sliced.index_select(dim, idx.to(sliced.device))
    if sliced.shape != target.shape:
        raise MiniLMError(f"pruning cannot shape the teacher's {what} {tuple(source.shape)} into the student's "
                          f"{tuple(target.shape)}")
    target.copy_(sliced.to(target.dtype))


def calibration_batches(examples, pad_id: int, seed: int, count: int = CALIBRATION_EXAMPLES,
                        batch_size: int = CALIBRATION_BATCH) -> list[dict]:
    """`count` examples of the run's own text drawn with `seed`, padded into batches (what pruning measures on)."""
    from minilm.data.batches import pad_batch

    require(len(examples) > 0, "pruning measures the teacher on the run's text, and it holds no example")
    g = torch.Generator().manual_seed(seed)
    picks = torch.randperm(len(examples), generator=g)[:count].tolist()
    batches = []
    for start in range(0, len(picks), batch_size):
        batch = pad_batch([examples[i] for i in picks[start:start + batch_size]], pad_id)
        batches.append({k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")})
    return batches
