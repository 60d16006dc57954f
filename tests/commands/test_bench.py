"""The benchmark's pieces: the naive reference step agrees with ours, FLOPs counted as documented; the inference
mode times checkpoints and exports side by side."""

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


def test_inference_mode_times_checkpoints_and_exports_side_by_side(tiny_teacher_dir, tmp_path):
    """`--inference-models` on tiny inputs: a PyTorch checkpoint, an export directory and one graph in it, at each
    batch size, input length and thread count asked for; one readable Markdown table and the JSON."""
    import json

    from helpers.cli import ok, run_main

    task = tmp_path / "SST-2"
    task.mkdir()
    rows = ["a fine film", "awful , just awful", "the cast is game and the script is sharp", "nothing works here",
            "I liked it more than I expected to"]
    (task / "dev.tsv").write_text("sentence\tlabel\n" + "".join(f"{t}\t{i % 2}\n" for i, t in enumerate(rows)))
    ok(run_main("export", "--model", tiny_teacher_dir, "--output-dir", tmp_path / "onnx", "--quantize", "int8"))
    models = [tiny_teacher_dir, tmp_path / "onnx", tmp_path / "onnx" / "onnx" / "model.onnx"]
    result = ok(run_main("bench", "--inference-models", *models, "--sst2", task / "train.tsv",
                         "--inference-batch-sizes", "1", "2", "--inference-lengths", "0", "10",
                         "--inference-threads", "1", "--rounds", "1", "--output", tmp_path / "bench.json"))
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 3 * 2 * 2 and "| form |" in table[0]
    assert any("| onnx int8 fused (" in line for line in table) and any("| pytorch float32 |" in line for line in table)
    assert any("| 10 tokens | 2 |" in line for line in table)
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert len(saved["inference"]) == 12 and saved["int8_target"] in ("avx2", "avx512_vnni", "arm64")


def test_bench_speedup_prints_the_shape_table_and_the_choice(tiny_teacher_dir, tmp_path, monkeypatch):
    """`minilm bench --speedup N` prints every candidate shape and the one distill would take (graphs and timings
    stubbed here: 0.1 ms + layers x width x 1e-6 ms a call)."""
    import json

    from helpers.cli import ok, run_main

    from minilm.measure import shape_speed

    def fake_graph(model, directory, name):
        path = directory / f"{name}.json"
        path.write_text(json.dumps([model.config.num_hidden_layers, model.config.hidden_size]))
        return path

    def fake_time(paths, inputs):
        return {name: 1e-4 + 1e-6 * (lambda s: s[0] * s[1])(json.loads(p.read_text())) for name, p in paths.items()}

    monkeypatch.setattr(shape_speed, "int8_graph", fake_graph)
    monkeypatch.setattr(shape_speed, "static_graph", lambda config, shape, directory: fake_graph(
        type("Static", (), {"config": type("C", (), {"num_hidden_layers": 4, "hidden_size": 32})})(), directory,
        "static"))  # timed as slow as a 4x32 student: never the fastest here
    monkeypatch.setattr(shape_speed, "time_graphs", fake_time)
    result = ok(run_main("bench", "--teacher", tiny_teacher_dir, "--speedup", "1.2", "--output", tmp_path / "b.json"))
    # the 2x32 teacher takes 0.164 ms; 1x32 (0.132 ms, 1.24x) is the largest shape that reaches 1.2x
    assert "| shape | heads | FFN |" in result.stdout and "chosen: 1x32" in result.stdout
    saved = json.loads((tmp_path / "b.json").read_text())
    assert saved["chosen"]["layers"] == 1 and len(saved["rows"]) == 2 * 4 + 1  # 2 depths of widths 32 24 16 8, static
