"""int8 per target CPU: the schemes (per channel always, 7-bit weights for AVX2), graphs that compute in integers,
and what a user cares about on a model whose weights are trained (the packaged all-MiniLM-L6-v2): embeddings
close to PyTorch's and zero-shot STS-B within a stated tolerance of float32, on any CPU this runs on.

On a CPU without VNNI the full-range schemes (avx512_vnni, arm64) run through int8 products that saturate, and
still hold these bounds (measured on an AVX2-only AMD EPYC: sample cosine >= 0.963, STS-B dev slice cosine >= 0.986,
Spearman 0.25 below float32); on a VNNI or ARM CPU they compute closer still.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from minilm.deploy.cpu_target import TARGETS
from minilm.deploy.quantize import SCHEMES, int8_operators, quantize_int8

SAMPLE_COSINE = 0.95  # every sample sentence's int8 embedding against PyTorch's (short ones move most)
STS_COSINE_MEAN, STS_COSINE_MIN = 0.985, 0.95  # STS-B dev sentences
STS_SPEARMAN_DROP = 1.0  # zero-shot Spearman x 100 on the slice: int8 at most this far below float32
STS_PAIRS = 150


def test_every_target_has_a_per_channel_scheme():
    assert set(SCHEMES) == set(TARGETS)
    for target, scheme in SCHEMES.items():
        assert scheme.target == target and scheme.per_channel and scheme.weight_type == "QInt8"
        assert scheme.reduce_range == (target == "avx2")  # 7-bit weights where products would saturate


def int8_weights(path) -> list[np.ndarray]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    return [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and t.dims]


@pytest.mark.parametrize("fused", [False, True])
def test_quantized_graphs_compute_in_integers_within_their_schemes_range(fused, tmp_path, tokenizer):
    from helpers.models import tiny_bert

    from minilm.deploy.fusion import fuse
    from minilm.deploy.onnx_export import export_graph

    model = tiny_bert(init_range=0.2)
    export_graph(model, None, dict(tokenizer(["short", "a longer one"], padding=True, return_tensors="pt")),
                 tmp_path / "f32.onnx", "torchscript")
    if fused:
        fuse(tmp_path / "f32.onnx", tmp_path / "fused.onnx", model.config)
    source = tmp_path / ("fused.onnx" if fused else "f32.onnx")
    for target in ("avx2", "avx512_vnni"):
        quantize_int8(source, tmp_path / f"{target}.onnx", SCHEMES[target], fused)
        operators = int8_operators(tmp_path / f"{target}.onnx")
        assert operators.get("MatMulInteger") and ("QAttention" in operators) == fused, operators
        assert (tmp_path / f"{target}.onnx").stat().st_size < 0.4 * source.stat().st_size
        largest = max(int(np.abs(w.astype(int)).max()) for w in int8_weights(tmp_path / f"{target}.onnx"))
        assert largest <= 64 if target == "avx2" else largest > 64  # 7-bit weights, or the full range
    assert not int8_operators(source)


@pytest.fixture(scope="module")
def packaged_graphs(tmp_path_factory, packaged_dir):
    """The packaged teacher's fused float32 graph and its int8 forms (one per distinct scheme), the PyTorch model."""
    from minilm.deploy.fusion import fuse
    from minilm.deploy.onnx_export import export_graph
    from minilm.models.loading import load_encoder, load_tokenizer

    directory = tmp_path_factory.mktemp("packaged_int8")
    model, tokenizer = load_encoder(packaged_dir, attn_implementation="eager").eval(), load_tokenizer(packaged_dir)
    export_graph(model, None, dict(tokenizer(["short", "a longer one"], padding=True, return_tensors="pt")),
                 directory / "traced.onnx", "torchscript")
    fuse(directory / "traced.onnx", directory / "float32.onnx", model.config)
    graphs = {"float32": directory / "float32.onnx"}
    for target in ("avx2", "avx512_vnni"):  # arm64's scheme is avx512_vnni's (asserted below)
        quantize_int8(directory / "float32.onnx", directory / f"{target}.onnx", SCHEMES[target], fused=True)
        graphs[target] = directory / f"{target}.onnx"
    return model, tokenizer, graphs


def test_int8_keeps_the_packaged_teachers_embeddings_on_sample_sentences(packaged_graphs, packaged_dir):
    from minilm.deploy.checks import Reference
    from minilm.deploy.onnx_model import session
    from minilm.models.sentence import pipeline_of

    model, tokenizer, graphs = packaged_graphs
    reference = Reference(model, None, tokenizer, ["input_ids", "attention_mask", "token_type_ids"],
                          pipeline_of(packaged_dir))
    assert reference.check(session(graphs["float32"]))["cosine_min"] > 0.99999
    assert SCHEMES["arm64"].record() | {"target": "avx512_vnni"} == SCHEMES["avx512_vnni"].record()
    for target in ("avx2", "avx512_vnni"):
        checks = reference.check(session(graphs[target]))
        assert checks["cosine_min"] >= SAMPLE_COSINE, (target, checks)


def sts_slice(root, pairs: int) -> tuple[list[str], list[str], np.ndarray]:
    path = root / "stsb" / "sts-dev.csv"
    if not path.is_file():
        pytest.skip(f"STS-B not found at {path}")
    with open(path, encoding="utf-8") as handle:
        rows = [r for r in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if len(r) >= 7][:pairs]
    return [r[5] for r in rows], [r[6] for r in rows], np.array([float(r[4]) for r in rows])


def test_int8_keeps_zero_shot_sts_of_the_packaged_teacher(packaged_graphs, packaged_dir, data_root):
    from scipy.stats import spearmanr

    from minilm.deploy.onnx_model import session
    from minilm.models.sentence import embed, pipeline_of

    model, tokenizer, graphs = packaged_graphs
    left, right, gold = sts_slice(data_root, STS_PAIRS)
    pipeline = pipeline_of(packaged_dir)

    def encode(run, texts):
        batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        return embed(run(batch), batch["attention_mask"], pipeline)

    def spearman(a, b):
        return 100 * spearmanr(torch.nn.functional.cosine_similarity(a, b).numpy(), gold)[0]

    with torch.no_grad():
        want = [encode(lambda b: model(**b).last_hidden_state, texts) for texts in (left, right)]
    scores = {"pytorch": spearman(*want)}
    for name, path in graphs.items():
        graph = session(path)

        def run(batch):
            return torch.from_numpy(graph.run(["last_hidden_state"], {k: v.numpy() for k, v in batch.items()})[0])
        have = [encode(run, texts) for texts in (left, right)]
        cosine = torch.cat([torch.nn.functional.cosine_similarity(h, w) for h, w in zip(have, want)])
        scores[name] = spearman(*have)
        if name == "float32":
            assert float(cosine.min()) > 0.99999 and abs(scores[name] - scores["pytorch"]) < 0.01
        else:
            assert float(cosine.mean()) >= STS_COSINE_MEAN and float(cosine.min()) >= STS_COSINE_MIN, (name, cosine)
            assert scores[name] >= scores["float32"] - STS_SPEARMAN_DROP, scores
