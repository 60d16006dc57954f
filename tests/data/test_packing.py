"""Pretraining-style examples: documents, packing to full length, sentence pairs and their token types."""

from __future__ import annotations

import numpy as np
import pytest

from minilm.config.sections import Corpus
from minilm.data.batches import StepBatches
from minilm.data.corpora import resolve
from minilm.data.packing import Packer, Template
from minilm.data.token_cache import build_token_cache


def read_document_lines(spec, column, boundary):
    (source,) = resolve([spec])
    return source.lines(column, boundary)


def packed_cache(corpus, tokenizer, cache_dir, **settings):
    return build_token_cache(tokenizer, 32, Corpus(data=[str(corpus)], cache_dir=str(cache_dir), **settings),
                             progress=False)


BERT = Template(single=([101], [102]), pair=([101], [102], [102]), second_type_from=0)


def test_bert_template_is_read_off_the_tokenizer(tokenizer):
    assert Template.of(tokenizer) == BERT


def test_a_roberta_style_template_has_no_second_token_type():
    class RobertaLike:  # <s> A </s></s> B </s>, every token type 0
        def __call__(self, a, b=None, add_special_tokens=True):
            ids = {"alpha": [11], "beta": [12]}
            if not add_special_tokens:
                return {"input_ids": ids[a]}
            tokens = [0] + ids[a] + [2] + ([2] + ids[b] + [2] if b else [])
            return {"input_ids": tokens}

    template = Template.of(RobertaLike())
    assert template == Template(single=([0], [2]), pair=([0], [2, 2], [2]), second_type_from=None)
    packer = Packer(template, max_length=8, pair_fraction=1.0, cross_documents=False)
    (tokens, start), = packer.add(list(range(100, 104)), True)  # room: 8 - 4 specials = 4
    assert tokens[0] == 0 and tokens[-1] == 2 and start == 0  # a pair, but no token type 1


def documents(sizes, base=1000):
    """Documents of distinct token ranges, so that an example's tokens tell which document they came from."""
    return [list(range(base + 1000 * d, base + 1000 * d + n)) for d, n in enumerate(sizes)]


def test_packing_fills_max_length_and_never_crosses_a_document():
    packer = Packer(BERT, max_length=16, pair_fraction=0.0, cross_documents=False)
    out = []
    for doc in documents([40, 5, 33]):
        for start in range(0, len(doc), 7):  # a document arrives as several lines
            out += packer.add(doc[start:start + 7], start == 0)
    out += packer.flush()
    contents = [tokens[1:-1] for tokens, _ in out]
    assert all(tokens[0] == 101 and tokens[-1] == 102 and len(tokens) <= 16 for tokens, _ in out)
    assert [len(c) for c in contents] == [14, 14, 12, 5, 14, 14, 5]  # full, full, the rest; ...
    assert all(len({t // 1000 for t in c}) == 1 for c in contents)  # one document each
    assert sum(contents, []) == sum(documents([40, 5, 33]), [])  # every token once, in order


def test_crossing_documents_when_asked():
    packer = Packer(BERT, max_length=16, pair_fraction=0.0, cross_documents=True)
    out = []
    for doc in documents([10, 10]):
        out += packer.add(doc, True)
    out += packer.flush()
    assert [len(t) - 2 for t, _ in out] == [14, 6] and len({x // 1000 for x in out[0][0][1:-1]}) == 2


def test_pairs_are_consecutive_spans_with_token_types_from_b():
    packer = Packer(BERT, max_length=20, pair_fraction=0.5, cross_documents=False)
    out = packer.add(list(range(5000, 5000 + 17 * 400)), True)
    pairs = [(t, s) for t, s in out if s > 0]
    assert 0.4 < len(pairs) / len(out) < 0.6
    for tokens, start in pairs:
        assert len(tokens) == 20 and tokens[0] == 101 and tokens[-1] == 102
        assert tokens[start - 1] == 102 and tokens.count(102) == 2  # [CLS] A [SEP] | B [SEP]
        a, b = tokens[1:start - 1], tokens[start:-1]
        assert a and b and b[0] == a[-1] + 1  # B continues A in the document
    singles = [t for t, s in out if s == 0]
    assert all(len(t) == 20 and t.count(102) == 1 for t in singles)


def test_document_lines_by_boundary(tmp_path):
    text = tmp_path / "wiki.txt"
    text.write_text(" = Lobster = \n\n Lobsters are large .\n They live in the sea .\n\n = = Biology = = \n\n"
                    " Claws .\n = Crab = \n\n Crabs walk sideways .\n")

    def starts(boundary):
        return [text for new, text in read_document_lines(str(text), None, boundary) if new]

    assert starts("heading") == ["= Lobster =", "= Crab ="]  # section headings (= = x = =) start nothing
    assert starts("blank") == ["= Lobster =", "Lobsters are large .", "= = Biology = =", "Claws .",
                               "Crabs walk sideways ."]
    assert len(starts("line")) == 7 and starts("file") == ["= Lobster ="]
    rows = tmp_path / "rows.tsv"
    rows.write_text("text\none row\nanother row\n")
    assert [new for new, _ in read_document_lines(str(rows), None, "file")] == [True, True]  # a record each


def test_packed_cache_items_carry_token_types_and_batch(tmp_path, tokenizer):
    corpus = tmp_path / "c.txt"
    corpus.write_text(("the cat sat on the mat and the dog ran under the tree near the house . " * 3 + "\n") * 30)
    packed = packed_cache(corpus, tokenizer, tmp_path / "cache", document_boundary="file")
    line = packed_cache(corpus, tokenizer, tmp_path / "cache", examples="line")
    assert packed.directory != line.directory  # the settings are part of the cache key
    assert line.segments is None and isinstance(line[0], np.ndarray)
    assert np.mean(packed.lengths == 32) > 0.9 and 0.3 < np.mean(packed.segments > 0) < 0.7
    again = packed_cache(corpus, tokenizer, tmp_path / "cache2", document_boundary="file")
    assert np.array_equal(np.asarray(again.tokens), np.asarray(packed.tokens))  # deterministic
    batch = StepBatches(packed, 8, tokenizer.pad_token_id, seed=0)[0]
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids"}
    assert batch["token_type_ids"].max() == 1 and batch["token_type_ids"][batch["attention_mask"] == 0].sum() == 0


def test_example_settings_are_checked():
    from minilm.errors import MiniLMError

    with pytest.raises(MiniLMError, match="examples must be one of line, packed"):
        Corpus(examples="sentences")
    with pytest.raises(MiniLMError, match="document_boundary must be one of auto, blank, heading, line, file"):
        Corpus(document_boundary="chapter")
