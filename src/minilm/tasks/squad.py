"""SQuAD 1.1 and 2.0: extractive question answering, from the JSON files to answers and back.

* `load_squad` reads the official format ({"version", "data": [{"title", "paragraphs": [{"context", "qas":
  [{"id", "question", "answers": [{"text", "answer_start"}], "is_impossible"}]}]}]}); a missing field or an
  `answer_start` that does not point at its text stops with an error naming the file and the question id.
* `encode_squad` makes the features QA fine-tuning trains on: question and context as a pair, the context
  cut into windows of `max_length` tokens overlapping by `stride` tokens, the fast tokenizer's offset
  mapping kept to map tokens back to characters; start/end labels on the window that holds the whole
  answer, [CLS] (position 0) on windows without it and for unanswerable questions.
* `squad_predictions` turns the start/end scores of every window of a question into one answer: the best
  of the n-best start and end positions inside the context (end not before start, at most
  `max_answer_length` tokens) against the null score of [CLS] (the lowest over the windows), and returns
  the answers ("" where the null score beats the best span by more than `null_threshold`) and the
  null odds (null score minus best span score), as the official evaluation's files hold them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minilm.config.sections import QAWindows
from minilm.data import hub
from minilm.data.corpora import data_root
from minilm.errors import MiniLMError, require
from minilm.tasks.kinds import SPAN, TaskKind

SQUAD_TASKS = {"squad2": ("squad2", "hf:squad_v2"), "squad": ("squad", "hf:squad")}  # name: (folder, hub id)


@dataclass
class QAExample:
    id: str
    question: str
    context: str
    answers: list[tuple[str, int]]  # (text, character start); empty for an unanswerable question
    impossible: bool = False


@dataclass
class QAData:
    """One split of a question-answering task."""

    examples: list[QAExample]
    source: str
    metric: str = "squad"
    skipped: int = 0
    label_names: tuple | None = field(default=None, repr=False)  # no classes: the answers are spans

    @property
    def kind(self) -> TaskKind:
        return SPAN

    @property
    def num_labels(self) -> int:
        return SPAN.num_outputs(self)

    def head(self, n: int | None) -> "QAData":
        return QAData(self.examples[:n], self.source, self.metric, self.skipped)

    @property
    def golds(self) -> dict[str, list[str]]:
        """Question id -> gold answer texts ([] for an unanswerable question)."""
        return {e.id: [text for text, _ in e.answers] for e in self.examples}


def is_squad_task(task: str) -> bool:
    return task.lower() in SQUAD_TASKS


def _field(record: dict, key: str, kind: type, path: Path, qid: str | None):
    where = f"{path}: question {qid}" if qid else str(path)
    require(isinstance(record, dict) and key in record, f"{where}: missing field '{key}'")
    value = record[key]
    require(isinstance(value, kind), f"{where}: field '{key}' should be a {kind.__name__}")
    return value


def read_squad(path: Path) -> QAData:
    """Parse and check one SQuAD JSON file."""
    require(path.is_file(), f"SQuAD file not found: {path}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MiniLMError(f"{path}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
    examples = []
    for article in _field(document, "data", list, path, None):
        for paragraph in _field(article, "paragraphs", list, path, None):
            context = _field(paragraph, "context", str, path, None)
            for qa in _field(paragraph, "qas", list, path, None):
                qid = str(qa.get("id", "?")) if isinstance(qa, dict) else "?"
                question = _field(qa, "question", str, path, qid)
                _field(qa, "id", str, path, qid)
                impossible = bool(qa.get("is_impossible", False))
                answers = []
                for answer in ([] if impossible else _field(qa, "answers", list, path, qid)):
                    text = _field(answer, "text", str, path, qid)
                    start = _field(answer, "answer_start", int, path, qid)
                    require(context[start:start + len(text)] == text,
                            f"{path}: question {qid}: answer_start {start} does not point at its text {text!r}")
                    answers.append((text, start))
                require(impossible or answers, f"{path}: question {qid}: no answers and not marked is_impossible")
                examples.append(QAExample(qid, question.strip(), context, answers, impossible))
    require(examples, f"{path}: no questions in it")
    return QAData(examples, str(path))


def load_squad(task: str, split: str, task_dir: str | None = None) -> QAData:
    """`split` (train or dev) of squad2 / squad from task_dir (default DATA_ROOT/squad2), or the hub with "hf"."""
    folder, hub = SQUAD_TASKS[task.lower()]
    if task_dir == "hf":
        return _load_hub(hub[3:], split)
    directory = Path(task_dir) if task_dir else data_root() / folder
    require(directory.is_dir(), f"task directory not found: {directory}")
    return read_squad(directory / f"{split}.json")


def _load_hub(name: str, split: str) -> QAData:
    ds = hub.load_dataset(name, split={"dev": "validation"}.get(split, split))
    examples = [QAExample(r["id"], r["question"].strip(), r["context"],
                          list(zip(r["answers"]["text"], r["answers"]["answer_start"])),
                          not r["answers"]["text"]) for r in ds]
    return QAData(examples, f"hf:{name}/{split}")


@dataclass
class QAFeatures:
    """Windows of a split, indexable like a token cache: item i is a dict for `data.batches.pad_batch`."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    start_positions: list[int]
    end_positions: list[int]
    example_index: list[int]  # which question each window belongs to
    offsets: list[list[tuple[int, int] | None]]  # character span of each context token, None elsewhere

    def __post_init__(self):
        self.lengths = np.asarray([len(x) for x in self.input_ids])

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.input_ids[i],
                "token_type_ids": self.token_type_ids[i] if self.token_type_ids is not None else None,
                "start_positions": self.start_positions[i], "end_positions": self.end_positions[i]}


