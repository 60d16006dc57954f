"""`minilm evaluate`: an exported directory (or one graph in it) scored like its checkpoint, output written only
where --output says, and zero-shot STS of any encoder, exported sentence-transformers models included."""

from __future__ import annotations

import json

import pytest
from helpers.cli import ok, run_main
from helpers.runs import finetune_args
from helpers.tasks import sentiment_rows

from minilm.models.sentence import SentenceEncoder
from minilm.tasks.scoring import zero_shot_sts


def test_evaluate_scores_an_exported_directory_like_the_checkpoint(tiny_teacher_dir, tmp_path):

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
    graph = run_main("evaluate", "--model", tmp_path / "onnx" / "onnx" / "model.onnx", *common)  # one graph, named
    assert graph.returncode == 0 and f"accuracy {scores['pytorch']['accuracy']:.2f}" in graph.stdout, graph.stderr
    predictions = [(tmp_path / f"eval_{n}" / "predictions.tsv").read_text() for n in ("pytorch", "onnx")]
    assert predictions[0] == predictions[1]
    assert json.loads((tmp_path / "onnx" / "config.json").read_text())["id2label"]["1"] == "positive"  # class names
    # minilm report gains the exported form's row, scored on the runs' dev split and timed beside them.
    report = run_main("report", "--runs", tmp_path / "ft", "--teacher-run", tmp_path / "ft", "--exported",
                      tmp_path / "onnx", "--speed-data", task / "dev.tsv", "--output", tmp_path / "report")
    assert report.returncode == 0, report.stderr[-2000:]
    row = next(line for line in report.stdout.splitlines() if line.startswith("| onnx |"))
    assert "| exported, none | 2x32 |" in row and f"| {scores['onnx']['accuracy']:.2f} | 100.0% |" in row


def test_evaluate_prints_and_writes_only_where_output_says(tiny_teacher_dir, sst2_like, tmp_path):
    out = tmp_path / "ft_eval"
    ok(run_main(*finetune_args(tiny_teacher_dir, sst2_like / "SST-2", out)))
    listing = sorted(p.name for p in (out / "best").iterdir())
    quick = ok(run_main("evaluate", "--model", out / "best", "--task", "sst2", "--task-dir", sst2_like / "SST-2",
                        "--max-examples", "5"))
    assert "(5 examples): accuracy" in quick.stdout
    assert sorted(p.name for p in (out / "best").iterdir()) == listing  # nothing written into the model
    ok(run_main("evaluate", "--model", out / "best", "--task", "sst2", "--task-dir", sst2_like / "SST-2",
                "--output", tmp_path / "scores"))
    assert sorted(p.name for p in (tmp_path / "scores").iterdir()) == ["metrics.json", "predictions.tsv"]


STS_ROWS = [("A plane is taking off.", "An air plane is taking off.", 5.0), ("A man plays a flute.", "A man plays.", 3.8),
            ("A cat eats.", "The stock market fell.", 0.0), ("Two dogs run.", "Dogs are running.", 4.2),
            ("A woman sings.", "A woman is dancing.", 1.6), ("Kids play soccer.", "Children play football.", 4.6)]


def sts_dir(tmp_path):
    """An STS benchmark dev file in the official layout (genre, file, year, id, score, sentence 1, sentence 2)."""
    directory = tmp_path / "sts"
    directory.mkdir()
    rows = [f"main-captions\tMSRvid\t2012test\t{i:04d}\t{score}\t{a}\t{b}" for i, (a, b, score) in enumerate(STS_ROWS)]
    (directory / "sts-dev.csv").write_text("\n".join(rows) + "\n")
    return directory


def test_zero_shot_evaluation_end_to_end(tiny_teacher_dir, tmp_path):
    from helpers.cli import run_main

    out = tmp_path / "eval"
    result = run_main("evaluate", "--model", tiny_teacher_dir, "--task", "stsb", "--task-dir", sts_dir(tmp_path),
                      "--split", "dev", "--zero-shot", "--batch-size", "4", "--output", out)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    encoder = SentenceEncoder(tiny_teacher_dir, "cpu")
    expected = zero_shot_sts(encoder, [(a, b) for a, b, _ in STS_ROWS], [s for _, _, s in STS_ROWS])
    assert metrics["pairs"] == 6 and metrics["spearman"] == pytest.approx(expected["spearman"], abs=1e-6)
    assert metrics["sentences_per_s"] > 0 and "zero-shot): spearman" in result.stdout
    assert "no modules.json): its sentence embeddings are the mean of its token states" in result.stdout  # said
    (tmp_path / "rev").mkdir()
    (tmp_path / "rev" / "dev.tsv").write_text("text\tlabel\ngood\tpos\nbad\tneg\n")
    refused = run_main("evaluate", "--model", tiny_teacher_dir, "--task", "reviews", "--task-dir", tmp_path / "rev",
                       "--text-columns", "text", "--label-column", "label", "--zero-shot")
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert refused.returncode == 2 and len(lines) == 1 and "--zero-shot scores sentence pairs" in lines[0]


def test_zero_shot_scores_an_exported_sentence_model_as_sentence_transformers_does(sentence_teacher, tmp_path):
    """Float32 graphs: the pooled graph (the directory's choice when it has one) and the token-level graph pooled
    with the directory's pipeline both score what SentenceTransformer.encode scores."""
    ok(run_main("export", "--model", sentence_teacher, "--output-dir", tmp_path / "st", "--pooling"))
    sts = sts_dir(tmp_path)
    spearman = {}
    for name, model in (("pytorch", sentence_teacher), ("pooled", tmp_path / "st"),
                        ("token", tmp_path / "st" / "onnx" / "model.onnx")):
        result = ok(run_main("evaluate", "--model", model, "--task", "stsb", "--task-dir", sts, "--split", "dev",
                             "--zero-shot", "--output", tmp_path / f"eval_{name}"))
        spearman[name] = json.loads((tmp_path / f"eval_{name}" / "metrics.json").read_text())["spearman"]
        if name == "pooled":
            assert "onnx/model_pooled.onnx (onnx float32 fused pooled)" in result.stdout
    assert spearman["pooled"] == pytest.approx(spearman["pytorch"], abs=1e-6)
    assert spearman["token"] == pytest.approx(spearman["pytorch"], abs=1e-6)
