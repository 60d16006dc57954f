"""The benchmark's pieces: the naive reference step agrees with ours, FLOPs counted as documented."""

from __future__ import annotations

import torch

from minilm.commands.bench import format_table


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


def test_bf16_rows_follow_trainings_rule_and_are_left_out_with_a_reason(monkeypatch):
    import minilm.commands.bench as bench
    import minilm.train.device_policy as policy
    from minilm.config.commands import BenchConfig

    monkeypatch.setattr(policy, "native_bf16", lambda device: (False, "Zen 3 has no AVX512-BF16 or AMX"))
    precisions, reason = bench.precisions_of(BenchConfig(), torch.device("cpu"))
    assert precisions == ["fp32"] and "bf16 rows left out: Zen 3 has no AVX512-BF16 or AMX" in reason
    assert bench.precisions_of(BenchConfig(precisions=["fp32", "bf16"]), torch.device("cpu")) == (["fp32", "bf16"], None)
    monkeypatch.setattr(policy, "native_bf16", lambda device: (True, "X has AVX512-BF16"))
    monkeypatch.setattr(policy, "bf16_slowdown", lambda device, n=192, repeats=3: 0.5)  # bf16 twice as fast: rows
    assert bench.precisions_of(BenchConfig(), torch.device("cpu")) == (["fp32", "bf16"], None)
    monkeypatch.setattr(policy, "bf16_slowdown", lambda device, n=192, repeats=3: 2.0)  # the Intel Xeon's trap
    precisions, reason = bench.precisions_of(BenchConfig(), torch.device("cpu"))
    assert precisions == ["fp32"] and "2.0x slower than float32" in reason  # what training's auto decides too
    assert policy.resolve_precision("auto", torch.device("cpu"))[0] == "fp32"
