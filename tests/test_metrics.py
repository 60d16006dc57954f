"""GLUE metrics against values computed by hand."""

import math

import pytest

from minilm.metrics import main_metric, task_metrics


def test_accuracy():
    assert task_metrics("accuracy", [1, 0, 1, 1], [1, 0, 0, 1]) == {"accuracy": 75.0}


def test_f1_by_hand():
    # labels 1 1 0 0 1, predictions 1 0 0 1 1: TP 2, FP 1, FN 1 -> precision = recall = 2/3, F1 = 2/3.
    scores = task_metrics("accuracy_f1", [1, 0, 0, 1, 1], [1, 1, 0, 0, 1])
    assert scores["accuracy"] == pytest.approx(60.0)
    assert scores["f1"] == pytest.approx(200 / 3)
    assert main_metric(scores) == pytest.approx((60 + 200 / 3) / 2)


def test_mcc_by_hand():
    # TP 2, TN 1, FP 1, FN 1: (2*1 - 1*1) / sqrt(3 * 3 * 2 * 2) = 1/6.
    scores = task_metrics("mcc", [1, 0, 0, 1, 1], [1, 1, 0, 0, 1])
    assert scores["mcc"] == pytest.approx(100 / 6)
    assert task_metrics("mcc", [0, 1, 0, 1], [0, 1, 0, 1])["mcc"] == pytest.approx(100.0)


def test_pearson_spearman_by_hand():
    # x = 1 2 3, y = 1 3 2: Pearson = 0.5; ranks equal the values, so Spearman = 0.5 too.
    scores = task_metrics("pearson_spearman", [1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
    assert scores["pearson"] == pytest.approx(50.0)
    assert scores["spearman"] == pytest.approx(50.0)
    monotone = task_metrics("pearson_spearman", [1.0, 2.0, 30.0], [1.0, 2.0, 3.0])
    assert monotone["spearman"] == pytest.approx(100.0) and monotone["pearson"] < 100.0
    assert not math.isnan(monotone["pearson"])


def test_unknown_metric():
    with pytest.raises(ValueError):
        task_metrics("bleu", [1], [1])
