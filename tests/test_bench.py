"""The benchmark's pieces: the naive reference step agrees with ours, FLOPs counted as documented."""

from __future__ import annotations

import mmap
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import tiny_bert
from minilm.bench import format_table
from minilm.measure import PeakMemory, fast_step_flops
from minilm.naive import naive_losses
from minilm.losses import V1_RELATIONS, attention_relation_losses
from minilm.relations import truncated_qkv


def test_naive_step_loss_equals_fast_loss_in_float32():
    teacher, student = tiny_bert(seed=1, init_range=0.2).eval(), tiny_bert(layers=1, seed=2, init_range=0.2).eval()
    ids = torch.randint(1000, 2000, (3, 9))
    mask = torch.tensor([[1] * 9, [1] * 5 + [0] * 4, [1] * 3 + [0] * 6])
    with torch.no_grad():
        naive = naive_losses(teacher, student, {"input_ids": ids, "attention_mask": mask})
        fast = attention_relation_losses(truncated_qkv(teacher, ids, mask), truncated_qkv(student, ids, mask), mask,
                                         V1_RELATIONS, 4)
    for name in ("attention", "value"):
        assert fast[name].item() == pytest.approx(naive[name].item(), rel=1e-4)


def test_fast_step_flops_by_hand():
    cfg = SimpleNamespace(num_hidden_layers=2, hidden_size=4, intermediate_size=8)
    # seq 2: block = 8*2*16 + 4*4*4 + 4*2*4*8 = 256 + 64 + 256 = 576; qkv = 6*2*16 = 192.
    # teacher = 576 + 192 = 768; student the same, x3; relations 2 * 2*4*(4 + 12) = 256.
    assert fast_step_flops(cfg, cfg, batch=1, seq=2) == 768 + 3 * 768 + 256
    assert fast_step_flops(cfg, cfg, batch=5, seq=2) == 5 * (768 + 3 * 768 + 256)


def _touch_mapping(n_bytes: int) -> None:
    """Make n_bytes resident and release them: an anonymous mapping outside malloc, so that the resident
    set grows whatever the allocator keeps from earlier tests (`keep_freed_memory` is process-wide)."""
    mapping = mmap.mmap(-1, n_bytes)
    pages = np.frombuffer(mapping, dtype=np.uint8)
    pages[:] = 1
    del pages
    mapping.close()


@pytest.mark.parametrize("high_water_mark", [True, False])
def test_peak_memory_sees_a_brief_allocation(monkeypatch, high_water_mark):
    if not high_water_mark:  # the sampling thread, used where /proc/self/clear_refs cannot be written
        monkeypatch.setattr(PeakMemory, "_reset_high_water_mark", staticmethod(lambda: False))
    with PeakMemory(torch.device("cpu")) as first:
        _touch_mapping(256 * 2 ** 20)
        if not high_water_mark:
            time.sleep(0.05)  # sampling needs the peak to last; the kernel's high-water mark does not
    assert (first.thread is None) == high_water_mark
    assert 240 * 2 ** 20 < first.used < 320 * 2 ** 20
    with PeakMemory(torch.device("cpu")) as second:  # the first peak must not carry over
        _touch_mapping(32 * 2 ** 20)
        time.sleep(0.05)
    assert 24 * 2 ** 20 < second.used < 96 * 2 ** 20


