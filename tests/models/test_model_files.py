"""The one guard on model folders: a damaged JSON or a cut-off weights file is one line naming the file and what to
do, which depends on where the folder came from (a copy, the packaged model's cache, an installed package)."""

from __future__ import annotations

import shutil

import pytest

from minilm.errors import MiniLMError
from minilm.models.loading import resolve_model_path
from minilm.models.model_files import check_model_folder


def test_a_cut_off_weights_file_in_the_unpacked_cache_names_the_folder_to_delete(tiny_teacher_dir, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setenv("MINILM_CACHE", str(tmp_path / "cache"))
    unpacked = tmp_path / "cache" / "all-mpnet-base-v2-eb8d12eec2a0"
    shutil.copytree(tiny_teacher_dir, unpacked)
    check_model_folder(unpacked)  # whole: no error
    weights = unpacked / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(MiniLMError, match=f"weights file {weights} is damaged or incomplete .*bytes of the .*; "
                                          f"delete the folder {unpacked} and minilm unpacks it again"):
        resolve_model_path(str(unpacked))


def test_a_damaged_json_in_a_module_folder_names_the_file_and_the_model_folder(sentence_teacher, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(sentence_teacher, copy)
    (copy / "1_Pooling" / "config.json").write_text("{")
    with pytest.raises(MiniLMError, match=f"{copy / '1_Pooling' / 'config.json'} is damaged: not valid JSON .*copy "
                                          f"the model folder {copy} again"):
        resolve_model_path(str(copy))
    (copy / "1_Pooling" / "config.json").write_text("[]")  # valid JSON, but not the object a Pooling config is
    from minilm.models.sentence import pipeline_of

    with pytest.raises(MiniLMError, match="1_Pooling/config.json is damaged: not a JSON object"):
        pipeline_of(str(copy))
