"""GLUE and custom task readers: every layout, labels, malformed rows."""

from __future__ import annotations

import pytest

from minilm.errors import MiniLMError
from minilm.tasks import describe_splits
from minilm.tasks.glue import GLUE_TASKS, encode_task
from minilm.tasks.glue import read_sentence_task as load_task
from minilm.tasks.kinds import CLASSIFICATION, REGRESSION


def write(directory, name, text, bom=False):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())


def test_cola_headerless_four_columns_with_bom(tmp_path):
    write(tmp_path, "train.tsv", "gj04\t1\t\tThe sailors rode the breeze.\ngj04\t0\t*\tThe more we study.\n", bom=True)
    data = load_task("cola", "train", str(tmp_path))
    assert data.texts == [("The sailors rode the breeze.",), ("The more we study.",)]
    assert data.labels == [1, 0] and data.metric == "mcc"


def test_sst2_real_dev(data_root):
    data = load_task("sst2", "dev")
    assert len(data.texts) == 872 and set(data.labels) == {0, 1}
    assert data.num_labels == 2


def test_pair_task_mrpc(tmp_path):
    write(tmp_path, "dev.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA cat sat.\tA cat was sitting.\n"
                               "0\t3\t4\tIt rains.\tStocks fell.\n")
    data = load_task("mrpc", "dev", str(tmp_path))
    assert data.texts[0] == ("A cat sat.", "A cat was sitting.") and data.labels == [1, 0]
    assert data.metric == "accuracy_f1"


def test_string_labels_mnli_and_matched_split(tmp_path):
    write(tmp_path, "dev_matched.tsv", "index\tsentence1\tsentence2\tgold_label\n0\tA man.\tA person.\tentailment\n"
                                       "1\tA dog.\tA cat.\tcontradiction\n")
    data = load_task("mnli", "dev", str(tmp_path))
    assert data.labels == [1, 0] and data.label_names == GLUE_TASKS["mnli"].labels


def test_stsb_regression_reads_the_official_sts_benchmark_files(tmp_path):
    write(tmp_path, "sts-train.csv", "main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane.\tAn airplane.\n"
                                     "main-news\theadlines\t2015\t0002\t0.5\tA man.\tA dog.\tsource-a\tsource-b\n")
    data = load_task("sts-b", "train", str(tmp_path))  # the second row carries two extra source columns
    assert data.texts == [("A plane.", "An airplane."), ("A man.", "A dog.")]
    assert data.labels == [5.0, 0.5] and data.label_names is None and data.num_labels == 1


def test_stsb_real_files(data_root):
    sizes = {split: len(load_task("stsb", split).labels) for split in ("train", "dev", "test")}
    assert sizes == {"train": 5749, "dev": 1500, "test": 1379}


def test_custom_tsv_and_jsonl(tmp_path):
    write(tmp_path, "train.tsv", "review\tstars\ngreat\tpos\nawful\tneg\nfine\tpos\n")
    data = load_task("reviews", "train", str(tmp_path), text_columns=["review"], label_column="stars")
    assert data.label_names == ("neg", "pos") and data.labels == [1, 0, 1]
    write(tmp_path / "j", "train.jsonl", '{"q": "a?", "a": "b.", "y": 0.5}\n{"q": "c?", "a": "d.", "y": 1}\n')
    pairs = load_task("qa", "train", str(tmp_path / "j"), ["q", "a"], "y", regression=True)
    assert pairs.texts == [("a?", "b."), ("c?", "d.")] and pairs.labels == [0.5, 1.0]


@pytest.mark.parametrize("row,message", [("good\t2\n", "unknown label '2'"), ("\t1\n", "empty text"),
                                         ("good\t1\textra\n", "expected 2 columns, found 3")])
def test_malformed_rows_name_file_and_line(tmp_path, row, message):
    write(tmp_path, "train.tsv", "sentence\tlabel\nfine\t1\n" + row)
    with pytest.raises(MiniLMError, match=rf"train.tsv:3: {message}"):
        load_task("sst2", "train", str(tmp_path))
    data = load_task("sst2", "train", str(tmp_path), skip_bad_rows=True)
    assert data.skipped == 1 and data.labels == [1]


def test_missing_split_column_and_unknown_task(tmp_path):
    write(tmp_path, "train.tsv", "text\tlabel\nfine\t1\n")
    with pytest.raises(MiniLMError, match="no column"):
        load_task("sst2", "train", str(tmp_path))
    with pytest.raises(MiniLMError, match="no dev.tsv"):
        load_task("sst2", "dev", str(tmp_path))
    with pytest.raises(MiniLMError, match="unknown task 'foo'"):
        load_task("foo", "train", str(tmp_path))


def test_encode_pairs_uses_segment_ids(tmp_path, tokenizer):
    write(tmp_path, "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA b.\tC d e.\tentailment\n")
    examples = encode_task(load_task("rte", "train", str(tmp_path)), tokenizer, 32)
    item = examples[0]
    assert item["input_ids"][0] == tokenizer.cls_token_id and item["label"] == 0
    assert 0 in item["token_type_ids"] and 1 in item["token_type_ids"]


