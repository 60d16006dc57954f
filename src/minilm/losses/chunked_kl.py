"""MiniLM and MiniLMv2 self-attention distillation losses: pure functions of tensors and a mask.

Notation (MiniLM, Wang et al. 2020, Eq. 4-7; MiniLMv2, Wang et al. 2021, Eq. 3-5):
for a relation pair (left, right), e.g. (Q, K) or (V, V), each `(batch, seq, hidden)` tensor is split
into A relation heads of size d = hidden / A ("concatenate then split", MiniLMv2 Sec. 3.1), and

    R_a = softmax(left_a @ right_a^T / sqrt(d))          (batch, A, seq, seq), one row per query token
    L   = 1 / (A |x|) * sum_a sum_t KL(R^T_{a,t} || R^S_{a,t})   per example, then averaged over the batch

with the teacher as the target distribution and |x| the example's real (unpadded) length.
Padded keys are excluded from every softmax and padded query rows from every sum, so appending
padding never changes the loss. The teacher side is a constant (no gradient flows into it).

Logits, softmax and KL are always float32, whatever autocast does around the call or to the
projections feeding them. Two implementations compute the same function (`relation_kl(kernel=...)`):
the chunked PyTorch path below (CPU, and GPUs without Triton) and the fused Triton kernels of
`minilm.losses.triton_kl` (CUDA), which never write a (batch, heads, seq, seq) map.
"""

from __future__ import annotations

import math

import torch

from minilm.errors import require


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(batch, seq, hidden) -> (batch, heads, seq, hidden / heads), float32 and contiguous.

    Contiguous, so that the relation KL's chunks are views its matrix multiplies take without copying.
    """
    batch, seq, hidden = x.shape  # the relation heads divide hidden (the objective checks it)
    heads = x.view(batch, seq, num_heads, hidden // num_heads).transpose(1, 2)
    return heads.to(torch.float32, memory_format=torch.contiguous_format)


def _relation_log_probs(left: torch.Tensor, right: torch.Tensor, key_bias: torch.Tensor | None,
                        bias: torch.Tensor | None = None) -> torch.Tensor:
    """log softmax(left @ right^T / sqrt(d) + bias) over real keys only.

    left: (batch, heads, q, d); right: (batch, heads, seq, d); key_bias: (batch, 1, 1, seq) float32,
    0 on real keys and the most negative float on padded ones, or None when nothing is padded; bias: the
    model's own additive attention bias for these rows, broadcastable to (batch, heads, q, seq), or None.
    Returns (batch, heads, q, seq); padded keys get probability 0 exactly (their logit rounds to the
    most negative float, so exp underflows to 0 and the log stays finite).
    """
    logits = (left * (1.0 / math.sqrt(left.shape[-1]))) @ right.transpose(-1, -2)  # scale the small side
    if bias is not None:
        logits.add_(bias)
    if key_bias is not None:  # an additive bias, not masked_fill_ with a broadcast mask: docs/cpu_kernels.txt
        logits.add_(key_bias)
    return torch.log_softmax(logits, dim=-1)


def _rows(bias: torch.Tensor | None, examples: slice, rows: slice) -> torch.Tensor | None:
    """One chunk's slice of a (batch or 1, heads or 1, seq, seq) attention bias."""
    if bias is None:
        return None
    return bias[examples if bias.shape[0] > 1 else slice(None), :, rows]


LOG2_E = math.log2(math.e)


