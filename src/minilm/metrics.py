"""The official GLUE metrics, from scikit-learn and SciPy, reported in percent.

accuracy (SST-2, QNLI, RTE, MNLI, WNLI); accuracy and F1 of the positive class (MRPC, QQP);
Matthews correlation (CoLA); Pearson and Spearman correlation (STS-B). `main_metric` is the single
number used for model selection and tables (the mean where a task has two).
"""

from __future__ import annotations

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
