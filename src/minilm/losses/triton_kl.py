"""The relation KL as fused Triton kernels (CUDA): no (batch, heads, seq, seq) map is ever written.

For one relation (left, right) split into A heads of size d, with z = left right^T / sqrt(d) per head,
each query row t of each example and head has

    KL_t = sum_j p_t,j (z_t,j - z_s,j) - lse(z_t) + lse(z_s),      p_t = softmax(z_t)    (teacher t, student s)

Forward (`_forward_kernel`): one program per (example, head, block of query rows) streams over key blocks
with an online softmax for teacher and student, as FlashAttention does: it keeps per row only the running
maxima m_t, m_s, the sums of exponentials l_t, l_s and the accumulator
sum_j e^(z_t,j - m_t) ((z_t,j - m_t) - (z_s,j - m_s)), rescaled whenever a maximum grows, and ends with
KL_t = acc / l_t - log l_t + log l_s. Differences of max-shifted logits keep float32 accurate on peaked
rows (a V-V relation's diagonal), where z_t - z_s and lse_t - lse_s are large and nearly cancel. It
writes KL_t per row, (batch, heads, seq), and the row statistics m_t, log l_t, m_s, log l_s.

Backward: d KL_t / d z_s,tj = p_s,tj - p_t,tj. Two launches recompute the logits block by block and the
probabilities from the saved row statistics (maxima and log-sums, kept apart so that a peaked row's
probabilities come out exact): `_grad_kernel` with LEFT (a program per query block, over key blocks)
forms g_t (p_s - p_t) right / sqrt(d), without (a program per key block, over query blocks) its
transpose times left. g_t is the incoming gradient of each row's KL, so the per-example weights
1 / (A |x|) and the batch mean stay in PyTorch (`losses.chunked_kl`).

Padded keys (attention_mask 0) and key positions past the sequence are set to a large negative logit on
both sides, so they leave every softmax (probability exactly 0) and every sum; padded rows get no weight
from `relation_kl`, and so no gradient. Inputs are read in place from the (batch, seq, hidden) tensors at
head offsets (no split-head copies). Products accumulate in float32: float32 inputs in full IEEE float32,
bf16/fp16 inputs (what autocast hands over in training) as tf32 on the tensor cores, which holds their
values exactly, so the logits are those of float32 arithmetic on the same inputs.

Tested with `TRITON_INTERPRET=1` on the CPU against a float64 reference (tests/test_triton_kl.py).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from minilm.errors import MiniLMError

NEG = tl.constexpr(-1.0e30)  # a padded key's logit: exp(NEG - m) is exactly 0 for any real row maximum m


@triton.jit
def _logits(x_ptr, y_ptr, x_rows, y_rows, x_ok, y_ok, cols, width, stride_x, stride_y,
            scale, IEEE: tl.constexpr):
    """(len(x_rows), len(y_rows)) block of x y^T * scale from rows of two (seq, width) head slices."""
    x = tl.load(x_ptr + x_rows[:, None] * stride_x + cols[None, :], mask=x_ok[:, None] & (cols[None, :] < width),
                other=0.0).to(tl.float32)
    y = tl.load(y_ptr + y_rows[:, None] * stride_y + cols[None, :], mask=y_ok[:, None] & (cols[None, :] < width),
                other=0.0).to(tl.float32)
    return _dot(x, tl.trans(y), IEEE) * scale


@triton.jit
def _dot(x, y, IEEE: tl.constexpr):
    """float32 x float32 -> float32. IEEE for float32 inputs; tf32 tensor cores for values that came from
    bf16/fp16 tensors, which tf32's 10-bit mantissa holds exactly (so their products are exact too)."""
    if IEEE:
        return tl.dot(x, y, input_precision="ieee")
    return tl.dot(x, y, input_precision="tf32")


@triton.jit
def _program_inputs(TL, TR, SL, SR, stride_tl, stride_tr, stride_sl, stride_sr, seq, heads, dt, ds,
                    BLOCK: tl.constexpr):
    """What every program starts from: its example b and head h (grid axis 1 runs over both), its block of
    positions along axis 0 and which of them exist, and its four inputs' pointers at its head."""
    pid_bh = tl.program_id(1)
    b, h = pid_bh // heads, pid_bh % heads
    own = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    return (b, h, own, own < seq, TL + b * stride_tl + h * dt, TR + b * stride_tr + h * dt,
            SL + b * stride_sl + h * ds, SR + b * stride_sr + h * ds)