class _HubSplit:
    """Stands in for a `datasets.Dataset` of the hub's `glue` set: column_names, rows, columns, features."""

    def __init__(self, columns: dict, class_names: list[str] | None):
        self.columns, self.column_names = columns, list(columns)
        self.features = {"label": type("ClassLabel", (), {"names": class_names})()}

    def __iter__(self):
        return (dict(zip(self.columns, values)) for values in zip(*self.columns.values()))

    def __getitem__(self, column):
        return self.columns[column]


def fake_hub(monkeypatch, split: _HubSplit, calls: list):
    import sys
    import types

    def load_dataset(path, name, split=None, streaming=False):
        calls.append((path, name, split))
        return split_data

    split_data = split
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))


def test_hub_mnli_labels_follow_class_names_not_hub_ids(monkeypatch):
    calls = []
    # The hub's MNLI ids: 0 entailment, 1 neutral, 2 contradiction; ours (the GLUE files') sort the names.
    fake_hub(monkeypatch, _HubSplit({"premise": ["A man sleeps.", "A dog runs."], "hypothesis": ["He rests.", "A cat"],
                                     "label": [0, 2], "idx": [0, 1]}, ["entailment", "neutral", "contradiction"]),
             calls)
    data = load_task("mnli", "dev", "hf")
    assert calls == [("glue", "mnli", "validation_matched")]
    assert data.texts == [("A man sleeps.", "He rests."), ("A dog runs.", "A cat")]
    assert [data.label_names[i] for i in data.labels] == ["entailment", "contradiction"]
    # A fine-tuned model's own class order is honoured, as for the files.
    order = ("neutral", "contradiction", "entailment")
    data = load_task("mnli", "dev", "hf", label_names=order)
    assert data.label_names == order and data.labels == [2, 1]


def test_hub_binary_and_regression_tasks(monkeypatch):
    calls = []
    fake_hub(monkeypatch, _HubSplit({"sentence": ["good", "bad"], "label": [1, 0], "idx": [0, 1]},
                                    ["negative", "positive"]), calls)
    data = load_task("sst2", "train", "hf")
    assert data.labels == [1, 0] and data.label_names == ("0", "1") and data.source == "hf:glue/sst2/train"
    fake_hub(monkeypatch, _HubSplit({"sentence1": ["a"], "sentence2": ["b"], "label": [3.5], "idx": [0]}, None), calls)
    data = load_task("stsb", "dev", "hf")
    assert data.labels == [3.5] and data.label_names is None and data.texts == [("a", "b")]


def test_hub_unlabeled_test_split_is_an_error(monkeypatch):
    fake_hub(monkeypatch, _HubSplit({"sentence": ["x"], "label": [-1], "idx": [0]}, ["negative", "positive"]), [])
    with pytest.raises(MiniLMError, match="has no labels"):
        load_task("sst2", "test", "hf")


def test_task_kind_is_one_notion(tmp_path):
    write(tmp_path, "sts-train.csv", "g\tf\t2012\t1\t3.5\tA.\tB.\ng\tf\t2012\t2\t1.0\tC.\tD.\n")
    stsb = load_task("stsb", "train", str(tmp_path))
    assert (stsb.kind, stsb.num_labels) == (REGRESSION, 1)
    write(tmp_path / "c", "train.tsv", "text\tlabel\nx\tyes\ny\tno\n")
    custom = load_task("mine", "train", str(tmp_path / "c"), ["text"], "label")
    assert (custom.kind, custom.num_labels, custom.label_names) == (CLASSIFICATION, 2, ("no", "yes"))
    assert custom.head(1).texts == [("x",)] and custom.head(1).kind is CLASSIFICATION


def test_a_task_says_what_it_read_and_warns_of_suspect_labels(tmp_path):
    write(tmp_path, "train.tsv", "text\tlabel\na\t1\nb\t0\nc\tmaybe\nd\t1\n")
    write(tmp_path, "dev.tsv", "text\tlabel\ne\t1\nf\tpostive\ng\tpostive\nh\t0\n")
    train = load_task("mine", "train", str(tmp_path), ["text"], "label")
    dev = load_task("mine", "dev", str(tmp_path), ["text"], "label", label_names=train.label_names)
    assert dev.labels == [1, 0] and dev.unseen == {"postive": 2}  # left out of the split, counted
    lines = describe_splits(train, dev)
    assert lines[0].startswith("task: classification, train 4 (") and ", dev 2 (" in lines[0]
    assert lines[1] == "labels (train): 0 1, 1 2, maybe 1"
    assert lines[2].startswith("warning: ") and "mix numbers (0, 1) and words (maybe)" in lines[2]
    assert lines[3].startswith("warning: ") and "'postive' (2)" in lines[3] and "left out of the dev score" in lines[3]
    write(tmp_path / "sst", "train.tsv", "sentence\tlabel\ngood\t1\nbad\t0\n")
    clean = load_task("sst2", "train", str(tmp_path / "sst"))
    assert describe_splits(clean, clean)[1] == "labels (train): negative 1, positive 1"
    assert not any(line.startswith("warning") for line in describe_splits(clean, clean))
