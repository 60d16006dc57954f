"""Model2Vec's distillation of a teacher (run in runs/peers/m2v): static token embeddings from the teacher's own
outputs, PCA to --pca-dims, Zipf weighting, no text; saved as Model2Vec saves it and as a sentence-transformers
model (its StaticEmbedding), so that minilm's evaluation reads it. Prints the CPU time it took.

Run: runs/peers/m2v/bin/python benchmarks/peers/model2vec_distill.py TEACHER_DIR OUT_DIR [--pca-dims 256]
"""

import argparse
import json
import time
from pathlib import Path

from model2vec.distill import distill
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding

parser = argparse.ArgumentParser()
parser.add_argument("teacher")
parser.add_argument("out")
parser.add_argument("--pca-dims", type=int, default=256)
args = parser.parse_args()
start, cpu = time.perf_counter(), time.process_time()
model = distill(model_name=args.teacher, pca_dims=args.pca_dims)
seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
out = Path(args.out)
model.save_pretrained(str(out / "model2vec"))
SentenceTransformer(modules=[StaticEmbedding.from_model2vec(str(out / "model2vec")), Normalize()],
                    device="cpu").save(str(out / "sentence-transformers"))
(out / "distill.json").write_text(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds,
                                              "pca_dims": args.pca_dims, "teacher": args.teacher}, indent=1))
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds}))
