"""SQuAD: reading and checking the files, windowed features and their labels, answers from span scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minilm.config.sections import QAWindows
from minilm.errors import MiniLMError
from minilm.tasks.squad import QAData, QAExample, encode_squad, load_squad, read_squad, squad_predictions

CONTEXT = ("The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, "
           "a region in France. They were descended from Norse raiders and pirates from Denmark, Iceland "
           "and Norway who, under their leader Rollo, agreed to swear fealty to King Charles III of West Francia.")


def squad_file(tmp_path, qas, version="v2.0", context=CONTEXT):
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"version": version, "data": [{"title": "Normans", "paragraphs": [
        {"context": context, "qas": qas}]}]}))
    return path


def qa(qid, question, answer=None, impossible=False):
    answers = [] if answer is None else [{"text": answer, "answer_start": CONTEXT.index(answer)}]
    return {"id": qid, "question": question, "answers": answers, "is_impossible": impossible}


def test_reads_v2_and_v1_files(tmp_path):
    data = read_squad(squad_file(tmp_path, [qa("q1", "Who was the leader?", "Rollo"),
                                            qa("q2", "Who founded Rome?", impossible=True)]))
    assert [e.id for e in data.examples] == ["q1", "q2"] and data.examples[1].impossible
    assert data.golds == {"q1": ["Rollo"], "q2": []}
    v1 = read_squad(squad_file(tmp_path, [{"id": "a", "question": "Where?", "answers": [
        {"text": "Normandy", "answer_start": CONTEXT.index("Normandy")}]}], version="1.1"))
    assert v1.examples[0].answers == [("Normandy", CONTEXT.index("Normandy"))] and not v1.examples[0].impossible


@pytest.mark.parametrize("broken, message", [
    ({"id": "q9", "answers": [], "is_impossible": True}, "question q9: missing field 'question'"),
    ({"id": "q9", "question": "Who?", "answers": [{"text": "Rollo", "answer_start": 3}]},
     "question q9: answer_start 3 does not point at its text 'Rollo'"),
    ({"id": "q9", "question": "Who?", "answers": [{"text": "Rollo"}]}, "question q9: missing field 'answer_start'"),
    ({"id": "q9", "question": "Who?", "answers": []}, "question q9: no answers and not marked is_impossible"),
])
def test_malformed_files_name_the_file_and_the_question(tmp_path, broken, message):
    path = squad_file(tmp_path, [qa("q1", "Who was the leader?", "Rollo"), broken])
    with pytest.raises(MiniLMError, match=message) as info:
        read_squad(path)
    assert str(path) in str(info.value)


def test_the_shared_subset(data_root):
    train, dev = load_squad("squad2", "train"), load_squad("squad2", "dev")
    assert (len(train.examples), sum(e.impossible for e in train.examples)) == (7636, 1825)
    assert (len(dev.examples), sum(e.impossible for e in dev.examples)) == (3161, 1691)


def test_windows_overlap_and_labels_point_at_the_answer(tokenizer):
    data = QAData([QAExample("q1", "Who was their leader?", CONTEXT, [("Rollo", CONTEXT.index("Rollo"))]),
                   QAExample("q2", "Where is Normandy?", CONTEXT, [("a region in France", CONTEXT.index("a region"))]),
                   QAExample("q3", "Who founded Rome?", CONTEXT, [], True)], "test")
    features = encode_squad(data, tokenizer, max_length=40, stride=10)
    per_question = np.bincount(features.example_index)
    assert all(n >= 3 for n in per_question)  # a 70-token context in 40-token windows
    for f in range(len(features)):
        assert len(features.input_ids[f]) <= 40
        example = data.examples[features.example_index[f]]
        start, end = features.start_positions[f], features.end_positions[f]
        if (start, end) == (0, 0):  # [CLS]: the answer is not wholly in this window, or there is none
            continue
        span = features.offsets[f]
        assert example.context[span[start][0]:span[end][1]] == example.answers[0][0]
    labelled = {features.example_index[f] for f in range(len(features)) if features.start_positions[f] > 0}
    assert labelled == {0, 1}  # both answerable questions have a window holding their answer; q3 none
    # consecutive windows of one context share `stride` tokens of it
    first = [f for f in range(len(features)) if features.example_index[f] == 0][:2]
    spans = [[s for s in features.offsets[f] if s is not None] for f in first]
    assert spans[0][-10:] == spans[1][:10]


def features_for(windows):
    """Stand-in features: windows of one question, each a list of character spans (None outside the context)."""
    from minilm.tasks.squad import QAFeatures

    return QAFeatures([[0] * len(w) for w in windows], None, [0] * len(windows), [0] * len(windows),
                      [0] * len(windows), windows)


def test_answers_from_scores_by_hand():
    context = "abc def ghi"
    data = QAData([QAExample("q", "?", context, [("def", 4)])], "test")
    window = [None, None, (0, 3), (4, 7), (8, 11)]  # [CLS], a question token, three context tokens
    start = np.array([1.0, 9.0, 0.0, 3.0, 1.0])  # the question token scores highest but is not context
    end = np.array([1.0, 0.0, 0.0, 2.0, 2.5])
    predictions, odds = squad_predictions(data, features_for([window]), [start], [end])
    # spans in the context: start 3 ("def") to end 4 ("ghi") scores 3 + 2.5 = 5.5, beating "def" alone (3 + 2)
    assert predictions == {"q": "def ghi"} and odds == {"q": pytest.approx((1 + 1) - 5.5)}
    short, _ = squad_predictions(data, features_for([window]), [start], [end], QAWindows(max_answer_length=1))
    assert short == {"q": "def"}  # one token at most
    null, odds = squad_predictions(data, features_for([window]), [start], [end], QAWindows(null_threshold=-4.0))
    assert null == {"q": ""}  # -3.5 > -4: the null score wins by the threshold's measure


def test_the_null_score_is_the_lowest_over_windows_and_spans_the_best():
    context = "abc def"
    data = QAData([QAExample("q", "?", context, [], True)], "test")
    windows = [[None, (0, 3), (4, 7)], [None, (4, 7)]]
    starts = [np.array([5.0, 1.0, 0.0]), np.array([2.0, 4.0])]
    ends = [np.array([5.0, 0.0, 1.0]), np.array([2.0, 1.0])]
    predictions, odds = squad_predictions(data, features_for(windows), starts, ends)
    # null: min(10, 4) = 4; best span: window 2, "def", 4 + 1 = 5 -> odds -1: answered
    assert odds == {"q": pytest.approx(-1.0)} and predictions == {"q": "def"}