def _short_questions(questions: list[str], tokenizer, max_tokens: int) -> list[str]:
    """Questions cut to at most `max_tokens` tokens (at a token's end), so that a window always has room
    for context. SQuAD questions are far shorter; this guards windows of a small max_length."""
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    return [q if len(offsets) <= max_tokens else q[:offsets[max_tokens - 1][1]]
            for q, offsets in zip(questions, encoded["offset_mapping"])]


def encode_squad(data: QAData, tokenizer, max_length: int, stride: int) -> QAFeatures:
    """Windows of (question, context) pairs with start/end labels (see the module docstring)."""
    require(stride < max_length // 2, f"doc_stride {stride} must be under half of max_length {max_length}")
    questions = _short_questions([e.question for e in data.examples], tokenizer, max_length // 3)
    encoded = tokenizer(questions, [e.context for e in data.examples], truncation="only_second",
                        max_length=max_length, stride=stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True)
    starts, ends, offsets = [], [], []
    for i, sample in enumerate(encoded["overflow_to_sample_mapping"]):
        example = data.examples[sample]
        sequence = encoded.sequence_ids(i)
        window = [span if sequence[t] == 1 else None for t, span in enumerate(encoded["offset_mapping"][i])]
        offsets.append(window)
        start = end = 0  # [CLS]: no answer in this window
        if example.answers:
            text, first = example.answers[0]
            last = first + len(text)
            context = [t for t, span in enumerate(window) if span is not None]
            if context and window[context[0]][0] <= first and window[context[-1]][1] >= last:
                start = next(t for t in context if window[t][1] > first)
                end = next(t for t in reversed(context) if window[t][0] < last)
        starts.append(start)
        ends.append(end)
    return QAFeatures(encoded["input_ids"], encoded.get("token_type_ids"), starts, ends,
                      list(encoded["overflow_to_sample_mapping"]), offsets)


def squad_predictions(data: QAData, features: QAFeatures, start_logits: list[np.ndarray], end_logits: list[np.ndarray],
                      qa: QAWindows | None = None) -> tuple[dict[str, str], dict[str, float]]:
    """({question id: answer, "" for none}, {question id: null score - best span score}) from every window's
    start/end scores (each a 1-D array over that window's tokens); `qa` holds n_best, max_answer_length and
    null_threshold (the defaults when None)."""
    qa = qa or QAWindows()
    n_best, max_answer_length, null_threshold = qa.n_best, qa.max_answer_length, qa.null_threshold
    null = np.full(len(data.examples), np.inf)
    best = np.full(len(data.examples), -np.inf)
    text = [""] * len(data.examples)
    for f, (start, end) in enumerate(zip(start_logits, end_logits)):
        q = features.example_index[f]
        null[q] = min(null[q], start[0] + end[0])
        window = features.offsets[f]
        top_start = np.argsort(start)[::-1][:n_best]
        top_end = np.argsort(end)[::-1][:n_best]
        for s in top_start:
            if window[s] is None:
                continue
            for e in top_end:
                if window[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                score = start[s] + end[e]
                if score > best[q]:
                    best[q] = score
                    text[q] = data.examples[q].context[window[s][0]:window[e][1]]
    predictions, null_odds = {}, {}
    for q, example in enumerate(data.examples):
        # No valid span in any window: the question is answered with "" and its odds are a large number.
        odds = float(null[q] - best[q]) if np.isfinite(best[q]) else 1e9
        null_odds[example.id] = odds
        predictions[example.id] = "" if odds > null_threshold else text[q]
    return predictions, null_odds