@triton.jit
def _forward_kernel(TL, TR, SL, SR, MASK, KL, STATS,
                    stride_tl, stride_tr, stride_sl, stride_sr, stride_tls, stride_trs, stride_sls, stride_srs,
                    seq, heads, dt, ds, scale_t, scale_s,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_DT: tl.constexpr, BLOCK_DS: tl.constexpr,
                    IEEE: tl.constexpr):
    b, h, rows, row_ok, tl_ptr, tr_ptr, sl_ptr, sr_ptr = _program_inputs(
        TL, TR, SL, SR, stride_tl, stride_tr, stride_sl, stride_sr, seq, heads, dt, ds, BLOCK_M)
    pid_bh, cols_t, cols_s = tl.program_id(1), tl.arange(0, BLOCK_DT), tl.arange(0, BLOCK_DS)
    # Running maxima start at NEG, not -inf, so that no inf - inf ever appears: until a row meets a real key
    # its sums are multiplied away (alpha = 0) at the first real one.
    m_t = tl.full([BLOCK_M], NEG, tl.float32)
    m_s = tl.full([BLOCK_M], NEG, tl.float32)
    l_t = tl.zeros([BLOCK_M], tl.float32)
    l_s = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M], tl.float32)  # sum_j e^(z_t,j - m_t) ((z_t,j - m_t) - (z_s,j - m_s))
    for start in range(0, seq, BLOCK_N):
        keys = start + tl.arange(0, BLOCK_N)
        key_ok = keys < seq
        real = tl.load(MASK + b * seq + keys, mask=key_ok, other=0) != 0
        z_t = _logits(tl_ptr, tr_ptr, rows, keys, row_ok, key_ok, cols_t, dt, stride_tls, stride_trs, scale_t, IEEE)
        z_s = _logits(sl_ptr, sr_ptr, rows, keys, row_ok, key_ok, cols_s, ds, stride_sls, stride_srs, scale_s, IEEE)
        z_t = tl.where(real[None, :], z_t, NEG)
        z_s = tl.where(real[None, :], z_s, NEG)
        m_t_new = tl.maximum(m_t, tl.max(z_t, 1))
        m_s_new = tl.maximum(m_s, tl.max(z_s, 1))
        alpha = tl.exp(m_t - m_t_new)
        # Each earlier term's difference shifts by delta when the maxima move; differences are taken of
        # logits shifted by their own row maxima, so that a peaked row's large logits cancel exactly.
        delta = (m_t_new - m_t) - (m_s_new - m_s)
        acc = (acc - delta * l_t) * alpha
        a = z_t - m_t_new[:, None]
        p = tl.exp(a)
        acc += tl.sum(p * (a - (z_s - m_s_new[:, None])), 1)
        l_t = l_t * alpha + tl.sum(p, 1)
        l_s = l_s * tl.exp(m_s - m_s_new) + tl.sum(tl.exp(z_s - m_s_new[:, None]), 1)
        m_t, m_s = m_t_new, m_s_new
    log_l_t, log_l_s = tl.log(l_t), tl.log(l_s)
    out = pid_bh * seq + rows
    tl.store(KL + out, acc / l_t - log_l_t + log_l_s, mask=row_ok)
    # The backward's probabilities are e^((z - m) - log l): kept apart, a peaked row's p stays exact.
    tl.store(STATS + 4 * out, m_t, mask=row_ok)
    tl.store(STATS + 4 * out + 1, log_l_t, mask=row_ok)
    tl.store(STATS + 4 * out + 2, m_s, mask=row_ok)
    tl.store(STATS + 4 * out + 3, log_l_s, mask=row_ok)


@triton.jit
def _grad_block(tl_ptr, tr_ptr, sl_ptr, sr_ptr, MASK, STATS, GRAD, b, pid_bh, rows, keys, row_ok, key_ok,
                cols_t, cols_s, seq, dt, ds, stride_tls, stride_trs, stride_sls, stride_srs, scale_t, scale_s,
                IEEE: tl.constexpr):
    """g_t (p_s - p_t) * scale_s for a (rows, keys) block, recomputed from the saved row statistics."""
    real = tl.load(MASK + b * seq + keys, mask=key_ok, other=0) != 0
    z_t = _logits(tl_ptr, tr_ptr, rows, keys, row_ok, key_ok, cols_t, dt, stride_tls, stride_trs, scale_t, IEEE)
    z_s = _logits(sl_ptr, sr_ptr, rows, keys, row_ok, key_ok, cols_s, ds, stride_sls, stride_srs, scale_s, IEEE)
    z_t = tl.where(real[None, :], z_t, NEG)
    z_s = tl.where(real[None, :], z_s, NEG)
    index = pid_bh * seq + rows
    m_t = tl.load(STATS + 4 * index, mask=row_ok, other=0.0)
    log_l_t = tl.load(STATS + 4 * index + 1, mask=row_ok, other=0.0)
    m_s = tl.load(STATS + 4 * index + 2, mask=row_ok, other=0.0)
    log_l_s = tl.load(STATS + 4 * index + 3, mask=row_ok, other=0.0)
    g = tl.load(GRAD + index, mask=row_ok, other=0.0)
    p_t = tl.exp((z_t - m_t[:, None]) - log_l_t[:, None])
    p_s = tl.exp((z_s - m_s[:, None]) - log_l_s[:, None])
    return g[:, None] * (p_s - p_t) * scale_s


