"""relation_kl and friends: hand-computed values, an independent float64 reference, and properties."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from minilm.errors import MiniLMError
from minilm.losses import attention_relation_losses, output_kl, relation_kl


def reference_relation_kl(tl, tr, sl, sr, mask, heads):
    """Per-example float64 loop: trim to the real length, softmax per head, KL per row, normalise."""
    total = 0.0
    for b in range(mask.shape[0]):
        n = int(mask[b].sum())
        per_example = 0.0
        for x_l, x_r, y_l, y_r in [(tl[b, :n], tr[b, :n], sl[b, :n], sr[b, :n])]:
            dt, ds = x_l.shape[-1] // heads, y_l.shape[-1] // heads
            for a in range(heads):
                t = (x_l[:, a * dt:(a + 1) * dt].double() @ x_r[:, a * dt:(a + 1) * dt].double().T) / math.sqrt(dt)
                s = (y_l[:, a * ds:(a + 1) * ds].double() @ y_r[:, a * ds:(a + 1) * ds].double().T) / math.sqrt(ds)
                p, q = torch.softmax(t, -1), torch.softmax(s, -1)
                per_example += float((p * (p.log() - q.log())).sum())
        total += per_example / (heads * n)
    return total / mask.shape[0]


def ragged(batch=3, seq=9, lengths=(9, 5, 2), hidden_t=24, hidden_s=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, seq, dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    t = [torch.randn(batch, seq, hidden_t, generator=g) for _ in range(3)]
    s = [torch.randn(batch, seq, hidden_s, generator=g) for _ in range(3)]
    return t, s, mask


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
    from minilm import losses

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


def test_v1_names_and_head_mismatch_error():
    from minilm.losses import V1_RELATIONS
    from minilm.objectives.minilm import check_heads

    t, s, mask = ragged(hidden_t=16, hidden_s=16)
    teacher = dict(query=t[0], key=t[1], value=t[2])
    student = dict(query=s[0], key=s[1], value=s[2])
    losses = attention_relation_losses(teacher, student, mask, V1_RELATIONS, 4)
    assert set(losses) == {"attention", "value"}
    assert losses["attention"].item() == pytest.approx(relation_kl(t[0], t[1], s[0], s[1], mask, 4).item())
    assert losses["value"].item() == pytest.approx(relation_kl(t[2], t[2], s[2], s[2], mask, 4).item())
    heads = lambda n, width=16: SimpleNamespace(num_attention_heads=n, hidden_size=width)  # noqa: E731
    with pytest.raises(MiniLMError, match="use --objective minilmv2"):
        check_heads("v1", heads(4), heads(2), 48)
    with pytest.raises(MiniLMError, match="relation_heads 3 does not divide the teacher hidden size 16"):
        check_heads("v2", heads(4), heads(2), 3)


def test_v2_relations_with_own_head_count():
    t, s, mask = ragged(hidden_t=24, hidden_s=16)
    teacher = dict(query=t[0], key=t[1], value=t[2])
    student = dict(query=s[0], key=s[1], value=s[2])
    from minilm.losses import V2_RELATIONS

    pairs = {r: V2_RELATIONS[r] for r in ("qq", "vv")}
    losses = attention_relation_losses(teacher, student, mask, pairs, 8)
    assert set(losses) == {"qq", "vv"}
    want = reference_relation_kl(t[0], t[0], s[0], s[0], mask, 8)
    assert losses["qq"].item() == pytest.approx(want, rel=1e-5)


def test_matches_hf_eager_attention_maps():
    """L_AT from Q/K equals the KL between the attention maps that HF's eager attention returns."""
    from conftest import tiny_bert
    from minilm.relations import truncated_qkv

    # A wide initialisation makes the maps peaked, so the KL is far from float32 round-off.
    teacher, student = tiny_bert(seed=1, init_range=0.3).eval(), tiny_bert(layers=1, seed=2, init_range=0.3).eval()
    ids = torch.randint(1000, 2000, (3, 7))
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    with torch.no_grad():
        at_t = teacher(ids, attention_mask=mask, output_attentions=True).attentions[-1].double()
        at_s = student(ids, attention_mask=mask, output_attentions=True).attentions[-1].double()
        tq = truncated_qkv(teacher, ids, mask)
        sq = truncated_qkv(student, ids, mask)
        got = relation_kl(tq.query, tq.key, sq.query, sq.key, mask, 4).item()
    expected = 0.0
    for b in range(3):
        n = int(mask[b].sum())
        p, q = at_t[b, :, :n, :n], at_s[b, :, :n, :n]
        expected += float((p * (p.log() - q.log())).sum()) / (4 * n)
    assert expected > 0.1
    assert got == pytest.approx(expected / 3, rel=1e-4)


