"""GLUE metrics against values computed by hand."""

import math

import pytest

from minilm.tasks.metrics import main_metric, task_metrics


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


def test_squad_normalisation_by_hand():
    from minilm.tasks.metrics import exact_match, normalize_answer, token_f1

    assert normalize_answer("The  Eiffel-Tower, in Paris!") == "eiffeltower in paris"
    assert normalize_answer("an apple a day") == "apple day"  # articles go, "a" inside words stays
    assert exact_match("the Beatles", "Beatles.") == 1.0
    # prediction "late 1990s" vs gold "in the late 1990s": 2 common tokens, precision 1, recall 2/3
    assert token_f1("late 1990s", "in the late 1990s") == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))
    assert token_f1("", "") == 1.0 and token_f1("", "x") == 0.0 and token_f1("x", "") == 0.0


def test_squad_metrics_by_hand_with_several_golds_unanswerable_and_thresholds():
    from minilm.tasks.metrics import squad_metrics

    golds = {"a": ["Denver Broncos", "the Broncos"], "b": ["1990s"], "c": [], "d": []}
    predictions = {"a": "broncos", "b": "", "c": "", "d": "paris"}
    null_odds = {"a": -3.0, "b": 2.0, "c": 1.0, "d": -1.0}
    m = squad_metrics(golds, predictions, null_odds)
    # exact: a 1 (matches "the Broncos" after normalisation), b 0, c 1 (both empty), d 0 -> 50%
    # f1: a 1.0, b 0, c 1, d 0 -> 50%
    assert (m["exact"], m["f1"], m["total"]) == (50.0, 50.0, 4)
    assert (m["HasAns_exact"], m["NoAns_exact"], m["HasAns_total"], m["NoAns_total"]) == (50.0, 50.0, 2, 2)
    # Threshold sweep, questions by odds: a (-3), d (-1), c (1), b (2), starting from "all unanswered" = 2 points:
    # +a -> 3 (best, threshold -3), +d (answers "paris" to an unanswerable one) -> 2, +c -> 2, +b -> 2.
    assert m["best_exact"] == 75.0 and m["best_exact_thresh"] == -3.0
    assert m["best_f1"] == 75.0 and m["best_f1_thresh"] == -3.0


def test_squad_best_threshold_stays_at_zero_when_answering_nothing_is_best():
    from minilm.tasks.metrics import squad_metrics

    m = squad_metrics({"a": [], "b": ["x"]}, {"a": "wrong", "b": "y"}, {"a": 0.5, "b": 0.7})
    assert m["best_exact"] == 50.0 and m["best_exact_thresh"] == 0.0
