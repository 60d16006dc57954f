"""relation_kl and friends: hand-computed values, an independent float64 reference, and properties."""

from __future__ import annotations

import importlib
import math

import pytest
import torch
from helpers.references import plain_autograd_relation_kl, ragged, reference_relation_kl

from minilm.losses.chunked_kl import relation_kl


def test_hand_computed_single_head():
    # teacher rows: softmax([1, 0]) and softmax([0, 0]); student rows all uniform (zero vectors).
    tq = torch.tensor([[[1.0], [0.0]]])
    sq = torch.zeros(1, 2, 1)
    mask = torch.ones(1, 2)
    p = 1 / (1 + math.exp(-1))
    row0 = p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))
    expected = (row0 + 0.0) / (1 * 2)  # 1 head, |x| = 2
    assert relation_kl(tq, tq, sq, sq, mask, 1).item() == pytest.approx(expected, rel=1e-6)


def test_hand_computed_padding_key_excluded():
    # Same as above plus a padded third token whose huge values would dominate if it leaked in.
    tq = torch.tensor([[[1.0], [0.0], [50.0]]])
    sq = torch.tensor([[[0.0], [0.0], [-50.0]]])
    mask = torch.tensor([[1, 1, 0]])
    p = 1 / (1 + math.exp(-1))
    expected = (p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))) / 2
    assert relation_kl(tq, tq, sq, sq, mask, 1).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("heads,hidden_t,hidden_s", [(4, 24, 24), (12, 24, 36), (8, 32, 16), (3, 24, 12)])
def test_matches_float64_reference(heads, hidden_t, hidden_s):
    t, s, mask = ragged(hidden_t=hidden_t, hidden_s=hidden_s, seed=heads)
    for (a, b) in [(0, 1), (0, 0), (1, 1), (2, 2)]:  # Q-K (v1 attention), Q-Q, K-K, V-V
        got = relation_kl(t[a], t[b], s[a], s[b], mask, heads).item()
        want = reference_relation_kl(t[a], t[b], s[a], s[b], mask, heads)
        assert abs(got - want) / abs(want) < 1e-5


def test_zero_for_identical_teacher_and_student():
    t, _, mask = ragged()
    assert relation_kl(t[0], t[1], t[0], t[1], mask, 4).item() == pytest.approx(0.0, abs=1e-6)


def test_nonnegative_and_positive_when_different():
    t, s, mask = ragged(hidden_s=24)
    assert relation_kl(t[2], t[2], s[2], s[2], mask, 6).item() > 1e-3


def test_padding_invariance_value_and_gradient():
    t, s, mask = ragged(batch=2, seq=6, lengths=(6, 4), hidden_t=16, hidden_s=8)
    s = [x.requires_grad_() for x in s]
    base = relation_kl(t[0], t[1], s[0], s[1], mask, 4)
    g_base = torch.autograd.grad(base, s[0])[0]
    pad = 5
    garbage = lambda x: torch.cat([x, 100 * torch.randn(x.shape[0], pad, x.shape[2])], 1)  # noqa: E731
    s_pad = [garbage(x.detach()).requires_grad_() for x in s]
    mask_pad = torch.cat([mask, torch.zeros(2, pad, dtype=mask.dtype)], 1)
    padded = relation_kl(garbage(t[0]), garbage(t[1]), s_pad[0], s_pad[1], mask_pad, 4)
    g_pad = torch.autograd.grad(padded, s_pad[0])[0]
    assert padded.item() == pytest.approx(base.item(), rel=1e-6)
    torch.testing.assert_close(g_pad[:, :6], g_base, rtol=1e-5, atol=1e-7)
    assert torch.all(g_pad[:, 6:] == 0)


@pytest.mark.parametrize("budget", [None, 3 * 11 * 11, 3 * 4 * 11])  # all at once; one example; 4 rows
def test_chunks_match_unchunked_value_and_gradients(monkeypatch, budget):
    losses = importlib.import_module("minilm.losses.chunked_kl")

    t, s, mask = ragged(batch=3, seq=11, lengths=(11, 7, 3), hidden_t=24, hidden_s=12)
    results = []
    for chunk_budget in (1 << 30, budget):
        monkeypatch.setattr(losses, "CHUNK_ELEMENTS", chunk_budget or losses.CHUNK_ELEMENTS)
        sl, sr = (x.clone().requires_grad_() for x in (s[0], s[1]))
        loss = relation_kl(t[0], t[1], sl, sr, mask, 3)
        loss.backward()
        results.append((loss.detach(), sl.grad, sr.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)


def test_query_chunk_fixes_the_rows_and_backward_can_run_twice():
    t, s, mask = ragged(batch=3, seq=11, lengths=(11, 7, 3), hidden_t=24, hidden_s=12)
    sl = s[0].clone().requires_grad_()
    whole = relation_kl(t[0], t[1], sl, s[1], mask, 3)
    chunked = relation_kl(t[0], t[1], sl, s[1], mask, 3, query_chunk=4)
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-8)
    first = torch.autograd.grad(chunked, sl, retain_graph=True)[0]
    torch.testing.assert_close(torch.autograd.grad(chunked * 2, sl)[0], 2 * first)
    torch.testing.assert_close(first, torch.autograd.grad(whole, sl)[0], rtol=1e-6, atol=1e-8)


