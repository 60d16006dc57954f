"""One round of Model2Vec's own encoding speed (run in runs/peers/m2v): text in, embedding out, one thread, the
first 256 texts one at a time and all of them at batch 32, after a warm-up. Prints {"1": rate, "32": rate}.

Run: OMP_NUM_THREADS=1 runs/peers/m2v/bin/python benchmarks/peers/model2vec_speed.py MODEL_DIR --texts FILE
"""

import argparse
import json
import time

from model2vec import StaticModel

parser = argparse.ArgumentParser()
parser.add_argument("model")
parser.add_argument("--texts", required=True)
args = parser.parse_args()
model = StaticModel.from_pretrained(args.model)
texts = [line for line in open(args.texts, encoding="utf-8").read().splitlines() if line.strip()]
rates = {}
for batch, chosen in ((1, texts[:256]), (32, texts)):
    model.encode(chosen[:batch], batch_size=batch, show_progress_bar=False)
    start = time.perf_counter()
    for i in range(0, len(chosen), batch):
        model.encode(chosen[i:i + batch], batch_size=batch, show_progress_bar=False)
    rates[str(batch)] = len(chosen) / (time.perf_counter() - start)
print(json.dumps(rates))
