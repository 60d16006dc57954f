"""End to end through the `minilm` command: tiny models on made-up tasks, the packaged teacher on real data."""

from __future__ import annotations

import json

import pytest
from helpers.cli import run_cli

POSITIVE, NEGATIVE = ["good", "great", "fine", "lovely", "superb"], ["bad", "awful", "poor", "dull", "boring"]


def independent_squad_scores(golds: dict, predictions: dict) -> tuple[float, float]:
    """EM and F1 recomputed from predictions.json with code of its own (str.translate, a split on spaces),
    for comparison with metrics.json."""
    import collections
    import re
    import string

    table = str.maketrans("", "", string.punctuation)

    def norm(text):
        words = text.lower().translate(table).split()
        return [w for w in words if w not in ("a", "an", "the")]

    def scores(pred, gold):
        p, g = norm(pred), norm(gold)
        if not p or not g:
            return float(p == g), float(p == g)
        common = sum((collections.Counter(p) & collections.Counter(g)).values())
        f1 = 0.0 if not common else 2 * common / (len(p) + len(g))
        return float(p == g), f1

    em = f1 = 0.0
    for qid, answers in golds.items():
        pairs = [scores(predictions[qid], gold) for gold in (answers or [""])]
        em += max(e for e, _ in pairs)
        f1 += max(f for _, f in pairs)
    assert re  # (imported for symmetry with the package's regex; the split above needs none)
    return 100 * em / len(golds), 100 * f1 / len(golds)


def test_squad2_finetune_evaluate_and_pipeline_on_the_shared_subset(data_root, tmp_path):
    """The packaged teacher on the real SQuAD 2.0 subset, a few steps: the run, the official files, a metric
    recomputed independently from them, and transformers' question-answering pipeline on the checkpoint."""
    out = tmp_path / "squad"
    result = run_cli("finetune", "--model", "packaged:all-MiniLM-L6-v2", "--task", "squad2", "--output-dir", out,
                     "--max-examples", "40", "--max-steps", "6", "--batch-size", "8", "--eval-every", "6",
                     "--lr", "1e-4", "--precision", "fp32")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["metric"] == "squad" and summary["max_length"] == 384 and 0 <= summary["best"]["f1"] <= 100
    ev = run_cli("evaluate", "--model", out / "best", "--task", "squad2", "--max-examples", "60",
                 "--output", tmp_path / "eval")
    assert ev.returncode == 0, ev.stderr[-2000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert {"exact", "f1", "total", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_exact",
            "best_exact_thresh", "best_f1", "best_f1_thresh"} <= set(metrics) and metrics["total"] == 60
    predictions = json.loads((tmp_path / "eval" / "predictions.json").read_text())
    odds = json.loads((tmp_path / "eval" / "null_odds.json").read_text())
    assert set(predictions) == set(odds) and len(predictions) == 60
    assert all(p == "" for q, p in predictions.items() if odds[q] > 0)  # the default null threshold, 0
    from minilm.tasks.squad import load_squad

    golds = load_squad("squad2", "dev").head(60).golds
    em, f1 = independent_squad_scores(golds, predictions)
    assert em == pytest.approx(metrics["exact"]) and f1 == pytest.approx(metrics["f1"])
    assert f"f1 {metrics['f1']:.2f}" in ev.stdout
    question, context = "Who was the leader?", "The raiders were led by Rollo, who swore fealty to Charles."
    if qa_pipeline_available():
        from transformers import pipeline

        answer = pipeline("question-answering", model=str(out / "best"))(question=question, context=context)
        assert isinstance(answer["answer"], str) and 0 <= answer["start"] <= answer["end"]
    else:  # transformers 5.3 and later have no question-answering pipeline: the standard classes instead
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        from minilm.config.sections import QAWindows
        from minilm.tasks import encode
        from minilm.tasks.scoring import squad_results
        from minilm.tasks.squad import QAData, QAExample

        model = AutoModelForQuestionAnswering.from_pretrained(out / "best")
        tokenizer = AutoTokenizer.from_pretrained(out / "best")
        data = QAData([QAExample("q", question, context, [], True)], "one question")
        settings = QAWindows(null_threshold=1e9)
        windows = encode(data, tokenizer, 384, settings.doc_stride)
        _, predictions, _, _ = squad_results(model, tokenizer, data, windows, 1, "cpu", settings)
        assert predictions["q"] and predictions["q"] in context


def qa_pipeline_available() -> bool:
    """transformers 5.2 has the question-answering pipeline; 5.3 removed it (its REMOVED_TASKS says so)."""
    import transformers.pipelines as pipelines

    return "question-answering" in getattr(pipelines, "SUPPORTED_TASKS", {})


def test_squad2_task_specific_distillation(data_root, tiny_teacher_dir, tmp_path):
    teacher = tmp_path / "qa_teacher"
    small = ["--max-length", "128", "--doc-stride", "32", "--max-examples", "24", "--batch-size", "8"]
    ft = run_cli("finetune", "--model", tiny_teacher_dir, "--task", "squad2", "--output-dir", teacher,
                 "--max-steps", "3", *small)
    assert ft.returncode == 0, ft.stderr[-2000:]
    out = tmp_path / "qa_student"
    result = run_cli("distill", "--teacher", teacher / "best", "--task", "squad2", "--output-dir", out,
                     "--student-layers", "1", "--student-hidden", "32", "--student-heads", "4", "--max-steps", "3",
                     "--eval-every", "3", "--log-every", "1", "--hard-label-weight", "0.5", "--temperature", "2",
                     *[a for a in small if a not in ("--max-examples", "24")])
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"attention", "value", "output", "hard", "dev_f1", "dev_NoAns_f1"} <= set().union(*records)
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["architectures"] == ["BertForQuestionAnswering"] and config["num_hidden_layers"] == 1