def test_format_table_compares_with_the_naive_row():
    row = dict(batch_shape=[32, 128], peak_fraction=0.1, row_peak_tflops=0.4, version="v1")
    result = {"steps": [dict(row, mode="naive", precision="fp32", seq=128, tokens_per_s=80.0, peak_mem_mb=500.0,
                             allocator="default", loss_fraction=0.5),
                        dict(row, mode="naive", precision="fp32", seq=128, tokens_per_s=100.0, peak_mem_mb=400.0,
                             allocator="kept", loss_fraction=0.4),
                        dict(row, mode="fast", precision="bf16", seq=128, tokens_per_s=300.0, peak_mem_mb=100.0,
                             allocator="kept", loss_fraction=0.05),
                        dict(row, mode="naive", precision="fp32", seq=128, tokens_per_s=50.0, peak_mem_mb=800.0,
                             allocator="kept", loss_fraction=0.6, version="v2"),
                        dict(row, mode="fast", precision="bf16", seq=128, tokens_per_s=200.0, peak_mem_mb=80.0,
                             allocator="kept", loss_fraction=0.08, version="v2")],
              "inference": {"teacher": {"examples_per_s": 10.0, "latency_ms_b1": 5.0},
                            "student": {"examples_per_s": 25.0, "latency_ms_b1": 2.0}, "speedup": 2.5},
              "agreement": {"v1": {"fp32": {"attention": {"rel_diff": 1e-7}},
                                   "bf16": {"attention": {"rel_diff": 2e-2}}}}}
    text = format_table(result)
    # Ratios are against the naive row of the same version with the same allocator setting.
    assert "| 32x128 | v1 | fast | bf16 | kept | 300 | 3.00x | 100 | 0.25x | 5.0% | 10.0% | 0.40 |" in text
    assert "| 32x128 | v1 | naive | fp32 | default | 80 | 0.80x | 500 | 1.25x | 50.0% | 10.0% | 0.40 |" in text
    assert "| 32x128 | v2 | fast | bf16 | kept | 200 | 4.00x | 80 | 0.10x | 8.0% |" in text and "2.50x" in text
    assert "v1: fast (fp32) vs naive (fp32) loss, same batch and weights: attention rel diff 1.00e-07 -> agree" in text
    assert "v1: fast (bf16) vs naive (fp32) loss, same batch and weights: attention rel diff 2.00e-02 -> DISAGREE" in text


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_naive_step_agrees_with_ours_for_both_versions_on_a_padded_batch(version):
    from minilm.config import Objective
    from minilm.objectives import build_objective, distill_losses

    teacher, student = tiny_bert(seed=1, init_range=0.2).eval(), tiny_bert(layers=1, seed=2, init_range=0.2).eval()
    batch = {"input_ids": torch.randint(1000, 2000, (3, 9)),
             "attention_mask": torch.tensor([[1] * 9, [1] * 5 + [0] * 4, [1] * 3 + [0] * 6])}
    section = Objective(objective="minilmv2" if version == "v2" else "minilm", relation_heads=8)
    with torch.no_grad():
        naive = naive_losses(teacher, student, batch, version, relation_heads=8)
        objective = build_objective(section, teacher, student)
        fast = distill_losses(objective, objective.student_view, batch, "fp32", "cpu")
    assert set(naive) == set(fast) == ({"attention", "value"} if version == "v1" else {"qq", "kk", "vv"})
    for name in naive:
        assert fast[name].item() == pytest.approx(naive[name].item(), rel=1e-4)


def test_merge_rounds_pools_steps_across_rounds():
    from minilm.bench import merge_rounds

    first = dict(mode="fast", tokens_per_s=100.0, step_s=[1.0, 2.0], step_tokens=[100, 100],
                 step_flops=[10.0, 10.0], peak_mem_mb=50.0, row_peak_tflops=1.0, loss_s=[0.5])
    second = dict(first, tokens_per_s=25.0, step_s=[4.0], step_tokens=[100], step_flops=[10.0], peak_mem_mb=70.0,
                  row_peak_tflops=2.0)
    row = merge_rounds([first, second])
    # Per-step rates 100, 50, 25 tokens/s: the median over all three steps, not over the two rounds' medians.
    assert row["tokens_per_s"] == 50.0 and row["rounds_tokens_per_s"] == [100.0, 25.0]
    assert row["tokens_per_s_mean"] == 300 / 7
    assert row["peak_mem_mb"] == 70.0 and row["rounds"] == 2 and row["step_s"] == [1.0, 2.0, 4.0]
    assert row["peak_fraction"] == 5.0 / 1e12 / 2.0  # median FLOP rate over the largest peak seen


@pytest.mark.parametrize("mode, precision, version", [("naive", "fp32", "v1"), ("fast", "bf16", "v2"),
                                                     ("fast", "fp32", "v1")])
