"""The device step policy: the kernels it swaps in must not change what the teacher computes."""

from __future__ import annotations

import copy
import platform

import pytest
import torch
from helpers.models import tiny_bert

from minilm.models.attention import RelationModel
from minilm.train.device_policy import apply_step_policy, keep_freed_memory


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_step_kernels_leave_the_teacher_deterministic_and_unchanged(precision):
    teacher = tiny_bert(attn="sdpa").eval().requires_grad_(False)
    reference = copy.deepcopy(teacher)
    student = tiny_bert(layers=1, attn="sdpa").train()
    apply_step_policy("cpu", precision, False, [student], teacher)
    ids = torch.randint(1000, 2000, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0

    def qkv(model):
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            return [x.float() for x in RelationModel(model)(ids, mask)[0][:3]]  # query, key, value

    first, again, expected = qkv(teacher), qkv(teacher), qkv(reference)
    for a, b, c in zip(first, again, expected):
        torch.testing.assert_close(a, b, atol=0, rtol=0)  # no dropout, no other randomness
        # bf16: the plain attention path rounds the probabilities to bf16 where SDPA's kernel keeps float32.
        tol = 3e-2 if precision == "bf16" else 1e-5
        torch.testing.assert_close(a, c, atol=tol, rtol=tol)
    assert student.training and not teacher.training


def no_native_bf16(monkeypatch):
    import minilm.train.device_policy as policy

    monkeypatch.setattr(policy, "cpu_features", lambda: {"name": "AMD EPYC (Zen 3)", "avx512_bf16": False,
                                                        "amx_bf16": False})


def test_auto_precision_follows_the_cpus_bf16_support(monkeypatch):
    import minilm.train.device_policy as policy

    cpu = torch.device("cpu")
    monkeypatch.setattr(policy, "cpu_features", lambda: {"name": "X", "avx512_bf16": True, "amx_bf16": False})
    monkeypatch.setattr(policy, "bf16_slowdown", lambda device, **kw: 0.5)  # bf16 products twice as fast
    precision, why = policy.resolve_precision("auto", cpu)
    assert precision == "bf16" and all(w in why for w in ("bf16", "auto", "X has AVX512-BF16", "2.0x faster"))
    monkeypatch.setattr(policy, "cpu_features", lambda: {"name": "X", "avx512_bf16": False, "amx_bf16": True})
    assert policy.resolve_precision("auto", cpu)[0] == "bf16"
    # The flag is there but the products are slower (an Intel Xeon of this project's): auto keeps float32.
    monkeypatch.setattr(policy, "bf16_slowdown", lambda device, **kw: 2.0)
    precision, why = policy.resolve_precision("auto", cpu)
    assert precision == "fp32" and all(w in why for w in ("fp32", "auto", "X has AMX-BF16", "2.0x slower"))
    monkeypatch.setattr(policy, "bf16_slowdown", lambda device, **kw: 0.95)  # faster, but by less than 10%
    precision, why = policy.resolve_precision("auto", cpu)
    assert precision == "fp32" and "only 1.05x as fast" in why
    no_native_bf16(monkeypatch)
    precision, why = policy.resolve_precision("auto", cpu)
    assert precision == "fp32" and "AMD EPYC (Zen 3) has no AVX512-BF16 or AMX" in why
    precision, why = policy.resolve_precision("fp32", cpu)
    assert precision == "fp32" and "as asked" in why
    # Asked for explicitly, bf16 runs, after one warning line naming the slowdown measured on the spot.
    monkeypatch.setattr(policy, "bf16_slowdown", lambda device, **kw: 29.0)
    precision, why = policy.resolve_precision("bf16", cpu)
    assert precision == "bf16" and why.startswith("warning: ") and "measured 29.0x slower than float32" in why


def test_a_default_distillation_records_float32_on_a_cpu_without_native_bf16(monkeypatch, tiny_teacher_dir, tmp_path):
    import json

    from helpers.cli import run_main

    no_native_bf16(monkeypatch)
    (tmp_path / "c.txt").write_text("the cat sat on the mat while the dog ran under the old tree\n" * 20)
    result = run_main("distill", "--teacher", tiny_teacher_dir, "--data", tmp_path / "c.txt", "--output-dir",
                      tmp_path / "run", "--cache-dir", tmp_path / "cache", "--student-layers", "1", "--student-hidden",
                      "32", "--student-heads", "4", "--batch-size", "4", "--max-length", "32", "--max-steps", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    first = result.stdout.splitlines()[0]  # the run's first line says which precision, and why
    assert all(w in first for w in ("precision fp32", "auto", "AMD EPYC (Zen 3) has no AVX512-BF16 or AMX"))
    assert json.loads((tmp_path / "run" / "run.json").read_text())["resolved"]["precision"] == "fp32"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_applies_on_glibc_and_allocation_still_works():
    assert keep_freed_memory() is True
    big = torch.ones(2 ** 23)  # 32 MiB: an mmap under glibc's defaults, heap memory now
    assert big.sum().item() == 2 ** 23
