"""End to end through the `minilm` command: tiny models on made-up tasks, the packaged teacher on real data."""

from __future__ import annotations

import json
import random

import pytest

from clirun import run_cli

POSITIVE, NEGATIVE = ["good", "great", "fine", "lovely", "superb"], ["bad", "awful", "poor", "dull", "boring"]


def sentiment_rows(n, seed):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = rng.sample(POSITIVE if label else NEGATIVE, 2) + rng.sample(["movie", "film", "plot", "cast"], 2)
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    custom = root / "reviews"
    custom.mkdir()
    for split, n in (("train", 96), ("dev", 32)):
        lines = ["id\treview\tverdict"] + [f"{i}\t{t}\t{'yes' if y else 'no'}" for i, (t, y) in
                                           enumerate(sentiment_rows(n, split == "dev"))]
        (custom / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    rte = root / "RTE"
    rte.mkdir()
    rng = random.Random(0)
    for split, n in (("train", 64), ("dev", 16)):
        lines = ["index\tsentence1\tsentence2\tlabel"]
        for i in range(n):
            a, b = rng.sample(sentiment_rows(10, i), 2)
            same = rng.random() < 0.5
            lines.append(f"{i}\t{a[0]}\t{a[0] if same else b[0]}\t{'entailment' if same else 'not_entailment'}")
        (rte / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    sst = root / "SST-2"
    sst.mkdir()
    for split, n in (("train", 96), ("dev", 32)):
        lines = ["sentence\tlabel"] + [f"{t}\t{y}" for t, y in sentiment_rows(n, 7 if split == "dev" else 8)]
        (sst / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return root


def small_run(*extra):
    return ["--batch-size", "8", "--max-length", "32", "--log-every", "2", "--eval-every", "6", *extra]


def test_finetune_evaluate_report_on_custom_tsv(tasks, tiny_teacher_dir, tmp_path):
    out = tmp_path / "ft_custom"
    result = run_cli("finetune", "--model", tiny_teacher_dir, "--task", "reviews", "--task-dir", tasks / "reviews",
                     "--text-columns", "review", "--label-column", "verdict", "--output-dir", out,
                     "--max-steps", "12", "--lr", "1e-3", *small_run())
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["best"]["accuracy"] >= 50.0 and summary["examples_per_s"] > 0
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(out / "best")
    assert model.config.id2label == {0: "no", 1: "yes"}
    assert "minilm_cpu" not in (out / "best" / "config.json").read_text()  # trained with minilm.kernels, saved plain
    ev = run_cli("evaluate", "--model", out / "best", "--task", "reviews", "--task-dir", tasks / "reviews",
                 "--text-columns", "review", "--label-column", "verdict", "--output", tmp_path / "ev")
    assert ev.returncode == 0, ev.stderr[-2000:]
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(summary["best"]["accuracy"])
    predictions = (tmp_path / "ev" / "predictions.tsv").read_text().splitlines()
    assert len(predictions) == 33 and predictions[1].split("\t")[1] in ("yes", "no")
    rep = run_cli("report", "--runs", out, "--teacher-run", out, "--output", tmp_path / "rep",
                  "--speed-data", tasks / "SST-2" / "dev.tsv", "--speed-examples", "64")
    assert rep.returncode == 0, rep.stderr[-2000:]
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "| ft_custom | - | 2x32 |" in text and "100.0%" in text and "1.00x" in text
    assert (tmp_path / "rep" / "loss.png").stat().st_size > 1000
    measured = float(text.split("| 100.0% | ")[1].split(" |")[0].replace(",", ""))
    assert measured > 0 and measured != round(summary["examples_per_s"])  # re-measured, not copied


def test_finetune_glue_pair_task(tasks, tiny_teacher_dir, tmp_path):
    out = tmp_path / "ft_rte"
    result = run_cli("finetune", "--model", tiny_teacher_dir, "--task", "rte", "--task-dir", tasks / "RTE",
                     "--output-dir", out, "--max-steps", "6", *small_run())
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["metric"] == "accuracy" and 0 <= summary["best"]["accuracy"] <= 100
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("dev_accuracy" in r for r in records) and any("loss" in r for r in records)


def test_task_specific_distillation(tasks, tiny_teacher_dir, tmp_path):
    teacher = tmp_path / "teacher_ft"
    ft = run_cli("finetune", "--model", tiny_teacher_dir, "--task", "sst2", "--task-dir", tasks / "SST-2",
                 "--output-dir", teacher, "--max-steps", "6", *small_run())
    assert ft.returncode == 0, ft.stderr[-2000:]
    out = tmp_path / "task_distill"
    result = run_cli("distill", "--teacher", teacher / "best", "--task", "sst2", "--task-dir", tasks / "SST-2",
                     "--output-dir", out, "--student-layers", "1", "--student-hidden", "32", "--student-heads", "4",
                     "--student-ffn", "64", "--student-init", "teacher", "--max-steps", "6", "--hard-label-weight", "0.5",
                     "--temperature", "2", *small_run())
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = set().union(*records)
    assert {"attention", "value", "output", "hard", "dev_accuracy"} <= logged
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["layers"] == 1 and (out / "best" / "config.json").is_file()


def test_distill_packaged_teacher_on_real_text(data_root, tmp_path):
    """The main job in miniature: the real teacher, real text, loss falling, a loadable student."""
    out = tmp_path / "main_job"
    result = run_cli("distill", "--config", "configs/cpu_testbed.yaml", "--data",
                     data_root / "text" / "wikitext-2-valid.txt", data_root / "glue" / "SST-2" / "dev.tsv",
                     "--output-dir", out, "--cache-dir", tmp_path / "cache", "--max-steps", "40", "--batch-size", "16",
                     "--max-length", "64", "--warmup-steps", "4", "--log-every", "4", "--save-every", "20",
                     cwd=str(__import__("clirun").REPO))
    assert result.returncode == 0, result.stderr[-2000:]
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 10
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:2]) / 2, losses
    from transformers import AutoModel

    student = AutoModel.from_pretrained(out / "model")
    assert (student.config.num_hidden_layers, student.config.hidden_size) == (3, 384)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000020", "step-00000040"]


def test_finetune_packaged_teacher_on_real_sst2(data_root, tmp_path):
    out = tmp_path / "sst2"
    result = run_cli("finetune", "--model", "packaged:all-MiniLM-L6-v2", "--task", "sst2", "--output-dir", out,
                     "--max-steps", "40", "--lr", "1e-4", "--warmup-steps", "4", "--batch-size", "32",
                     "--eval-every", "40", "--log-every", "10")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["best"]["accuracy"] > 65.0  # 40 steps lift the real teacher well above chance (50.9%)


@pytest.fixture(scope="module")
def mlm_teacher_dir(tmp_path_factory, tokenizer):
    """A tiny random BertForMaskedLM saved with the real tokenizer: distilbert's masked-LM terms run."""
    from test_objectives import mlm_teacher

    directory = tmp_path_factory.mktemp("mlm_teacher")
    mlm_teacher().save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def objective_run(teacher, objective, out, corpus, *extra):
    return run_cli("distill", "--teacher", teacher, "--objective", objective, "--data", corpus, "--output-dir", out,
                   "--cache-dir", out.parent / "cache", "--max-steps", "3", "--batch-size", "4", "--max-length", "32",
                   "--log-every", "1", "--warmup-steps", "1", *extra)


def saved_keys(directory):
    from safetensors import safe_open

    with safe_open(str(directory / "model.safetensors"), "pt") as handle:
        return set(handle.keys())


@pytest.mark.parametrize("objective, terms", [("tinybert", {"attention", "hidden", "embedding"}),
                                              ("distilbert", {"loss"}), ("hidden-mse", {"loss"})])
def test_baseline_objectives_on_the_packaged_teacher(objective, terms, data_root, tmp_path):
    out = tmp_path / objective
    result = objective_run("packaged:all-MiniLM-L6-v2", objective, out, data_root / "glue" / "SST-2" / "dev.tsv",
                           "--student-layers", "2", "--student-init", "teacher")
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 3 and terms <= set(records[-1]) and all(r["loss"] > 0 for r in records)
    if objective == "distilbert":
        assert result.stdout.count("only the cosine term runs") == 1  # said once
    from transformers import AutoModel

    student = AutoModel.from_pretrained(out / "model")
    assert type(student).__name__ == "BertModel" and student.config.num_hidden_layers == 2
    assert all(k.startswith(("embeddings.", "encoder.", "pooler.")) for k in saved_keys(out / "model"))


def test_distilbert_with_a_masked_lm_teacher_and_a_narrower_student(mlm_teacher_dir, tmp_path):
    """MLM terms active; the student's masked-LM head and width projection are trained but never saved."""
    out = tmp_path / "distilbert_mlm"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat while the dog ran under the old tree\n" * 30)
    result = objective_run(mlm_teacher_dir, "distilbert", out, corpus, "--student-layers", "1", "--student-hidden", "16",
                           "--student-heads", "4", "--distilbert-mlm", "on")
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"ce", "mlm", "cosine"} <= set(records[-1])
    keys = saved_keys(out / "model")
    assert not any(k.startswith(("cls.", "mlm_head", "projections")) for k in keys)
    assert "embeddings.word_embeddings.weight" in keys