def test_output_kl_hand_value_and_zero():
    t = torch.tensor([[2.0, 0.0]])
    s = torch.tensor([[0.0, 0.0]])
    p = 1 / (1 + math.exp(-2))
    expected = p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))
    assert output_kl(t, s).item() == pytest.approx(expected, rel=1e-6)
    # Temperature 2 softens both sides and scales by T^2.
    p2 = 1 / (1 + math.exp(-1))
    expected2 = 4 * (p2 * math.log(2 * p2) + (1 - p2) * math.log(2 * (1 - p2)))
    assert output_kl(t, s, temperature=2.0).item() == pytest.approx(expected2, rel=1e-6)
    assert output_kl(t, t).item() == pytest.approx(0.0, abs=1e-7)


def plain_autograd_relation_kl(tl, tr, sl, sr, mask, heads):
    """Differentiable float64 reference built from torch ops only (autograd does the backward)."""
    total = 0.0
    for b in range(mask.shape[0]):
        n = int(mask[b].sum())
        dt, ds = tl.shape[-1] // heads, sl.shape[-1] // heads
        for a in range(heads):
            t = tl[b, :n, a * dt:(a + 1) * dt] @ tr[b, :n, a * dt:(a + 1) * dt].T / math.sqrt(dt)
            s = sl[b, :n, a * ds:(a + 1) * ds] @ sr[b, :n, a * ds:(a + 1) * ds].T / math.sqrt(ds)
            p = torch.softmax(t, -1)
            total = total + (p * (torch.log_softmax(t, -1) - torch.log_softmax(s, -1))).sum() / (heads * n)
    return total / mask.shape[0]


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
    from minilm.losses import CHUNK_ELEMENTS, auto_chunk

    examples, rows = auto_chunk(32, 12, 128)
    assert rows == 128 and 1 <= examples < 32 and examples * 12 * 128 * 128 <= CHUNK_ELEMENTS
    examples, rows = auto_chunk(32, 12, 512)  # one example's map is over budget: split its rows
    assert examples == 1 and 1 <= rows < 512 and 12 * rows * 512 <= CHUNK_ELEMENTS
    assert auto_chunk(32, 12, 512, rows=8) == (CHUNK_ELEMENTS // (12 * 8 * 512), 8)
    assert auto_chunk(2, 1, 4) == (2, 4)  # tiny maps: one chunk


def test_exp_through_exp2_matches_exp_and_underflows_to_zero():
    from minilm.losses import _exp

    x = torch.linspace(-80.0, 20.0, 10001)
    # Rounding x log2 e costs up to |x| log2(e) 2^-24 relative (7e-6 at |x| = 80), plus exp2's own ulp.
    torch.testing.assert_close(_exp(x), torch.exp(x), rtol=8e-6, atol=0.0)
    small = torch.linspace(-10.0, 0.0, 1001)  # where nearly all of a softmax's mass lies
    torch.testing.assert_close(_exp(small.clone(), inplace=True), torch.exp(small), rtol=1.5e-6, atol=0.0)
    # A padded key's log-probability is about the most negative float: its probability must be exactly 0.
    assert _exp(torch.tensor([torch.finfo(torch.float32).min / 2])).item() == 0.0


def test_task_kinds_losses_by_hand():
    from minilm.tasks.kinds import CLASSIFICATION, REGRESSION

    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    # cross-entropy: -log softmax at the gold class, averaged: (log(1 + e^-2) + log(1 + e^-1)) / 2
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    assert CLASSIFICATION.loss(logits, {"labels": torch.tensor([0, 1])}).item() == pytest.approx(expected, rel=1e-6)
    values = torch.tensor([[1.0], [3.0]])
    assert REGRESSION.loss(values, {"labels": torch.tensor([0.0, 1.0])}).item() == pytest.approx((1 + 4) / 2)
    # L_OUT of a regressor: the squared distance to the teacher's value
    mask = torch.ones(2, 3)
    assert REGRESSION.output_loss(torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [1.0]]), mask, 1.0).item() == \
        pytest.approx((1 + 4) / 2)
    assert CLASSIFICATION.output_loss(logits, logits, mask, 2.0).item() == pytest.approx(0.0, abs=1e-7)


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
    from minilm.losses import CHUNK_ELEMENTS_CUDA, auto_chunk

    def chunks(batch, heads, seq, budget=None):
        examples, rows = auto_chunk(batch, heads, seq, budget=budget)
        return math.ceil(batch / examples) * math.ceil(seq / rows)

    assert chunks(128, 12, 512) == 896 and chunks(256, 48, 512) == 6400  # CPU cache-sized maps
    assert chunks(128, 12, 512, CHUNK_ELEMENTS_CUDA) == 13 and chunks(256, 48, 512, CHUNK_ELEMENTS_CUDA) == 128


