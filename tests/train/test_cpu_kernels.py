"""The CPU training kernels: dropout from 16-bit draws, and the attention that applies it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers.models import tiny_bert
from torch import nn

from minilm.train import cpu_kernels as kernels
from minilm.train.cpu_kernels import (ATTENTION_NAME, FastDropout, cpu_attention, fast_dropout, keep_mask,
                                      use_cpu_kernels)


def test_dropout_is_the_identity_when_off():
    x = torch.randn(4, 5)
    assert fast_dropout(x, 0.1, training=False) is x
    assert fast_dropout(x, 0.0) is x


def test_dropout_rate_scale_and_mean():
    p = 0.1
    x = torch.rand(1_000_000) + 0.5  # no zeros, so a zero in the output is a drop
    y = fast_dropout(x, p)
    dropped = y == 0
    threshold = round(p * 65536)
    # 1e6 Bernoulli(0.1) draws: standard deviation of the rate is 3e-4; 2e-3 is over 6 of them.
    assert dropped.float().mean().item() == pytest.approx(threshold / 65536, abs=2e-3)
    scale = 1 / (1 - threshold / 65536)
    torch.testing.assert_close(y[~dropped], x[~dropped] * scale)
    assert y.mean().item() == pytest.approx(x.mean().item(), rel=5e-3)


def test_dropout_draws_every_bit_uniformly():
    # All four int16 lanes of each int64 draw must be uniform (a draw over [0, 2^63) would bias one lane).
    keep, _ = keep_mask(torch.Size([4, 250_000]), 0.5, torch.device("cpu"))
    lanes = keep.view(-1, 4).float().mean(0)
    torch.testing.assert_close(lanes, torch.full((4,), 0.5), atol=5e-3, rtol=0)


def test_dropout_backward_uses_the_forward_mask():
    x = (torch.rand(64, 33) + 0.5).requires_grad_()
    y = fast_dropout(x, 0.3)
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, y.detach() / x.detach())  # scale where kept, 0 where dropped


def test_dropout_follows_the_seed():
    torch.manual_seed(3)
    a = fast_dropout(torch.ones(1000), 0.2)
    torch.manual_seed(3)
    b = fast_dropout(torch.ones(1000), 0.2)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="dropout probability"):
        fast_dropout(torch.ones(3), 1.0)


@pytest.mark.parametrize("n", [70_001, 1 << 17])  # the worker-thread path; one size not a multiple of 8
def test_mask_does_not_depend_on_the_worker_thread(monkeypatch, n):
    torch.manual_seed(5)
    threaded, _ = keep_mask(torch.Size([n]), 0.5, torch.device("cpu"))
    monkeypatch.setattr(kernels, "_PARALLEL_FROM", 1 << 40)  # both streams on this thread
    torch.manual_seed(5)
    serial, _ = keep_mask(torch.Size([n]), 0.5, torch.device("cpu"))
    assert threaded.shape == (n,) and torch.equal(threaded, serial)
    half = n // 2
    assert not torch.equal(threaded[:half // 2], threaded[half:half + half // 2])  # two different streams
    assert not torch.equal(keep_mask(torch.Size([n]), 0.5, torch.device("cpu"))[0], threaded)  # next draw moves on


def test_bf16_dropout_keeps_dtype():
    x = torch.randn(8, 16, dtype=torch.bfloat16)
    assert fast_dropout(x, 0.1).dtype == torch.bfloat16


@pytest.mark.parametrize("padded", [False, True])
def test_attention_math_path_equals_sdpa_without_the_drop(monkeypatch, padded):
    monkeypatch.setattr(kernels, "fast_dropout", lambda x, p, training=True: x)
    q, k, v = (torch.randn(2, 4, 7, 8) for _ in range(3))
    mask = None
    if padded:
        mask = torch.ones(2, 1, 7, 7, dtype=torch.bool)
        mask[1, :, :, 4:] = False
    module = nn.Module()
    out, _ = cpu_attention(module, q, k, v, mask, dropout=0.1, scaling=0.3)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3).transpose(1, 2)
    assert out.shape == (2, 7, 4, 8)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("padded", [False, True])
def test_bf16_inference_math_path_equals_sdpa(padded):
    q, k, v = (torch.randn(2, 4, 7, 8, dtype=torch.bfloat16) for _ in range(3))
    mask = None
    if padded:
        mask = torch.ones(2, 1, 7, 7, dtype=torch.bool)
        mask[1, :, :, 4:] = False
    with torch.inference_mode():
        out, _ = cpu_attention(nn.Module(), q, k, v, mask, dropout=0.0)
        expected = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask).transpose(1, 2)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, atol=2e-2, rtol=2e-2)  # bf16 rounding of the probabilities


def test_use_cpu_kernels_keeps_the_model_function_and_what_is_saved(tmp_path):
    from transformers import AutoModel

    reference = tiny_bert(attn="sdpa").eval()
    model = use_cpu_kernels(tiny_bert(attn="sdpa"))
    assert not any(type(m) is nn.Dropout for m in model.modules())
    assert any(isinstance(m, FastDropout) for m in model.modules())
    assert model.config._attn_implementation == ATTENTION_NAME
    ids = torch.randint(1000, 2000, (2, 9))
    mask = torch.tensor([[1] * 9, [1] * 5 + [0] * 4])
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids, attention_mask=mask).last_hidden_state,
                                   reference(input_ids=ids, attention_mask=mask).last_hidden_state)
    model.train()
    out = model(input_ids=ids, attention_mask=mask).last_hidden_state
    out.sum().backward()
    assert torch.isfinite(out).all() and model.embeddings.word_embeddings.weight.grad is not None
    model.save_pretrained(tmp_path)
    assert AutoModel.from_pretrained(tmp_path).config._attn_implementation != ATTENTION_NAME


def test_swapping_a_model_in_eval_mode_keeps_dropout_off():
    # The frozen teacher is swapped while in eval mode; a swapped-in dropout must not switch itself on.
    reference = tiny_bert(attn="sdpa").eval()
    model = use_cpu_kernels(tiny_bert(attn="sdpa").eval())
    assert not any(m.training for m in model.modules())
    ids = torch.randint(1000, 2000, (2, 9))
    with torch.no_grad():
        first = model(input_ids=ids).last_hidden_state
        torch.testing.assert_close(model(input_ids=ids).last_hidden_state, first, atol=0, rtol=0)
        torch.testing.assert_close(first, reference(input_ids=ids).last_hidden_state)


def test_a_forked_child_draws_masks_with_its_own_worker():
    import multiprocessing as mp

    keep_mask(torch.Size([1 << 17]), 0.1, torch.device("cpu"))  # the parent's worker thread exists now
    with mp.get_context("fork").Pool(1) as pool:  # the child would hang on the parent's (absent) thread
        shape = pool.apply_async(_child_mask_shape).get(timeout=60)
    assert shape == (1 << 17,)


def _child_mask_shape():
    return tuple(keep_mask(torch.Size([1 << 17]), 0.1, torch.device("cpu"))[0].shape)
