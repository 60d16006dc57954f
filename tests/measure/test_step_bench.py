"""The benchmark's pieces: the naive reference step agrees with ours, FLOPs counted as documented."""

from __future__ import annotations

import pytest
import torch
from helpers.models import tiny_bert

from minilm.measure.naive_step import naive_losses


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_naive_step_agrees_with_ours_for_both_versions_on_a_padded_batch(version):
    from minilm.config.sections import Objective, Relations
    from minilm.objectives import build_objective, distill_losses

    teacher, student = tiny_bert(seed=1, init_range=0.2).eval(), tiny_bert(layers=1, seed=2, init_range=0.2).eval()
    batch = {"input_ids": torch.randint(1000, 2000, (3, 9)),
             "attention_mask": torch.tensor([[1] * 9, [1] * 5 + [0] * 4, [1] * 3 + [0] * 6])}
    section = Objective(objective="minilmv2" if version == "v2" else "minilm")
    with torch.no_grad():
        naive = naive_losses(teacher, student, batch, version, relation_heads=8)
        objective = build_objective(section, teacher, student, relations=Relations(relation_heads=8))
        fast = distill_losses(objective, objective.student_view, batch)
    assert set(naive) == set(fast) == ({"attention", "value"} if version == "v1" else {"qq", "kk", "vv"})
    for name in naive:
        assert fast[name].item() == pytest.approx(naive[name].item(), rel=1e-4)


def test_merge_rounds_pools_steps_across_rounds():
    from minilm.measure.step_bench import merge_rounds

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
    from minilm.commands.bench import step_setup
    from minilm.config.commands import BenchConfig
    from minilm.measure.step_bench import run_isolated
    from minilm.train.device_policy import native_bf16

    if precision == "bf16" and not native_bf16(torch.device("cpu"))[0]:
        pytest.skip("this CPU has no native bf16: bench leaves bf16 rows out here")

    row = run_isolated(step_setup(BenchConfig(batch_size=2, steps=1)), dict(mode=mode, precision=precision, seq=16, device="cpu", allocator="kept",
                                  version=version))
    assert (row["mode"], row["precision"], row["batch_shape"], row["version"]) == (mode, precision, [2, 16], version)
    assert len(row["step_s"]) == 1 and row["step_s"][0] > 0
    assert row["tokens_per_s"] == pytest.approx(row["step_tokens"][0] / row["step_s"][0])
    assert row["flops"] > 0 and row["peak_mem_mb"] >= 0 and row["padding"] == 0
    assert 0 < row["loss_fraction"] < 1 and len(row["loss_s"]) == 1


def test_bert_base_preset_builds_the_papers_shapes_without_weights():
    from minilm.commands.bench import step_setup, versions_of
    from minilm.config.commands import BenchConfig
    from minilm.measure.step_bench import bench_models, plan_rows
    from minilm.models.students import count_parameters

    cfg = BenchConfig(preset="bert-base")
    setup = step_setup(cfg)
    teacher, student = bench_models(setup, "sdpa", torch.device("cpu"))
    t, s = teacher.config, student.config
    assert (t.num_hidden_layers, t.hidden_size, t.num_attention_heads, t.intermediate_size, t.vocab_size,
            t.max_position_embeddings) == (12, 768, 12, 3072, 30522, 512)
    assert (s.num_hidden_layers, s.hidden_size) == (6, 768)
    assert 109e6 < count_parameters(teacher) < 110e6 and 66e6 < count_parameters(student) < 68e6
    groups = plan_rows(setup, versions_of(cfg), cfg.seq_lengths, torch.device("cuda"), ["fp32", "bf16"])  # v1, v2 at 128 and 512; no SST-2 for a preset
    assert [(g[0]["version"], g[0]["seq"]) for g in groups] == [("v1", 128), ("v1", 512), ("v2", 128), ("v2", 512)]
    assert all([r["mode"] for r in g] == ["naive", "fast", "fast"] for g in groups)
