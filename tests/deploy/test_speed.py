"""Inference timing side by side, on tiny inputs: PyTorch and exported graphs at each batch size, input length and
thread count; inputs of N tokens exactly; the Markdown table compares each model with the first in its setting."""

from __future__ import annotations

import pytest
from helpers.cli import ok, run_main

from minilm.deploy.speed import compare, format_inference, running_batches, special_tokens, usable_threads
from minilm.errors import MiniLMError

TEXTS = ["a fine film", "awful, just awful", "the cast is game and the script is sharp", "nothing works here",
         "I liked it more than I expected to", "a slow start, then a great second half"]


def test_inputs_of_n_tokens_are_cut_from_running_text(tokenizer):
    assert special_tokens(tokenizer) == ([tokenizer.cls_token_id], [tokenizer.sep_token_id])
    batches = running_batches(tokenizer, TEXTS, 8, 2, examples=3)
    assert [b["input_ids"].shape for b in batches] == [(2, 8), (1, 8)]
    assert all(b["attention_mask"].all() for b in batches)  # no padding
    assert batches[0]["input_ids"][0, 0] == tokenizer.cls_token_id and batches[0]["input_ids"][0, -1] == \
        tokenizer.sep_token_id
    with pytest.raises(MiniLMError, match="leaves no room"):
        running_batches(tokenizer, TEXTS, 2, 1, examples=1)


def test_pytorch_and_exported_graphs_are_timed_in_every_setting(tiny_teacher_dir, tmp_path):
    ok(run_main("export", "--model", tiny_teacher_dir, "--output-dir", tmp_path / "onnx"))
    models = [tiny_teacher_dir, str(tmp_path / "onnx")]
    rows = compare(models, TEXTS, [1, 4], lengths=[0, 12], threads=[1], rounds=1, single_examples=3)
    assert len(rows) == 2 * 2 * 2
    forms = {r["model"]: r["form"] for r in rows}
    assert forms == {tiny_teacher_dir: "pytorch float32", str(tmp_path / "onnx"): "onnx float32 fused"}
    long = [r for r in rows if r["length"] == 12]
    assert all(r["tokens_per_example"] == 12 and r["examples_per_s"] > 0 for r in long)
    assert {r["examples"] for r in rows if r["length"] == 0 and r["batch_size"] == 1} == {3}
    table = format_inference(rows)
    assert table.splitlines()[0] == f"Speed-up against {tiny_teacher_dir} in the same setting."
    assert table.splitlines()[2].startswith("| threads | input | batch | model | form | examples/s | speed-up |")
    assert "| 1 | 12 tokens | 4 | " in table and "| 1 | sentences | 1 | " in table
    assert table.count("| 1.00x |") >= 4  # the first model against itself, in each setting
    with pytest.raises(MiniLMError, match="inference_lengths 1000 exceeds"):
        compare(models, TEXTS, [1], lengths=[1000], threads=[1], rounds=1)


def test_thread_counts_beyond_the_machines_cpus_are_left_out_in_one_line():
    kept, note = usable_threads([1, 100000])
    assert kept == [1] and note.startswith("inference_threads 100000 left out: this machine has ")
    assert usable_threads([1]) == ([1], None)
    with pytest.raises(MiniLMError, match="this machine has"):
        usable_threads([100000])
