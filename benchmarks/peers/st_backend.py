"""sentence-transformers' own exports and its backends (run in runs/peers/st-onnx or runs/peers/st-ov, each with the
optimum package its backend needs):

    st_backend.py export onnx MODEL_DIR OUT      backend="onnx", then export_dynamic_quantized_onnx_model(avx512_vnni,
                                                 or avx2 on a CPU without VNNI): onnx/model_qint8_<config>.onnx
    st_backend.py export openvino MODEL_DIR OUT [--glue-sst2 TSV]   backend="openvino", then
                                                 export_static_quantized_openvino_model (OVQuantizationConfig's
                                                 defaults; its calibration text, GLUE SST-2's training sentences,
                                                 read from TSV offline): openvino/openvino_model_qint8_...
    st_backend.py time BACKEND DIR FILE_NAME --texts F      one round: sentences/s at batch 1 (first 256) and 32
    st_backend.py embed BACKEND DIR FILE_NAME --texts F --out X.npy    the embeddings of the texts (batch 32)

Each loads with `SentenceTransformer(DIR, backend=BACKEND, model_kwargs={"file_name": FILE_NAME})`: what a user of
sentence-transformers writes, minilm's exports included. OMP_NUM_THREADS threads (1 if unset), given to the
runtime's own setting too.
"""

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer


def load(backend: str, directory: str, file_name: str | None):
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))  # the caller's thread count, given to the runtime too
    kwargs = {"file_name": file_name} if file_name else {}
    if backend == "openvino":
        kwargs["ov_config"] = {"INFERENCE_NUM_THREADS": str(threads), "NUM_STREAMS": "1",
                               "PERFORMANCE_HINT": "LATENCY"}
    elif backend == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        kwargs["session_options"] = options
    return SentenceTransformer(directory, backend=backend, device="cpu", model_kwargs=kwargs)


def offline_glue_sst2(train_tsv: str) -> None:
    """sentence-transformers calibrates its static int8 on GLUE SST-2's training sentences, loaded from the Hub;
    offline, the same split is read from a local copy (its TSV) wherever `datasets.load_dataset` is asked for it."""
    import datasets

    hub_load = datasets.load_dataset

    def load_dataset(path, *args, **kwargs):
        if path in ("nyu-mll/glue", "glue") and kwargs.get("name", args[0] if args else None) == "sst2":
            return datasets.load_dataset("csv", data_files={"train": train_tsv}, delimiter="\t",
                                         split=kwargs.get("split", "train"))
        return hub_load(path, *args, **kwargs)

    datasets.load_dataset = load_dataset


def export(backend: str, model_dir: str, out: str, glue_sst2: str | None = None) -> None:
    shutil.copytree(model_dir, out, dirs_exist_ok=True)
    model = SentenceTransformer(out, backend=backend, device="cpu")
    model.save(out)  # the float32 export, in onnx/ or openvino/
    if backend == "onnx":
        from sentence_transformers import export_dynamic_quantized_onnx_model

        flags = open("/proc/cpuinfo").read()  # optimum's presets are named by CPU: the one this CPU runs
        config = "avx512_vnni" if "avx512_vnni" in flags else "avx2"
        export_dynamic_quantized_onnx_model(model, config, out)
    else:
        from optimum.intel import OVQuantizationConfig
        from sentence_transformers import export_static_quantized_openvino_model

        if glue_sst2:
            offline_glue_sst2(glue_sst2)
        export_static_quantized_openvino_model(model, OVQuantizationConfig(), out)
    print(json.dumps({"files": sorted(str(p.relative_to(out)) for p in Path(out).rglob("*.onnx"))
                      + sorted(str(p.relative_to(out)) for p in Path(out).rglob("*.xml"))}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("export", "time", "embed"))
    parser.add_argument("backend", choices=("onnx", "openvino", "torch"))
    parser.add_argument("directory")
    parser.add_argument("target", nargs="?")
    parser.add_argument("--texts")
    parser.add_argument("--out")
    parser.add_argument("--glue-sst2", help="GLUE SST-2's train.tsv, read where the OpenVINO export asks the Hub for it")
    args = parser.parse_args()
    if args.what == "export":
        return export(args.backend, args.directory, args.target, args.glue_sst2)
    model = load(args.backend, args.directory, args.target)
    texts = [line for line in open(args.texts, encoding="utf-8").read().splitlines() if line.strip()]
    if args.what == "embed":
        np.save(args.out, model.encode(texts, batch_size=32, show_progress_bar=False))
        return
    rates = {}
    for batch, chosen in ((1, texts[:256]), (32, texts)):
        model.encode(chosen[:batch], batch_size=batch, show_progress_bar=False)
        start = time.perf_counter()
        model.encode(chosen, batch_size=batch, show_progress_bar=False)
        rates[str(batch)] = len(chosen) / (time.perf_counter() - start)
    print(json.dumps(rates))


if __name__ == "__main__":
    main()
