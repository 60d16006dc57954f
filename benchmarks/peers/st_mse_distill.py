"""sentence-transformers' own distillation recipe (run in runs/peers/st): the student learns the teacher's sentence
embeddings by `losses.MSELoss` with `SentenceTransformerTrainer`, as its model_distillation example trains (lr 1e-4,
10% warm-up, linear decay), from the same start, on the same text and batch as minilm's row, for its steps or for
its minutes (`--minutes`: the steps that fit, at the pace a short timing run of this recipe keeps on this machine;
on an Intel Xeon with AVX-512 its trainer took 0.6 s a step of a 3x256 student where minilm's took 0.19 s, so equal
steps would give it three times the time). A student narrower than its teacher gets a Dense layer to the teacher's
width first (kept, as the example keeps it).

Run: runs/peers/st/bin/python benchmarks/peers/st_mse_distill.py --teacher DIR --student DIR --text FILE
     (--steps N | --minutes M) --out DIR [--batch-size 32 --lr 1e-4 --max-length 128]
"""

import argparse
import json
import time
from pathlib import Path

import torch
import transformers
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer import losses
from sentence_transformers.sentence_transformer.modules import Dense

parser = argparse.ArgumentParser()
parser.add_argument("--teacher", required=True)
parser.add_argument("--student", required=True)
parser.add_argument("--text", required=True, help="one sentence per line")
budget = parser.add_mutually_exclusive_group(required=True)
budget.add_argument("--steps", type=int)
budget.add_argument("--minutes", type=float, help="train for the steps that fit these minutes")
parser.add_argument("--out", required=True)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--lr", type=float, default=1e-4)
parser.add_argument("--max-length", type=int, default=128)
parser.add_argument("--seed", type=int, default=42)
args = parser.parse_args()
torch.manual_seed(args.seed)
teacher = SentenceTransformer(args.teacher, device="cpu")
student = SentenceTransformer(args.student, device="cpu")
student.max_seq_length = args.max_length
texts = [line.strip() for line in Path(args.text).read_text().splitlines() if line.strip()]
start = time.perf_counter()
labels = teacher.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False)
teacher_seconds = time.perf_counter() - start
t_dim, s_dim = teacher.get_sentence_embedding_dimension(), student.get_sentence_embedding_dimension()
if s_dim != t_dim:  # as the example does for a student of another width
    student.append(Dense(s_dim, t_dim, activation_function=torch.nn.Identity()))
data = Dataset.from_dict({"sentence": texts, "label": [list(map(float, v)) for v in labels]})


def trainer_for(model, steps: int) -> SentenceTransformerTrainer:
    arguments = SentenceTransformerTrainingArguments(
        output_dir=str(Path(args.out) / "trainer"), max_steps=steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr, warmup_ratio=0.1, lr_scheduler_type="linear", seed=args.seed, logging_steps=100,
        save_strategy="no", report_to="none", dataloader_drop_last=True, use_cpu=True)
    return SentenceTransformerTrainer(model=model, args=arguments, train_dataset=data, loss=losses.MSELoss(model))


steps, seconds_a_step = args.steps, None
if args.minutes is not None:  # a timing run on a copy: its last 40 of 60 steps set the pace
    import copy

    probe = copy.deepcopy(student)
    marks = []

    class Clock(transformers.TrainerCallback):
        def on_step_end(self, *_, **__):
            marks.append(time.perf_counter())

    timing = trainer_for(probe, 60)
    timing.add_callback(Clock())
    timing.train()
    seconds_a_step = (marks[-1] - marks[19]) / (len(marks) - 20)
    steps = int(args.minutes * 60 / seconds_a_step)
    del probe, timing
trainer = trainer_for(student, steps)
start = time.perf_counter()
trainer.train()
seconds = time.perf_counter() - start
student.save(str(Path(args.out) / "model"))
record = {"steps": steps, "seconds_a_step_timed": seconds_a_step, "minutes_asked": args.minutes,
          "batch_size": args.batch_size, "lr": args.lr, "train_seconds": seconds, "teacher_seconds": teacher_seconds,
          "texts": len(texts), "dense_added": s_dim != t_dim}
(Path(args.out) / "run.json").write_text(json.dumps(record, indent=1))
print(json.dumps(record))