def test_step_row_runs_in_its_own_process(mode, precision, version):
    """A whole bench row, end to end, on the packaged teacher: tiny batch, one timed step. bf16 rows only where
    this CPU multiplies bf16 natively: elsewhere they run tens of times slower (and bench leaves them out)."""
    from minilm.bench import _run_isolated
    from minilm.config import BenchConfig
    from minilm.policy import native_bf16

    if precision == "bf16" and not native_bf16(torch.device("cpu"))[0]:
        pytest.skip("this CPU has no native bf16: bench leaves bf16 rows out here")

    cfg = BenchConfig(batch_size=2, steps=1)
    row = _run_isolated(cfg, dict(mode=mode, precision=precision, seq=16, device="cpu", allocator="kept",
                                  version=version))
    assert (row["mode"], row["precision"], row["batch_shape"], row["version"]) == (mode, precision, [2, 16], version)
    assert len(row["step_s"]) == 1 and row["step_s"][0] > 0
    assert row["tokens_per_s"] == pytest.approx(row["step_tokens"][0] / row["step_s"][0])
    assert row["flops"] > 0 and row["peak_mem_mb"] >= 0 and row["padding"] == 0
    assert 0 < row["loss_fraction"] < 1 and len(row["loss_s"]) == 1


def test_bert_base_preset_builds_the_papers_shapes_without_weights():
    from minilm.bench import bench_models, plan_rows
    from minilm.config import BenchConfig
    from minilm.models import count_parameters

    cfg = BenchConfig(preset="bert-base")
    teacher, student = bench_models(cfg, "sdpa", torch.device("cpu"))
    t, s = teacher.config, student.config
    assert (t.num_hidden_layers, t.hidden_size, t.num_attention_heads, t.intermediate_size, t.vocab_size,
            t.max_position_embeddings) == (12, 768, 12, 3072, 30522, 512)
    assert (s.num_hidden_layers, s.hidden_size) == (6, 768)
    assert 109e6 < count_parameters(teacher) < 110e6 and 66e6 < count_parameters(student) < 68e6
    groups = plan_rows(cfg, torch.device("cuda"), ["fp32", "bf16"])  # v1, v2 at 128 and 512; no SST-2 for a preset
    assert [(g[0]["version"], g[0]["seq"]) for g in groups] == [("v1", 128), ("v1", 512), ("v2", 128), ("v2", 512)]
    assert all([r["mode"] for r in g] == ["naive", "fast", "fast"] for g in groups)


def test_bf16_rows_are_left_out_with_a_reason_where_the_cpu_lacks_native_bf16(monkeypatch):
    import minilm.bench as bench
    from minilm.config import BenchConfig

    monkeypatch.setattr(bench, "native_bf16", lambda device: (False, "Zen 3 has no AVX512-BF16 or AMX"))
    precisions, reason = bench.precisions_of(BenchConfig(), torch.device("cpu"))
    assert precisions == ["fp32"] and "bf16 rows left out: Zen 3 has no AVX512-BF16 or AMX" in reason
    assert bench.precisions_of(BenchConfig(precisions=["fp32", "bf16"]), torch.device("cpu")) == (["fp32", "bf16"], None)
    monkeypatch.setattr(bench, "native_bf16", lambda device: (True, "has AVX512-BF16"))
    assert bench.precisions_of(BenchConfig(), torch.device("cpu")) == (["fp32", "bf16"], None)
    groups = bench.plan_rows(BenchConfig(seq_lengths=[16]), torch.device("cpu"), ["fp32"])
    assert all(row["precision"] == "fp32" for group in groups for row in group)


def test_matmul_probe_sizes_itself_to_its_budget(monkeypatch):
    """A dtype the device only emulates is measured on a small product, not a fixed 2048^3 one."""
    import minilm.measure as measure

    sizes = []
    monkeypatch.setattr(measure, "_product_seconds", lambda n, dtype, device: sizes.append(n) or 10.0 * n / 256)
    assert measure.matmul_tflops(torch.float32, torch.device("cpu"), seconds=0.05) > 0
    assert sizes == [256]  # one probe: already slower than a twentieth of the budget
    sizes.clear()
    monkeypatch.setattr(measure, "_product_seconds", lambda n, dtype, device: sizes.append(n) or 0.0)
    measure.matmul_tflops(torch.float32, torch.device("cpu"), seconds=0.05)
    assert sizes == [256, 512, 1024]  # doubles up to the CPU's largest, 2048
