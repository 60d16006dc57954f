"""The official GLUE metrics, from scikit-learn and SciPy, and the SQuAD metrics, reported in percent.

accuracy (SST-2, QNLI, RTE, MNLI, WNLI); accuracy and F1 of the positive class (MRPC, QQP);
Matthews correlation (CoLA); Pearson and Spearman correlation (STS-B). `main_metric` is the single
number used for model selection and tables (the mean where a task has two).
"""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef


def task_metrics(metric: str, predictions, labels) -> dict[str, float]:
    """Scores in percent for predicted class ids (or real values for pearson_spearman)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if metric == "accuracy":
        return {"accuracy": 100.0 * accuracy_score(labels, predictions)}
    if metric == "accuracy_f1":
        return {"accuracy": 100.0 * accuracy_score(labels, predictions),
                "f1": 100.0 * f1_score(labels, predictions, zero_division=0)}
    if metric == "mcc":
        return {"mcc": 100.0 * matthews_corrcoef(labels, predictions)}
    if metric == "pearson_spearman":
        return {"pearson": 100.0 * float(pearsonr(predictions, labels)[0]),
                "spearman": 100.0 * float(spearmanr(predictions, labels)[0])}
    raise ValueError(f"unknown metric '{metric}'")


def main_metric(scores: dict[str, float]) -> float:
    return float(np.mean(list(scores.values())))


# --- SQuAD: exact match and F1 after answer normalisation, written from the official definition ---

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, punctuation removed, the articles a/an/the removed, whitespace collapsed."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """F1 of the normalised tokens; when either side is empty, 1 if both are, else 0."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _best_threshold(scores: dict[str, float], null_odds: dict[str, float], has_answer: dict[str, bool],
                    predictions: dict[str, str]) -> tuple[float, float]:
    """The null-odds threshold that maximises the mean score when questions whose odds exceed it are answered
    with "": start from "every question unanswered" (threshold 0.0 reported) and answer the questions in
    increasing order of their odds, keeping the first threshold that gives the highest total."""
    total = best = float(sum(not has for has in has_answer.values()))
    threshold = 0.0
    for qid in sorted(scores, key=lambda q: null_odds[q]):
        if has_answer[qid]:
            total += scores[qid]
        elif predictions[qid]:
            total -= 1.0  # answering an unanswerable question loses its point
        if total > best:
            best, threshold = total, null_odds[qid]
    return 100.0 * best / len(scores), threshold


def squad_metrics(golds: dict[str, list[str]], predictions: dict[str, str],
                  null_odds: dict[str, float] | None = None) -> dict[str, float]:
    """The official SQuAD 2.0 metrics in percent: `exact` and `f1` (max over the gold answers; an unanswerable
    question scores 1 exactly when the answer is ""), over all questions and split into HasAns/NoAns, and with
    `null_odds` the best scores over null thresholds (`best_exact`, `best_exact_thresh`, `best_f1`, ...)."""
    missing = [qid for qid in golds if qid not in predictions]
    if missing:
        raise ValueError(f"no prediction for {len(missing)} question(s), e.g. {missing[0]}")
    has_answer = {qid: bool(answers) for qid, answers in golds.items()}
    exact = {qid: max(exact_match(predictions[qid], g) for g in (answers or [""])) for qid, answers in golds.items()}
    f1 = {qid: max(token_f1(predictions[qid], g) for g in (answers or [""])) for qid, answers in golds.items()}
    result = {"exact": 100.0 * sum(exact.values()) / len(golds), "f1": 100.0 * sum(f1.values()) / len(golds),
              "total": len(golds)}
    for name, wanted in (("HasAns", True), ("NoAns", False)):
        ids = [qid for qid, has in has_answer.items() if has == wanted]
        if ids:
            result[f"{name}_exact"] = 100.0 * sum(exact[q] for q in ids) / len(ids)
            result[f"{name}_f1"] = 100.0 * sum(f1[q] for q in ids) / len(ids)
            result[f"{name}_total"] = len(ids)
    if null_odds is not None:
        result["best_exact"], result["best_exact_thresh"] = _best_threshold(exact, null_odds, has_answer, predictions)
        result["best_f1"], result["best_f1_thresh"] = _best_threshold(f1, null_odds, has_answer, predictions)
    return result
