"""Retrieval metrics against hand-computed rankings (ties, several relevant passages, a query with none, a relevant
passage past the cut-off), SQuAD as queries and passages, and `minilm evaluate --zero-shot` on SQuAD."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minilm.errors import MiniLMError
from minilm.tasks.retrieval import retrieval_metrics, squad_retrieval


def test_metrics_by_hand():
    scores = np.array([[0.1, 0.9, 0.5, 0.3],   # relevant 2 ranks second
                       [0.8, 0.8, 0.1, 0.2],   # a tie: passage 0 ranks before passage 1 (corpus order), 1 second
                       [0.4, 0.3, 0.2, 0.1],   # relevant 0 and 3 rank first and fourth
                       [0.5, 0.1, 0.2, 0.3]])  # no relevant passage: left out of every average
    relevant = [{2}, {1}, {0, 3}, set()]
    got = retrieval_metrics(scores, relevant)
    second = 1 / math.log2(3)
    several = (1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert got["ndcg@10"] == pytest.approx(100 * (second + second + several) / 3)
    assert got["mrr@10"] == pytest.approx(100 * (0.5 + 0.5 + 1) / 3)
    assert got["recall@1"] == pytest.approx(100 * (0 + 0 + 0.5) / 3)
    assert got["recall@10"] == pytest.approx(100.0)
    assert (got["queries"], got["unjudged_queries"]) == (3, 1)


def test_a_relevant_passage_past_the_cutoff_counts_nothing():
    scores = -np.arange(12, dtype=float)[None, :]  # passage i ranks i + 1
    assert retrieval_metrics(scores, [{10}]) == {"ndcg@10": 0.0, "mrr@10": 0.0, "recall@1": 0.0, "recall@10": 0.0,
                                                  "queries": 1, "unjudged_queries": 0}
    top = retrieval_metrics(scores, [{0}])
    assert (top["ndcg@10"], top["mrr@10"], top["recall@1"]) == (100.0, 100.0, 100.0)
    with pytest.raises(MiniLMError, match="no query has a relevant passage"):
        retrieval_metrics(scores, [set()])


def test_squad_questions_retrieve_the_paragraph_they_were_asked_of():
    from minilm.tasks.squad import QAData, QAExample

    data = QAData([QAExample("a", "Who?", "Paragraph one.", [("one", 10)]),
                   QAExample("b", "What?", "Paragraph two.", [("two", 10)]),
                   QAExample("c", "Nothing?", "Paragraph two.", [], impossible=True),  # no answer: not a query
                   QAExample("d", "Which?", "Paragraph one.", [("Paragraph", 0)])], "squad.json")
    retrieval = squad_retrieval(data)
    assert retrieval.passages == ["Paragraph one.", "Paragraph two."]  # each distinct paragraph once
    assert retrieval.queries == ["Who?", "What?", "Which?"] and retrieval.relevant == [{0}, {1}, {0}]


def test_evaluate_zero_shot_on_squad_is_retrieval(tiny_teacher_dir, tmp_path):
    import json

    from helpers.cli import ok, run_main

    squad = tmp_path / "squad"
    squad.mkdir()
    paragraphs = [{"context": f"The river {name} runs through the old town.", "qas": [
        {"id": f"q{i}", "question": f"Where does {name} run?", "is_impossible": False,
         "answers": [{"text": "through the old town", "answer_start": len(f"The river {name} runs ")}]}]}
        for i, name in enumerate(["Arno", "Seine", "Thames"])]
    (squad / "dev.json").write_text(json.dumps({"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]}))
    result = ok(run_main("evaluate", "--model", tiny_teacher_dir, "--task", "squad2", "--task-dir", squad, "--split",
                         "dev", "--zero-shot", "--max-length", "64", "--output", tmp_path / "out"))
    assert "3 questions against 3 passages, zero-shot retrieval" in result.stdout
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["main"] == metrics["ndcg@10"] and 0 <= metrics["recall@1"] <= 100 and metrics["recall@10"] == 100
