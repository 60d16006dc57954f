"""`ModelSource`: a model resolved once, and loaded from what it holds."""

from __future__ import annotations

from minilm.models import loading
from minilm.models.source import resolve_model


def test_a_source_loads_its_model_without_reading_its_config_again(tiny_teacher_dir, monkeypatch):
    source = resolve_model(tiny_teacher_dir)
    tokenizer = source.tokenizer

    def read_again(*args, **kwargs):
        raise AssertionError("the config was read again")
    monkeypatch.setattr(loading, "load_model_config", read_again)
    model = source.load()
    assert model.config.hidden_size == source.config.hidden_size and source.tokenizer is tokenizer
    assert source.load(head="classification", num_labels=3).config.num_labels == 3
