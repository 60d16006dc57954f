"""`minilm export`: ONNX round trips for each head (float32 equal, int8 close with the same predictions), the
exported directory scored by `minilm evaluate`, and bad input answered in one line."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from clirun import run_main
from conftest import tiny_bert

pytestmark = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime", "onnxscript")),
                                reason="needs the deploy extra (onnx, onnxruntime, onnxscript)")


def tiny_with_head(head: str, directory, tokenizer):
    from transformers import BertConfig, BertForQuestionAnswering

    if head == "classification":
        model = tiny_bert(num_labels=3, attn="sdpa", init_range=0.2)
        model.config.id2label = {0: "neg", 1: "mixed", 2: "pos"}
        model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    elif head == "question-answering":
        torch.manual_seed(0)
        config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, max_position_embeddings=128, initializer_range=0.2)
        model = BertForQuestionAnswering(config)
    else:
        model = tiny_bert(attn="sdpa", init_range=0.2)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return model.eval()


@pytest.mark.parametrize("head", [None, "classification", "question-answering"])
def test_round_trip_for_each_head(head, tmp_path, tokenizer):
    from minilm.onnxmodel import OUTPUTS, OnnxModel

    model = tiny_with_head(head, tmp_path / "model", tokenizer)
    texts = ["a short one", "a rather longer sentence about nothing in particular at all", "mid length text"]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch)
    real = batch["attention_mask"].bool()
    for quantize, tolerance in (("none", 1e-4), ("int8", 0.5)):
        out = tmp_path / f"onnx_{quantize}"
        result = run_main("export", "--model", tmp_path / "model", "--output-dir", out, "--quantize", quantize)
        assert result.returncode == 0, result.stderr[-2000:]
        record = json.loads((out / "export.json").read_text())
        assert record["head"] == head and record["quantize"] == quantize and record["checks"]["max_abs_diff"] < tolerance
        assert {"config.json", "tokenizer.json", "model.onnx"} <= {p.name for p in out.iterdir()}  # self-contained
        got = OnnxModel(out)(**batch)
        for name in OUTPUTS[head]:
            want, have = getattr(expected, name), getattr(got, name)
            assert have.shape == want.shape
            keep = real if want.dim() >= 2 and want.shape[:2] == real.shape else torch.ones(want.shape[0], dtype=bool)
            assert float((have - want).abs()[keep].max()) < tolerance, (quantize, name)
        if head == "classification":
            assert torch.equal(got.logits.argmax(-1), expected.logits.argmax(-1))  # labels preserved
            assert json.loads((out / "config.json").read_text())["id2label"]["2"] == "pos"
        if quantize == "int8":
            assert (out / "model.onnx").stat().st_size < 0.5 * (tmp_path / "onnx_none" / "model.onnx").stat().st_size


def test_evaluate_scores_an_exported_directory_like_the_checkpoint(tiny_teacher_dir, tmp_path):
    from test_integration import sentiment_rows

    task = tmp_path / "SST-2"
    task.mkdir()
    for split, n in (("train", 48), ("dev", 24)):
        rows = [f"{t}\t{y}" for t, y in sentiment_rows(n, split == "dev")]
        (task / f"{split}.tsv").write_text("\n".join(["sentence\tlabel", *rows]) + "\n")
    common = ("--task", "sst2", "--task-dir", task)
    ft = run_main("finetune", "--model", tiny_teacher_dir, *common, "--output-dir", tmp_path / "ft", "--max-steps", "6",
                  "--batch-size", "8", "--eval-every", "6", "--precision", "fp32", "--lr", "1e-3")
    assert ft.returncode == 0, ft.stderr[-2000:]
    assert run_main("export", "--model", tmp_path / "ft" / "best", "--output-dir", tmp_path / "onnx").returncode == 0
    scores = {}
    for name, model in (("pytorch", tmp_path / "ft" / "best"), ("onnx", tmp_path / "onnx")):
        result = run_main("evaluate", "--model", model, *common, "--output", tmp_path / f"eval_{name}")
        assert result.returncode == 0, result.stderr[-2000:]
        scores[name] = json.loads((tmp_path / f"eval_{name}" / "metrics.json").read_text())
    assert scores["onnx"]["runtime"] == "onnxruntime" and scores["pytorch"]["runtime"] == "pytorch"
    assert scores["onnx"]["accuracy"] == scores["pytorch"]["accuracy"]
    predictions = [(tmp_path / f"eval_{n}" / "predictions.tsv").read_text() for n in ("pytorch", "onnx")]
    assert predictions[0] == predictions[1]
    assert json.loads((tmp_path / "onnx" / "config.json").read_text())["id2label"]["1"] == "positive"  # class names
    # minilm report gains the exported form's row, scored on the runs' dev split and timed beside them.
    report = run_main("report", "--runs", tmp_path / "ft", "--teacher-run", tmp_path / "ft", "--exported",
                      tmp_path / "onnx", "--speed-data", task / "dev.tsv", "--output", tmp_path / "report")
    assert report.returncode == 0, report.stderr[-2000:]
    row = next(line for line in report.stdout.splitlines() if line.startswith("| onnx |"))
    assert "| exported, none | 2x32 |" in row and f"| {scores['onnx']['accuracy']:.2f} | 100.0% |" in row


def test_bad_input_gets_one_line(tiny_teacher_dir, tmp_path, tokenizer):
    from transformers import BertForMaskedLM

    mlm = tmp_path / "mlm"
    torch.manual_seed(0)
    BertForMaskedLM(tiny_bert().config).save_pretrained(mlm)
    tokenizer.save_pretrained(mlm)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    (tmp_path / "not_a_model").mkdir()
    cases = [
        (("--model", tmp_path / "not_a_model", "--output-dir", tmp_path / "o1"), "is not a model directory"),
        (("--model", mlm, "--output-dir", tmp_path / "o2"),
         "minilm export takes encoders, sequence classifiers and question-answering models; "),
        (("--model", tiny_teacher_dir, "--output-dir", tmp_path / "o3", "--quantize", "int4"),
         "quantize must be one of none, int8, got 'int4'"),
        (("--model", tiny_teacher_dir, "--output-dir", tmp_path / "notes"),
         "holds files that minilm export did not write"),
    ]
    for args, fragment in cases:
        result = run_main("export", *args)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1 and fragment in lines[0], result.stderr[-1500:]
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine" and not (tmp_path / "o2").exists()
    assert not np.any([p.name.startswith(".tmp") for p in tmp_path.iterdir()])  # nothing half-written left


def test_export_graph_takes_inputs_in_any_order(tmp_path, tokenizer):
    """A tokenizer's batch lists token_type_ids before attention_mask: the graph must still get each input in its
    place (a swapped mask scores a padded batch wrongly)."""
    from minilm.onnxmodel import export_graph, session

    model = tiny_with_head("classification", tmp_path / "model", tokenizer)
    batch = tokenizer(["short", "a much longer sentence than the first one"], padding=True, return_tensors="pt")
    assert list(batch)[:3] == ["input_ids", "token_type_ids", "attention_mask"]
    export_graph(model, "classification", dict(batch), tmp_path / "g.onnx")
    graph = session(tmp_path / "g.onnx")
    got = graph.run(["logits"], {i.name: batch[i.name].numpy() for i in graph.get_inputs()})[0]
    with torch.no_grad():
        want = model(**batch).logits.numpy()
    assert np.abs(got - want).max() < 1e-4