@triton.jit
def _grad_kernel(TL, TR, SL, SR, MASK, STATS, GRAD, OUT,
                 stride_tl, stride_tr, stride_sl, stride_sr, stride_out,
                 stride_tls, stride_trs, stride_sls, stride_srs, stride_outs,
                 seq, heads, dt, ds, scale_t, scale_s,
                 BLOCK_OWN: tl.constexpr, BLOCK_OTHER: tl.constexpr, BLOCK_DT: tl.constexpr,
                 BLOCK_DS: tl.constexpr, IEEE: tl.constexpr, LEFT: tl.constexpr):
    """LEFT: the student's left-input gradient, a program per block of query rows looping over key blocks,
    sum_j g (p_s - p_t) right_j / sqrt(d); else the right-input gradient, a program per block of keys looping
    over query-row blocks, the transpose times left."""
    b, h, own, own_ok, tl_ptr, tr_ptr, sl_ptr, sr_ptr = _program_inputs(
        TL, TR, SL, SR, stride_tl, stride_tr, stride_sl, stride_sr, seq, heads, dt, ds, BLOCK_OWN)
    pid_bh, cols_t, cols_s = tl.program_id(1), tl.arange(0, BLOCK_DT), tl.arange(0, BLOCK_DS)
    if LEFT:
        x_ptr, x_stride = sr_ptr, stride_srs
    else:
        x_ptr, x_stride = sl_ptr, stride_sls
    acc = tl.zeros([BLOCK_OWN, BLOCK_DS], tl.float32)
    for start in range(0, seq, BLOCK_OTHER):
        other = start + tl.arange(0, BLOCK_OTHER)
        other_ok = other < seq
        x = tl.load(x_ptr + other[:, None] * x_stride + cols_s[None, :],
                    mask=other_ok[:, None] & (cols_s[None, :] < ds), other=0.0).to(tl.float32)
        if LEFT:
            dz = _grad_block(tl_ptr, tr_ptr, sl_ptr, sr_ptr, MASK, STATS, GRAD, b, pid_bh, own, other, own_ok,
                             other_ok, cols_t, cols_s, seq, dt, ds, stride_tls, stride_trs, stride_sls, stride_srs,
                             scale_t, scale_s, IEEE)
            acc += _dot(dz, x, IEEE)
        else:
            dz = _grad_block(tl_ptr, tr_ptr, sl_ptr, sr_ptr, MASK, STATS, GRAD, b, pid_bh, other, own, other_ok,
                             own_ok, cols_t, cols_s, seq, dt, ds, stride_tls, stride_trs, stride_sls, stride_srs,
                             scale_t, scale_s, IEEE)
            acc += _dot(tl.trans(dz), x, IEEE)
    tl.store(OUT + b * stride_out + h * ds + own[:, None] * stride_outs + cols_s[None, :], acc,
             mask=own_ok[:, None] & (cols_s[None, :] < ds))


def _block_width(d: int) -> int:
    """Head sizes padded to a power of two of at least 16, the smallest a tl.dot takes (8 -> 16, 48 -> 64)."""
    return max(16, triton.next_power_of_2(d))


# (rows or own block, keys or other block, warps) per launch, by input precision and head size (the wider of
# teacher and student). Chosen from the compiled Hopper code (benchmarks/triton_compile_check.py; the table is
# in docs/performance.md): the bf16 variants, what training runs, use no local memory at all. The float32
# (IEEE) products keep more in registers and spill some at wide heads; that path is for exactness checks.
LAUNCH = {  # kernel: {(float32, head size up to): blocks}
    "forward": {(False, 128): (64, 64, 4), (True, 32): (64, 64, 4), (True, 128): (32, 32, 4)},
    "left": {(False, 64): (64, 64, 4), (False, 128): (64, 32, 4), (True, 32): (64, 32, 8), (True, 128): (32, 32, 4)},
    "right": {(False, 32): (64, 64, 4), (False, 64): (32, 64, 4), (False, 128): (32, 32, 4), (True, 128): (32, 32, 4)},
}


def covers(head: int, ieee: bool) -> bool:
    """Whether every launch of the kernels has blocks for this head size and input precision."""
    return all(any(fp32 == ieee and head <= up_to for fp32, up_to in table) for table in LAUNCH.values())