def _exp(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """e^x as 2^(x log2 e): on CPU, `torch.exp` goes through MKL's vector math library and `exp2` through
    torch's own vectorised kernel, several times faster (docs/cpu_kernels.txt). Rounding x log2 e costs up to
    |x| log2(e) 2^-24 relative: 1.5e-6 for x in [-10, 0], where a softmax's mass lies."""
    return (x.mul_(LOG2_E) if inplace else x * LOG2_E).exp2_()


def _rows_kl(t_logp: torch.Tensor, s_logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """KL(teacher row || student row) for each query row, (batch, heads, q), and the teacher probabilities.

    Overwrites `t_logp` (in place: one map fewer to allocate and to pass through the cache). On a
    padded key p_t is exactly 0 and both logs are finite, so its term is exactly 0.
    """
    p_t = _exp(t_logp)
    return t_logp.sub_(s_logp).mul_(p_t).sum(-1), p_t


# Map elements per chunk: 2^19 float32 = 2 MiB, so that the few maps a chunk needs at once stay in the
# CPU caches, and no whole (batch, heads, seq, seq) map is ever allocated (docs/performance.md compares
# it with whole maps and with recomputing chunks in the backward).
CHUNK_ELEMENTS = 1 << 19


def auto_chunk(batch: int, heads: int, seq: int, rows: int | None = None, budget: int | None = None
               ) -> tuple[int, int]:
    """(examples, query rows) per chunk so that one (examples, heads, rows, seq) map holds about `budget`
    (default `CHUNK_ELEMENTS`) elements, with at least one example and one row; `rows` fixes the rows."""
    budget = budget or CHUNK_ELEMENTS
    if rows is None:
        rows = max(1, min(seq, budget // max(heads * seq, 1)))
    examples = max(1, min(batch, budget // max(heads * rows * seq, 1)))
    return examples, rows


class _ChunkedRelationKL(torch.autograd.Function):
    """Sum over chunks of (examples, query rows) of weighted row KLs; the gradient is computed in the forward.

    d KL(p_t || softmax(z_s)) / d z_s = p_s - p_t (zero on padded keys, where both are zero), and
    z_s = left @ right^T / sqrt(d) + bias_s gives the input gradients (the bias's is that map itself, summed
    over what it broadcasts over); the teacher gets none. Each chunk's maps are used while still in cache and
    then dropped: the forward, when the student needs a gradient, turns them straight into that chunk's
    (examples, heads, rows, d) input gradients, and the backward only scales those by the incoming gradient.
    Nothing of size (batch, heads, seq, seq) is ever held beyond a student bias the model made itself, and
    nothing is recomputed.
    """

    @staticmethod
    def forward(ctx, t_left, t_right, s_left, s_right, key_bias, t_bias, s_bias, row_weight, examples, rows):
        need_grad = ctx.needs_input_grad[2] or ctx.needs_input_grad[3]
        need_bias_grad = ctx.needs_input_grad[6]
        batch, _, seq, d = s_left.shape
        scale = 1.0 / math.sqrt(d)
        total = s_left.new_zeros(())
        grad_left = torch.empty_like(s_left) if need_grad else None
        one_pass = rows >= seq  # every key column's gradient is finished within one chunk: no sum over chunks
        grad_right = (torch.empty_like(s_right) if one_pass else torch.zeros_like(s_right)) if need_grad else None
        grad_bias = torch.zeros_like(s_bias, dtype=torch.float32) if need_bias_grad else None
        for b in range(0, batch, examples):
            ex = slice(b, b + examples)
            keys = None if key_bias is None else key_bias[ex]
            for start in range(0, seq, rows):
                r = slice(start, start + rows)
                s_logp = _relation_log_probs(s_left[ex, :, r], s_right[ex], keys, _rows(s_bias, ex, r))
                kl, p_t = _rows_kl(_relation_log_probs(t_left[ex, :, r], t_right[ex], keys, _rows(t_bias, ex, r)),
                                   s_logp)
                weight = row_weight[ex, r]
                total += (kl.sum(1) * weight).sum()
                if need_grad or need_bias_grad:
                    g = _exp(s_logp, inplace=True).sub_(p_t).mul_(weight[:, None, :, None])  # d loss / d z_s
                    if need_bias_grad:  # summed over the dimensions the bias is broadcast over
                        target = _rows(grad_bias, ex, r)
                        broadcast = [i for i in (0, 1) if target.shape[i] == 1 and g.shape[i] > 1]
                        target += g.sum(broadcast, keepdim=True) if broadcast else g
                    if need_grad:
                        g.mul_(scale)  # d loss / d (left right^T)
                        torch.matmul(g, s_right[ex], out=grad_left[ex, :, r])
                        if one_pass:
                            torch.matmul(g.transpose(-1, -2), s_left[ex, :, r], out=grad_right[ex])
                        else:
                            grad_right[ex] += g.transpose(-1, -2) @ s_left[ex, :, r]
        ctx.save_for_backward(grad_left, grad_right, grad_bias)
        return total

    @staticmethod
    def backward(ctx, grad):
        grad_left, grad_right, grad_bias = ctx.saved_tensors
        scaled = [None if g is None else g * grad for g in (grad_left, grad_right, grad_bias)]
        return None, None, scaled[0], scaled[1], None, None, scaled[2], None, None, None


# On CUDA a chunk's maps may take a few hundred MB: 2^25 float32 elements (128 MiB) per map, of which a
# chunk holds about four at once (docs/performance.md, "The GPU path", counts the chunks at the paper's shapes).
CHUNK_ELEMENTS_CUDA = 1 << 25


def triton_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("triton") is not None


def resolve_kernel(kernel: str, device: torch.device, head: int | None = None, ieee: bool = False) -> str:
    """"torch" or "triton" for `relation_kl(kernel=...)`: "auto" takes Triton on CUDA when it is installed and
    its launch table covers the relation head size `head` (at `ieee`: float32 inputs), else the torch path.

    "triton" on CPU tensors runs only under Triton's interpreter (TRITON_INTERPRET=1, slow; for tests).
    """
    import os

    if kernel == "auto":
        if device.type != "cuda" or not triton_available():
            return "torch"
        from minilm.losses.triton_kl import covers

        return "triton" if head is None or covers(head, ieee) else "torch"
    if kernel == "triton":
        require(triton_available(), "relation kernel triton needs the triton package: pip install 'minilm[gpu]'")
        require(device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1",
                "relation kernel triton runs on CUDA tensors (on CPU only under TRITON_INTERPRET=1); "
                "use --relation-kernel auto or torch")
    return kernel


def _triton_relation_kl(t_left, t_right, s_left, s_right, mask, heads, row_weight):
    from minilm.losses.triton_kl import TritonRelationKL

    tensors = [t_left.detach(), t_right.detach(), s_left, s_right]
    if len({x.dtype for x in tensors}) > 1 or tensors[0].dtype not in (torch.float32, torch.bfloat16, torch.float16):
        tensors = [x.float() for x in tensors]
    kl = TritonRelationKL.apply(*tensors, mask, heads)  # (batch, heads, seq)
    return (kl * row_weight[:, None, :]).sum() / mask.shape[0]


def relation_kl(teacher_left: torch.Tensor, teacher_right: torch.Tensor, student_left: torch.Tensor,
                student_right: torch.Tensor, attention_mask: torch.Tensor, num_relation_heads: int,
                query_chunk: int | None = None, kernel: str = "auto", *, teacher_bias: torch.Tensor | None = None,
                student_bias: torch.Tensor | None = None) -> torch.Tensor:
    """Self-attention relation distillation loss (MiniLMv2 Eq. 3-5; MiniLM Eq. 4-7 for Q-K and V-V).

    Args:
        teacher_left, teacher_right: (batch, seq, teacher_hidden), e.g. the teacher's Q and K.
        student_left, student_right: (batch, seq, student_hidden); the hidden sizes may differ.
        attention_mask: (batch, seq), 1 for real tokens, 0 for padding.
        num_relation_heads: A; each hidden size must be divisible by it.
        query_chunk: torch kernel: query rows per chunk (default: as many as fit `CHUNK_ELEMENTS` with
            one example, `CHUNK_ELEMENTS_CUDA` on a GPU). Only one chunk's (examples, A, rows, seq) maps
            exist at a time; the value and gradients do not depend on the chunk size.
        kernel: "torch" (chunked maps), "triton" (fused kernels, `triton_kl`: no map is ever
            written) or "auto" (Triton on CUDA when it is installed, else torch). A bias takes the torch path.
        teacher_bias, student_bias: the model's own additive attention bias (MPNet's relative positions,
            DeBERTa's position terms, a local-attention window), float32, broadcastable to (batch, A, seq, seq),
            added to that side's logits: R = softmax(left right^T / sqrt(d) + bias). None for the plain relation.
            A student bias that requires grad gets its gradient.

    Returns:
        Scalar float32: sum over heads and real query rows of KL(teacher || student), divided by
        A * (real length) per example, then averaged over the batch. Logits, softmax and KL are
        float32 (bf16 inputs are exact in float32) whatever autocast is active around the call.
    """
    require(attention_mask.dim() == 2, "attention_mask must be (batch, seq)")
    mask = attention_mask.bool()
    lengths = mask.sum(-1).clamp(min=1).float()  # |x| per example
    row_weight = mask.float() / (num_relation_heads * lengths[:, None])  # (batch, seq)
    device = student_left.device
    with torch.autocast(device.type, enabled=False):  # autocast would run the logits in bf16: -inf - -inf
        head = max(teacher_left.shape[-1], student_left.shape[-1]) // num_relation_heads
        dtypes = {x.dtype for x in (teacher_left, teacher_right, student_left, student_right)}
        ieee = len(dtypes) > 1 or not dtypes <= {torch.bfloat16, torch.float16}  # what the kernel is handed
        plain = teacher_bias is None and student_bias is None  # the fused kernels take no bias
        if plain and resolve_kernel(kernel, device, head, ieee) == "triton":
            return _triton_relation_kl(teacher_left, teacher_right, student_left, student_right, mask,
                                       num_relation_heads, row_weight)
        t_left = split_heads(teacher_left.detach(), num_relation_heads)
        s_left = split_heads(student_left, num_relation_heads)
        # V-V (and Q-Q, K-K) relations: split the one tensor once.
        t_right = t_left if teacher_right is teacher_left else split_heads(teacher_right.detach(), num_relation_heads)
        s_right = s_left if student_right is student_left else split_heads(student_right, num_relation_heads)
        key_bias = None  # no padding: skip the masking
        if not bool(mask.all()):
            key_bias = torch.zeros(mask.shape, device=mask.device).masked_fill_(~mask, torch.finfo(torch.float32).min)
            key_bias = key_bias[:, None, None, :]
        budget = CHUNK_ELEMENTS_CUDA if device.type == "cuda" else None
        examples, rows = auto_chunk(*s_left.shape[:3], rows=query_chunk, budget=budget)
        t_bias = None if teacher_bias is None else teacher_bias.detach().float()
        s_bias = None if student_bias is None else student_bias.float()
        return _ChunkedRelationKL.apply(t_left, t_right, s_left, s_right, key_bias, t_bias, s_bias, row_weight,
                                        examples, rows) / mask.shape[0]


def attention_relation_losses(teacher, student, attention_mask: torch.Tensor, pairs: dict[str, tuple[str, str]],
                              num_relation_heads: int, query_chunk: int | None = None, kernel: str = "auto"
                              ) -> dict[str, torch.Tensor]:
    """The named self-attention relation losses of MiniLM (v1) or MiniLMv2 (v2).

    teacher, student: `models.architectures.QKV` (or mappings) with `query`, `key`, `value`, each
        (batch, seq, hidden), and the model's own attention `scale` and `bias` (None: 1/sqrt(d), no bias).
    pairs: name -> (left, right) of the relations to distil: v1 `V1_RELATIONS` (L_AT = KL of the attention
        distributions, softmax(scale Q K^T + bias) exactly as the model forms them; L_VR = KL of the V-V relations;
        MiniLM Eq. 5-7), with the attention head count, equal for teacher and student; v2 any of `V2_RELATIONS`
        (MiniLMv2 Eq. 3-5, plain relations softmax(X X^T / sqrt(d))) with relation heads of their own.
        `num_relation_heads` divides both hidden sizes.
    kernel: the relation KL's implementation (`relation_kl`).
    The total loss is the plain sum of the returned values.
    """
    t, s = _as_dict(teacher), _as_dict(student)
    losses = {}
    for name, (a, b) in pairs.items():
        if (a, b) == ("query", "key"):  # the model's own attention distributions: its scale and bias
            losses[name] = relation_kl(_scaled_query(t, num_relation_heads), t["key"],
                                       _scaled_query(s, num_relation_heads), s["key"], attention_mask,
                                       num_relation_heads, query_chunk, kernel, teacher_bias=t.get("bias"),
                                       student_bias=s.get("bias"))
        else:
            losses[name] = relation_kl(t[a], t[b], s[a], s[b], attention_mask, num_relation_heads, query_chunk, kernel)
    return losses


def _as_dict(qkv) -> dict:
    return qkv._asdict() if hasattr(qkv, "_asdict") else dict(qkv)


def _scaled_query(qkv: dict, heads: int) -> torch.Tensor:
    """The query with the model's attention scale folded in: logits = scale Q K^T = (Q scale sqrt(d)) K^T / sqrt(d),
    the form `relation_kl` takes. The query itself when the model scales by 1 / sqrt(d)."""
    scale, query = qkv.get("scale"), qkv["query"]
    d = query.shape[-1] // heads
    if scale is None or abs(scale * math.sqrt(d) - 1.0) < 1e-12:
        return query
    return query * (scale * math.sqrt(d))