def test_relation_kernel_flag_reaches_the_loss():
    from minilm.config import Objective
    from minilm.objectives import build_objective
    from conftest import tiny_bert

    objective = build_objective(Objective(relation_kernel="torch"), tiny_bert(), tiny_bert())
    assert objective.kernel == "torch"
    with pytest.raises(MiniLMError, match="relation_kernel must be one of auto, torch, triton"):
        Objective(relation_kernel="fast")


def test_span_loss_and_span_kl_by_hand_and_padding():
    from minilm.losses import span_kl, span_loss

    start = torch.tensor([[2.0, 0.0, 0.0]])
    end = torch.tensor([[0.0, 0.0, 1.0]])
    # cross-entropies: start at 0: log(e^2 + 2) - 2; end at 2: log(2 + e) - 1; the loss is their mean
    want = (math.log(math.exp(2) + 2) - 2 + math.log(2 + math.e) - 1) / 2
    assert span_loss(start, end, torch.tensor([0]), torch.tensor([2])).item() == pytest.approx(want, rel=1e-6)
    teacher = torch.stack([start, end], -1)  # (batch, seq, 2)
    student = torch.zeros(1, 3, 2)
    mask = torch.ones(1, 3)
    kl_start = sum(p * math.log(3 * p) for p in torch.softmax(start[0], 0).tolist())
    kl_end = sum(p * math.log(3 * p) for p in torch.softmax(end[0], 0).tolist())
    assert span_kl(teacher, student, mask).item() == pytest.approx((kl_start + kl_end) / 2, rel=1e-5)
    assert span_kl(teacher, teacher, mask).item() == pytest.approx(0.0, abs=1e-7)
    # padded tokens with wild scores change nothing
    padded_t = torch.cat([teacher, torch.full((1, 2, 2), 40.0)], 1)
    padded_s = torch.cat([student, torch.full((1, 2, 2), -40.0)], 1)
    padded_mask = torch.tensor([[1.0, 1, 1, 0, 0]])
    assert span_kl(padded_t, padded_s, padded_mask).item() == pytest.approx(span_kl(teacher, student, mask).item())
    assert span_kl(teacher, student, mask, temperature=2.0).item() > 0
