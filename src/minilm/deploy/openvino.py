"""OpenVINO IR beside the ONNX graphs (`minilm export --openvino`): the plain float32 graph converted by OpenVINO
(`openvino.convert_model`), and with `--quantize int8` its static int8 form, quantized by NNCF on calibration text
(`nncf.quantize`, the transformer model type: activations' ranges measured on real sentences, not per call as
onnxruntime's dynamic int8 does), in sentence-transformers' layout:

    OUT/openvino/openvino_model.xml (+ .bin)                     float32, token-level: what
                                                                 SentenceTransformer(OUT, backend="openvino") reads
    OUT/openvino/openvino_model_qint8_quantized.xml              static int8 (`model_kwargs={"file_name": ...}`)
    OUT/openvino/openvino_model_pooled*.xml                      the pooled graphs (--pooling), for `deploy.serving`

OpenVINO reads the plain ONNX graph: onnxruntime's fused operators (com.microsoft.Attention, ...) are not in its
opset. `OpenVinoGraph` runs an IR with the calls an onnxruntime session answers (`get_inputs`, `run`), so the
export's checks and the serving path take either. Needs `pip install "minilm[openvino]"` (openvino, nncf; neither
depends on torch or transformers).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from minilm.errors import require

IR_DIR = "openvino"
CALIBRATION_SAMPLES = 300  # sentences NNCF measures activations on (its default subset)


def require_openvino() -> None:
    missing = [name for name in ("openvino", "nncf") if importlib.util.find_spec(name) is None]
    require(not missing, f"--openvino needs {' and '.join(missing)}: pip install 'minilm[openvino]'")


def ir_file(pooled: bool = False, int8: bool = False) -> str:
    """An IR's path inside the directory, as sentence-transformers names its OpenVINO files."""
    stem = "openvino_model_pooled" if pooled else "openvino_model"
    return f"{IR_DIR}/{stem}{'_qint8_quantized' if int8 else ''}.xml"


def convert(onnx_path: Path, xml_path: Path) -> None:
    """The ONNX graph as OpenVINO IR (xml and bin), its weights kept in float32."""
    import openvino as ov

    xml_path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml_path), compress_to_fp16=False)


def quantize(xml_path: Path, out_path: Path, feeds: list[dict[str, np.ndarray]]) -> None:
    """Static int8 of an IR by NNCF, its activation ranges measured on `feeds` (one dict of inputs per batch)."""
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(xml_path))
    names = {port.get_any_name() for port in model.inputs}
    dataset = nncf.Dataset(feeds, lambda feed: {k: v for k, v in feed.items() if k in names})
    quantized = nncf.quantize(model, dataset, model_type=nncf.ModelType.TRANSFORMER, subset_size=len(feeds))
    ov.save_model(quantized, str(out_path), compress_to_fp16=False)


def calibration_feeds(tokenizer, texts: list[str], max_length: int, batch_size: int = 1) -> list[dict]:
    """Tokenized calibration sentences, one feed per batch (int64, as the graphs take them)."""
    feeds = []
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=max_length,
                            return_tensors="np")
        feeds.append({k: np.asarray(v, dtype=np.int64) for k, v in encoded.items()})
    return feeds


class OpenVinoGraph:
    """An IR compiled for the CPU, answering what an onnxruntime session answers: `get_inputs()`, `get_outputs()`
    (objects with `.name`) and `run(output_names, feed)` -> the outputs as numpy arrays. One stream, `threads`
    threads (all when None), latency hint: what a request-at-a-time server runs. `exact`: float32 arithmetic where
    the graph has no int8 (OpenVINO otherwise computes in bf16 on a CPU that has it, as it serves by default)."""

    def __init__(self, path: Path, threads: int | None = None, exact: bool = True):
        import openvino as ov

        config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
        if exact:
            config["INFERENCE_PRECISION_HINT"] = "f32"
        if threads:
            config["INFERENCE_NUM_THREADS"] = str(threads)
        self.model = ov.Core().compile_model(str(path), "CPU", config)
        self.request = self.model.create_infer_request()
        self.input_names = [port.get_any_name() for port in self.model.inputs]
        self.output_names = [port.get_any_name() for port in self.model.outputs]

    def get_inputs(self):
        return [SimpleNamespace(name=name) for name in self.input_names]

    def get_outputs(self):
        return [SimpleNamespace(name=name) for name in self.output_names]

    def run(self, names, feed: dict) -> list[np.ndarray]:
        result = self.request.infer({k: v for k, v in feed.items() if k in self.input_names})
        by_name = {port.get_any_name(): value for port, value in result.items()}
        return [np.asarray(by_name[name]) for name in (names or self.output_names)]