def test_no_gradient_wanted_gives_the_same_value():
    t, s, mask = ragged()
    with_grad = relation_kl(t[0], t[1], s[0].clone().requires_grad_(), s[1], mask, 4)
    with torch.no_grad():
        without = relation_kl(t[0], t[1], s[0], s[1], mask, 4)
    assert without.item() == with_grad.item()


def test_teacher_gets_no_gradient():
    t, s, mask = ragged()
    tq = t[0].clone().requires_grad_()
    sq = s[0].clone().requires_grad_()
    relation_kl(tq, tq, sq, sq, mask, 4).backward()
    assert tq.grad is None and sq.grad is not None


def test_bf16_inputs_are_scored_in_float32():
    t, s, mask = ragged()
    full = relation_kl(t[0], t[1], s[0], s[1], mask, 4)
    half = relation_kl(t[0].bfloat16(), t[1].bfloat16(), s[0].bfloat16(), s[1].bfloat16(), mask, 4)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), rel=5e-2)


def test_matches_hf_eager_attention_maps():
    """L_AT from Q/K equals the KL between the attention maps that HF's eager attention returns."""
    from helpers.models import tiny_bert

    from minilm.models.attention import layer_qkv

    # A wide initialisation makes the maps peaked, so the KL is far from float32 round-off.
    teacher, student = tiny_bert(seed=1, init_range=0.3).eval(), tiny_bert(layers=1, seed=2, init_range=0.3).eval()
    ids = torch.randint(1000, 2000, (3, 7))
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    with torch.no_grad():
        at_t = teacher(ids, attention_mask=mask, output_attentions=True).attentions[-1].double()
        at_s = student(ids, attention_mask=mask, output_attentions=True).attentions[-1].double()
        tq = layer_qkv(teacher, ids, mask)[0]
        sq = layer_qkv(student, ids, mask)[0]
        got = relation_kl(tq.query, tq.key, sq.query, sq.key, mask, 4).item()
    expected = 0.0
    for b in range(3):
        n = int(mask[b].sum())
        p, q = at_t[b, :, :n, :n], at_s[b, :, :n, :n]
        expected += float((p * (p.log() - q.log())).sum()) / (4 * n)
    assert expected > 0.1
    assert got == pytest.approx(expected / 3, rel=1e-4)


@pytest.mark.parametrize("chunk", [2, None])
@pytest.mark.parametrize("same_tensor", [False, True])
def test_hand_written_backward_matches_autograd(same_tensor, chunk):
    t, s, mask = ragged(hidden_t=24, hidden_s=12)
    sl = s[0].double().clone().requires_grad_()
    sr = sl if same_tensor else s[1].double().clone().requires_grad_()
    tr = t[0] if same_tensor else t[1]
    want = plain_autograd_relation_kl(t[0].double(), tr.double(), sl, sr, mask, 3)
    want_grads = torch.autograd.grad(want, [sl] if same_tensor else [sl, sr])
    sl2 = s[0].clone().requires_grad_()
    sr2 = sl2 if same_tensor else s[1].clone().requires_grad_()
    got = relation_kl(t[0], tr, sl2, sr2, mask, 3, query_chunk=chunk)
    got_grads = torch.autograd.grad(got, [sl2] if same_tensor else [sl2, sr2])
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    for g, w in zip(got_grads, want_grads):
        torch.testing.assert_close(g.double(), w, rtol=1e-4, atol=1e-8)