def _launch(kernel: str, ieee: bool, head: int, device: torch.device) -> tuple[int, int, int]:
    """The blocks and warps of one launch; 16 x 16 under the interpreter (CPU tensors), so that small test
    shapes cross block edges. A head size the table does not cover is a one-line error (`relation_kl` with
    kernel auto takes the torch path for those instead)."""
    if device.type != "cuda":
        return 16, 16, 4
    config = next((config for (fp32, up_to), config in LAUNCH[kernel].items() if fp32 == ieee and head <= up_to),
                  None)
    if config is None:
        widest = max(up_to for fp32, up_to in LAUNCH[kernel] if fp32 == ieee)
        raise MiniLMError(f"the Triton relation kernel takes relation heads of up to {widest} dimensions, not {head}; "
                          "use more --relation-heads, or --relation-kernel torch")
    return config


def _contiguous_rows(x: torch.Tensor) -> torch.Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()


class TritonRelationKL(torch.autograd.Function):
    """Per-row relation KL, (batch, heads, seq) float32; gradients for the student's left and right inputs.

    forward(t_left, t_right, s_left, s_right, attention_mask, heads): teacher (batch, seq, teacher_hidden),
    student (batch, seq, student_hidden), attention_mask (batch, seq). Teacher and student may differ in
    width and dtype; left and right of one side share a dtype.
    """

    @staticmethod
    def forward(ctx, t_left, t_right, s_left, s_right, attention_mask, heads: int):
        t_left, t_right, s_left, s_right = (_contiguous_rows(x) for x in (t_left, t_right, s_left, s_right))
        batch, seq, t_hidden = t_left.shape
        s_hidden = s_left.shape[-1]
        dt, ds = t_hidden // heads, s_hidden // heads
        mask = attention_mask.to(torch.int32).contiguous()
        kl = torch.empty(batch, heads, seq, device=s_left.device, dtype=torch.float32)
        stats = torch.empty(batch, heads, seq, 4, device=s_left.device, dtype=torch.float32)  # m_t, log l_t, m_s, log l_s
        ieee = s_left.dtype == torch.float32
        block_m, block_n, warps = _launch("forward", ieee, max(dt, ds), s_left.device)
        grid = (triton.cdiv(seq, block_m), batch * heads)
        _forward_kernel[grid](t_left, t_right, s_left, s_right, mask, kl, stats,
                              t_left.stride(0), t_right.stride(0), s_left.stride(0), s_right.stride(0),
                              t_left.stride(1), t_right.stride(1), s_left.stride(1), s_right.stride(1),
                              seq, heads, dt, ds, dt ** -0.5, ds ** -0.5,
                              BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_DT=_block_width(dt), BLOCK_DS=_block_width(ds),
                              IEEE=ieee, num_warps=warps)
        ctx.save_for_backward(t_left, t_right, s_left, s_right, mask, stats)
        ctx.heads, ctx.ieee = heads, ieee
        return kl

    @staticmethod
    def backward(ctx, grad_kl):
        t_left, t_right, s_left, s_right, mask, stats = ctx.saved_tensors
        heads = ctx.heads
        batch, seq, t_hidden = t_left.shape
        s_hidden = s_left.shape[-1]
        dt, ds = t_hidden // heads, s_hidden // heads
        grad_kl = grad_kl.to(torch.float32).contiguous()
        common = (seq, heads, dt, ds, dt ** -0.5, ds ** -0.5)
        strides = (t_left.stride(0), t_right.stride(0), s_left.stride(0), s_right.stride(0))
        row_strides = (t_left.stride(1), t_right.stride(1), s_left.stride(1), s_right.stride(1))

        def gradient(like, left: bool):
            out = torch.empty(batch, seq, s_hidden, device=like.device, dtype=torch.float32)
            own, other, warps = _launch("left" if left else "right", ctx.ieee, max(dt, ds), like.device)
            _grad_kernel[(triton.cdiv(seq, own), batch * heads)](
                t_left, t_right, s_left, s_right, mask, stats, grad_kl, out, *strides, out.stride(0),
                *row_strides, out.stride(1), *common, BLOCK_OWN=own, BLOCK_OTHER=other,
                BLOCK_DT=_block_width(dt), BLOCK_DS=_block_width(ds), IEEE=ctx.ieee, LEFT=left, num_warps=warps)
            return out.to(like.dtype)

        grad_left = gradient(s_left, True) if ctx.needs_input_grad[2] else None
        grad_right = gradient(s_right, False) if ctx.needs_input_grad[3] else None
        return None, None, grad_left, grad_right, None, None