def test_auto_chunk_bounds_map_size():
    from minilm.losses.chunked_kl import CHUNK_ELEMENTS, auto_chunk

    examples, rows = auto_chunk(32, 12, 128)
    assert rows == 128 and 1 <= examples < 32 and examples * 12 * 128 * 128 <= CHUNK_ELEMENTS
    examples, rows = auto_chunk(32, 12, 512)  # one example's map is over budget: split its rows
    assert examples == 1 and 1 <= rows < 512 and 12 * rows * 512 <= CHUNK_ELEMENTS
    assert auto_chunk(32, 12, 512, rows=8) == (CHUNK_ELEMENTS // (12 * 8 * 512), 8)
    assert auto_chunk(2, 1, 4) == (2, 4)  # tiny maps: one chunk


def test_exp_through_exp2_matches_exp_and_underflows_to_zero():
    from minilm.losses.chunked_kl import _exp

    x = torch.linspace(-80.0, 20.0, 10001)
    # Rounding x log2 e costs up to |x| log2(e) 2^-24 relative (7e-6 at |x| = 80), plus exp2's own ulp.
    torch.testing.assert_close(_exp(x), torch.exp(x), rtol=8e-6, atol=0.0)
    small = torch.linspace(-10.0, 0.0, 1001)  # where nearly all of a softmax's mass lies
    torch.testing.assert_close(_exp(small.clone(), inplace=True), torch.exp(small), rtol=1.5e-6, atol=0.0)
    # A padded key's log-probability is about the most negative float: its probability must be exactly 0.
    assert _exp(torch.tensor([torch.finfo(torch.float32).min / 2])).item() == 0.0


def test_bf16_autocast_around_the_call_changes_nothing_on_a_padded_batch():
    """Under autocast the logits matmul would run in bf16, turning the padded keys' bias into -inf (NaN)."""
    t, s, mask = ragged()
    sl = s[0].clone().requires_grad_()
    full = relation_kl(t[0], t[1], sl, s[1], mask, 4)
    (g_full,) = torch.autograd.grad(full, sl)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = relation_kl(t[0], t[1], sl, s[1], mask, 4)
        (g_inside,) = torch.autograd.grad(inside, sl)
    assert inside.dtype == torch.float32 and inside.item() == full.item()
    assert torch.equal(g_inside, g_full)


def test_chunk_counts_at_the_papers_shapes_cpu_budget_and_cuda_budget():
    """docs/performance.md quotes these: Python-level chunk iterations per relation and step."""
    from minilm.losses.chunked_kl import CHUNK_ELEMENTS_CUDA, auto_chunk

    def chunks(batch, heads, seq, budget=None):
        examples, rows = auto_chunk(batch, heads, seq, budget=budget)
        return math.ceil(batch / examples) * math.ceil(seq / rows)

    assert chunks(128, 12, 512) == 896 and chunks(256, 48, 512) == 6400  # CPU cache-sized maps
    assert chunks(128, 12, 512, CHUNK_ELEMENTS_CUDA) == 13 and chunks(256, 48, 512, CHUNK_ELEMENTS_CUDA) == 128


@pytest.mark.parametrize("bias_batch", [3, 1])  # DeBERTa's per-example position terms; MPNet's one shared map
@pytest.mark.parametrize("chunk", [2, None])
def test_an_attention_bias_is_added_to_the_logits_and_gets_its_gradient(bias_batch, chunk):
    """R = softmax(left right^T / sqrt(d) + bias): value and the gradients of the student's query, key and bias
    against a float64 autograd reference, with the bias broadcast over the batch or not, chunked or not; a bias far
    below zero shuts keys out as padding does."""
    t, s, mask = ragged(hidden_t=24, hidden_s=12)
    g = torch.Generator().manual_seed(5)
    t_bias = torch.randn(bias_batch, 4, 9, 9, generator=g)
    s_bias = torch.randn(bias_batch, 4, 9, 9, generator=g).requires_grad_()
    sq, sk = s[0].clone().requires_grad_(), s[1].clone().requires_grad_()
    got = relation_kl(t[0], t[1], sq, sk, mask, 4, query_chunk=chunk, teacher_bias=t_bias, student_bias=s_bias)
    got.backward()

    def reference(tl, tr, sl, sr, tb, sb):
        total = 0.0
        for b in range(mask.shape[0]):
            n = int(mask[b].sum())
            dt, ds = tl.shape[-1] // 4, sl.shape[-1] // 4
            for a in range(4):
                zt = tl[b, :n, a * dt:(a + 1) * dt] @ tr[b, :n, a * dt:(a + 1) * dt].T / math.sqrt(dt)
                zs = sl[b, :n, a * ds:(a + 1) * ds] @ sr[b, :n, a * ds:(a + 1) * ds].T / math.sqrt(ds)
                zt = zt + tb[b % tb.shape[0], a, :n, :n]
                zs = zs + sb[b % sb.shape[0], a, :n, :n]
                p = torch.softmax(zt, -1)
                total = total + (p * (torch.log_softmax(zt, -1) - torch.log_softmax(zs, -1))).sum() / (4 * n)
        return total / mask.shape[0]

    ref_q, ref_k = s[0].double().requires_grad_(), s[1].double().requires_grad_()
    ref_bias = s_bias.detach().double().requires_grad_()
    want = reference(t[0].double(), t[1].double(), ref_q, ref_k, t_bias.double(), ref_bias)
    want.backward()
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    torch.testing.assert_close(sq.grad.double(), ref_q.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(sk.grad.double(), ref_k.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(s_bias.grad.double(), ref_bias.grad, rtol=1e-4, atol=1e-6)
    # A window: keys shut out by a large negative bias leave the softmax as padded keys do (0 exactly, no NaN).
    window = torch.zeros(1, 1, 9, 9).masked_fill_(torch.ones(9, 9).triu(3).bool(), -1e9)
    shut = relation_kl(t[0], t[1], s[0], s[1], mask, 4, teacher_bias=window, student_bias=window)
    assert math.isfinite(shut.item()) and shut.item() >= 0
