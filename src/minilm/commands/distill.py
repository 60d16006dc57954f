"""`minilm distill`: distil a teacher into a student, as a recipe read top to bottom (`Distillation.run`):

    settings -> teacher -> data -> plan -> student -> objective -> loop -> save

1. start: the run directory checked against the settings (nothing written), the precision said, the seed set; a
   finished run says so and returns before anything is loaded.
2. teacher: resolved once (`models.source`), loaded frozen: an encoder, or for a task-specific run the teacher
   fine-tuned on the task, with its head.
3. data: the run's text as the teacher tokenizes it (a token cache of the corpus, or the task's training split),
   and as the student does when it reads text its own way.
4. plan (`models.plan`): the checkpoint's when the run resumes, else decided here: the shape (given, or timed on
   this CPU for `--speedup`), the start, and for a pruned start the units kept, measured on the run's own text.
5. student: built as the plan says (`models.students`), its plan in its config.
6. objective (`objectives`): its terms; the teacher's readings kept on disk when they can be (`--teacher-cache`),
   so that the teacher does not run while the student trains; training-only parameters started from the data.
7. loop: `train.loop.fit`.
8. save: the student in `output_dir/model` (in its teacher's sentence-transformers layout when the teacher has one,
   with the embedding objective's projection when the widths differ and it is kept), or for a task-specific run
   the best dev checkpoint in `best/` and `metrics.json`.

Where task-agnostic and task-specific runs differ is one place: `Text` and `TaskText`. Only the main process
speaks (`Runtime.say`) and writes; one process times shapes and measures importances, the others take its
answer (`Runtime.from_main`).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from minilm.config.commands import DistillConfig
from minilm.config.sections import EVAL_BATCH_SIZE, static_obstacle
from minilm.data.batches import StepBatches
from minilm.data.files import write_atomic
from minilm.data.token_cache import build_token_cache
from minilm.errors import MiniLMError, require
from minilm.measure.shape_speed import time_shapes
from minilm.models.architectures import family_of
from minilm.models.loading import check_max_length, freeze, resolve_model_path, save_model
from minilm.models.plan import RunText, TeacherId, plan_student, read_plan
from minilm.models.sentence import save_sentence_transformer
from minilm.models.source import ModelSource, resolve_model
from minilm.models.speed_table import SHAPES_FILE
from minilm.models.students import build_student, own_tokenizer_of
from minilm.objectives import Combined, build_objective, distill_losses
from minilm.objectives.teacher_cache import keep_teacher
from minilm.tasks import describe_splits, encode, load_task, max_length_for, task_kind_of
from minilm.tasks.kinds import SPAN, kind_of_model
from minilm.tasks.scoring import evaluate_model
from minilm.train.loop import Recipe, fit, nothing_left, start
from minilm.train.run_dir import TRAINED_AGAINST, identity, list_checkpoints
from minilm.train.summary import write_summary


class Text:
    """Task-agnostic distillation: unlabeled text (`--data`), an encoder teacher, no dev split; the student is
    handed over from `output_dir/model`."""

    kind = None

    def __init__(self, cfg: DistillConfig):
        self.cfg = cfg

    def handed_over(self, out: Path) -> Path:
        return out / "model"

    def finished(self, out: Path) -> bool:
        return (out / "model").is_dir()

    def load_teacher(self, source: ModelSource):
        """An encoder; for the distilbert objective the masked-LM model when the checkpoint has that head (its soft
        targets)."""
        cfg = self.cfg
        wants_head = "distilbert" in cfg.objective.objective and cfg.distilbert.distilbert_mlm != "off"
        return source.load(head="masked-lm" if wants_head and source.head == "masked-lm" else None)

    def examples(self, tokenizer, max_length: int, runtime):
        return build_token_cache(tokenizer, max_length, self.cfg.corpus, progress=runtime.is_main_process)

    def what(self) -> str:
        return f"the corpus ({', '.join(self.cfg.corpus.data)})"

    def name_student(self, student) -> None:
        """An encoder has no classes to name."""

    def evaluator(self, student, tokenizer, max_length: int, device):
        return None

    def finish(self, out: Path, result, max_length: int) -> None:
        """Nothing beyond the model: a task-agnostic run has no dev scores."""


class TaskText(Text):
    """Task-specific distillation (`--task`): the task's training split, a teacher fine-tuned on it, the dev split
    scored as the run goes; the best dev checkpoint is handed over from `best/`, with `metrics.json`."""

    def __init__(self, cfg: DistillConfig):
        super().__init__(cfg)
        self.train, self.dev, self.dev_features, self.kind = None, None, None, None

    def handed_over(self, out: Path) -> Path:
        return out / "best"

    def finished(self, out: Path) -> bool:
        return (out / "model").is_dir() and (out / "metrics.json").is_file()

    def load_teacher(self, source: ModelSource):
        cfg = self.cfg
        kind = kind_of_model(source.config)
        wanted = task_kind_of(cfg.task) or kind
        require(kind is not None and (kind is SPAN) == (wanted is SPAN),
                f"task-specific distillation needs a teacher fine-tuned on {cfg.task.task} "
                f"(run: minilm finetune --model {cfg.teacher} --task {cfg.task.task})")
        self.kind, self.teacher_outputs = kind, source.config.num_labels
        return source.load(head=kind.head, num_labels=None if kind is SPAN else source.config.num_labels)

    def examples(self, tokenizer, max_length: int, runtime):
        """The training split encoded (and the dev split's windows, for SQuAD), checked against the teacher's head."""
        cfg, kind = self.cfg, self.kind
        self.train = load_task(cfg.task, "train")
        self.dev = load_task(cfg.task, "dev", label_names=self.train.label_names)
        for line in describe_splits(self.train, self.dev):
            runtime.say(line)
        self.train.kind.check_training_split(self.train)
        require(self.train.kind is kind, f"the teacher is fine-tuned for {kind.name} but {self.train.source} is a "
                                         f"{self.train.kind.name} task")
        require(kind is SPAN or self.teacher_outputs == self.train.num_labels,
                f"teacher has {self.teacher_outputs} outputs but task {cfg.task.task} has {self.train.num_labels}")
        if kind is SPAN:
            self.dev_features = encode(self.dev, tokenizer, max_length, cfg.qa.doc_stride)
        return encode(self.train, tokenizer, max_length, cfg.qa.doc_stride)

    def what(self) -> str:
        return f"the training split of {self.cfg.task.task}"

    def name_student(self, student) -> None:
        self.kind.name_model(student.config, self.train)

    def evaluator(self, student, tokenizer, max_length: int, device):
        def evaluate():
            return evaluate_model(student, tokenizer, self.dev, max_length, EVAL_BATCH_SIZE, device, qa=self.cfg.qa,
                                  features=self.dev_features)
        return evaluate

    def finish(self, out: Path, result, max_length: int) -> None:
        if result.best is not None:
            write_summary(out, self.cfg.teacher, self.cfg.task, self.dev, result.best, result.step, result.seconds,
                          max_length, result.accelerator.device, self.cfg.qa)


def trained_against(cfg: DistillConfig) -> dict[str, tuple[str, str]]:
    """The models the run reads, by role, for its identity (`run_dir.identity`): the teacher, and the model the
    student starts from when it is one."""
    models = {"teacher": (cfg.teacher, resolve_model_path(cfg.teacher))}
    init = cfg.student.student_init
    if not cfg.student.new_model:
        models["student_init"] = (init, resolve_model_path(init))
    return models


def check_own_tokenizer(cfg: DistillConfig, own_tokenizer) -> None:
    """A student with a tokenizer of its own learns sentence embeddings alone, one truncated line per example, from
    the teacher's kept embeddings (the objectives that compare token by token, or packed token streams, would not
    line up, and the teacher cannot read the student's tokens)."""
    if own_tokenizer is None:
        return
    init = cfg.student.student_init
    require(cfg.objective.objective == ["embedding"] and not cfg.task.task,
            f"teacher and student tokenizers differ ({init} reads text its own way): such a student learns sentence "
            "embeddings alone (--objective embedding, task-agnostic); for the other objectives start from a model "
            "with the teacher's tokenizer")
    require(cfg.corpus.examples == "sentence",
            f"teacher and student tokenizers differ ({init}): examples must be whole sentences that both tokenize "
            "(--examples sentence), not token windows or packed sequences")
    require(cfg.objective.teacher_cache != "off",
            f"teacher_cache off runs the teacher in the loop on the student's tokens, but {init} reads text with a "
            "tokenizer of its own that the teacher cannot read; use --teacher-cache auto or on (the teacher then "
            "embeds each text once, through its own tokenizer)")


class Distillation:
    """One `minilm distill` run: the recipe's steps, in the order `run` takes them."""

    def __init__(self, cfg: DistillConfig):
        self.cfg, self.training = cfg, cfg.training
        self.text = TaskText(cfg) if cfg.task.task else Text(cfg)
        self.max_length = max_length_for(cfg.training.max_length, cfg.task if cfg.task.task else None)
        self.out = Path(cfg.training.output_dir)
        self.table = None  # the speed table a new --speedup student was chosen from

    def run(self) -> Path:
        """Run (or resume) the distillation; returns the directory of the student it hands over: the final student,
        or for a task-specific run the best one on the dev split (`best/`)."""
        self.runtime = start(self.training, identity(self.cfg, trained_against(self.cfg)))
        done = nothing_left(self.runtime)
        if done is not None and self.text.finished(self.out):  # no teacher, data or cache is built for nothing
            self.runtime.say(done)
            return self.text.handed_over(self.out)
        source, teacher = self.teacher()
        examples, student_examples, tokenizer = self.data(source)
        plan = self.plan(source, teacher, examples)
        student = self.student(plan, teacher)
        objective, student_examples, teacher = self.objective(source, plan, teacher, student, examples,
                                                              student_examples, tokenizer)
        result = self.loop(objective, student, student_examples, tokenizer, teacher)
        self.save(result, student, objective, source, tokenizer)
        return self.text.handed_over(self.out)

    def teacher(self):
        source = resolve_model(self.cfg.teacher)
        teacher = self.text.load_teacher(source)
        check_max_length(self.max_length, teacher.config, "teacher")
        return source, freeze(teacher).to(self.runtime.device)

    def data(self, source: ModelSource):
        """The run's examples as the teacher tokenizes them, as the student does (the same, unless the student reads
        text its own way), and the student's tokenizer."""
        own = own_tokenizer_of(self.cfg.student, source.tokenizer)  # the student's tokenizer if it differs
        check_own_tokenizer(self.cfg, own)
        with self.runtime.main_process_first():  # a token cache is written once, then read by every rank
            examples = self.text.examples(source.tokenizer, self.max_length, self.runtime)
            student_examples = examples if own is None else self.text.examples(own, self.max_length, self.runtime)
        require(len(student_examples) == len(examples), "the teacher's and the student's tokenizations of the corpus "
                                                        "differ in length; use --examples sentence")
        return examples, student_examples, own or source.tokenizer

    def plan(self, source: ModelSource, teacher, examples):
        """The checkpoint's plan when the run resumes (a shape is never chosen anew behind a checkpoint's back),
        else the one decided here, by the main process, for every rank."""
        resume = self.runtime.resume_from
        if resume is not None:
            require((resume / "model" / "config.json").is_file(),
                    f"checkpoint {resume} is incomplete or damaged (no model/config.json); delete it to resume from "
                    "the one before, or pass --overwrite to start afresh")
            plan = read_plan(resolve_model(str(resume / "model")).config)
            require(plan is not None, f"checkpoint {resume} holds a student without its plan (a run of an earlier "
                                      "minilm): pass --overwrite to start afresh")
            self.runtime.say(f"{plan.describe()} (the checkpoint's plan)")
        else:
            plan = self.new_plan(source, teacher, examples)
        if plan.start == "static":
            self.static_objective()
        return plan

    def new_plan(self, source: ModelSource, teacher, examples):
        student, teacher_id = self.cfg.student, self.teacher_id(teacher)

        def decide():
            if student.speedup is not None:
                self.table = time_shapes(teacher.config, student.speedup, say=print)
            text = RunText(examples, source.tokenizer, self.training.seed,
                           f"{self.text.what()}, {self.max_length} tokens each", source.pipeline)
            return plan_student(student, teacher, teacher_id, text, self.table)

        plan = self.runtime.from_main(decide)
        self.runtime.say(plan.describe())
        return plan

    def teacher_id(self, teacher) -> TeacherId:
        """The teacher as a plan records it: its name, width and a digest of the files run.json fingerprinted."""
        return TeacherId.of(self.cfg.teacher, teacher.config, self.runtime.run[TRAINED_AGAINST]["teacher"]["files"])

    def static_objective(self) -> None:
        """A static student learns sentence embeddings alone. Where --speedup chose one for objectives that also read
        attention, those are left out, in one line; anything else a static student cannot learn is refused."""
        names = self.cfg.objective.objective
        if self.cfg.student.speedup is not None and "embedding" in names and names != ["embedding"]:
            others = ", ".join(n for n in names if n != "embedding")
            self.runtime.say(f"static student: it has no attention for {others} to read; it learns the embedding "
                             "objective alone")
            self.cfg.objective = dataclasses.replace(self.cfg.objective, objective=["embedding"],
                                                     objective_weights=None)
        obstacle = static_obstacle(self.cfg.objective.objective, self.cfg.task.task)
        require(obstacle is None, obstacle or "")

    def student(self, plan, teacher):
        training, kind = self.training, self.text.kind
        self.lr = training.lr_for(plan.shape.hidden, family_of(teacher).shape(teacher.config).hidden,
                                  plan.start == "static")
        if training.lr is None:
            self.runtime.say(f"learning rate {self.lr:.3g} (auto, for a {plan.shape.layers}x{plan.shape.hidden} "
                             "student: --lr's help gives the rule)")
        student = build_student(plan, teacher, training.dropout, training.seed,
                                teacher.config.num_labels if kind is not None and kind is not SPAN else None,
                                head=kind.head if kind is not None else None, say=self.runtime.say)
        check_max_length(self.max_length, student.config, "student")
        self.text.name_student(student)
        return student

    def objective(self, source: ModelSource, plan, teacher, student, examples, student_examples, tokenizer):
        """The objective, the teacher's readings kept where they can be (then the teacher is let go: it does not run
        again), and training-only parameters started from the data."""
        cfg, runtime, kind = self.cfg, self.runtime, self.text.kind
        objective = build_objective(cfg.objective, teacher, student, relations=cfg.relations, distilbert=cfg.distilbert,
                                    embedding=cfg.embedding, tokenizer=source.tokenizer, pipeline=source.pipeline,
                                    full=kind is not None, plan=plan, teacher_id=self.teacher_id(teacher))
        setting = cfg.objective.teacher_cache
        if setting != "off" and isinstance(objective, Combined):
            files = runtime.run[TRAINED_AGAINST]["teacher"]["files"]
            with runtime.main_process_first():
                kept = keep_teacher(objective, student_examples, examples, source.tokenizer.pad_token_id,
                                    cfg.corpus.cache_dir, {"teacher": files or cfg.teacher}, runtime.device,
                                    required=setting == "on" or tokenizer is not source.tokenizer,
                                    logits=kind.logits_layout if kind else None, say=runtime.say,
                                    progress=runtime.is_main_process)
            if kept is not None:
                student_examples, teacher = kept, None
        else:
            require(setting != "on", f"teacher_cache on: --objective {' '.join(cfg.objective.objective)} reads views "
                                     "of its own (masked inputs, every layer) that are not kept; use --teacher-cache "
                                     "auto or off")
        notes = objective.notes + objective.warm_start(student, student_examples, tokenizer.pad_token_id,
                                                       runtime.device)
        for note in notes:
            runtime.say(note)
        return objective, student_examples, teacher

    def loop(self, objective, student, examples, tokenizer, teacher):
        training, runtime, kind = self.training, self.runtime, self.text.kind
        batches = StepBatches(examples, training.batch_size, tokenizer.pad_token_id, training.seed,
                              runtime.accelerator.process_index, runtime.accelerator.num_processes)
        files = {SHAPES_FILE: json.dumps(self.table.to_dict(), indent=1)} if self.table is not None else None
        return fit(runtime, Recipe(
            trained=objective.student_view, saved=student, tokenizer=tokenizer, batches=batches, teacher=teacher,
            description="distill", run_files=files, lr=self.lr,
            evaluate=self.text.evaluator(student, tokenizer, self.max_length, runtime.device),
            metric=kind.metric_name(self.text.dev) if kind is not None else "main",
            losses=lambda model, batch: distill_losses(objective, model, batch, kind, self.cfg.output_loss)))

    def save(self, result, student, objective, source: ModelSource, tokenizer) -> None:
        final = self.out / "model"
        if result.is_main_process and (result.trained_steps or not final.is_dir()):
            try:
                save_model(student, tokenizer, final)
                if source.pipeline.sentence_transformer:  # the student is saved in its teacher's layout
                    kept = self.cfg.embedding.embedding_output == "teacher"
                    save_sentence_transformer(final, source.pipeline, objective.dense() if kept else None)
                if (self.out / SHAPES_FILE).is_file():  # the table it was chosen from, beside the student
                    write_atomic(final / SHAPES_FILE, (self.out / SHAPES_FILE).read_text())
            except MiniLMError as exc:
                shutil.rmtree(final, ignore_errors=True)  # no half-saved student: a rerun saves it again
                last = list_checkpoints(self.out)
                raise MiniLMError(f"{exc}; the trained student is in "
                                  f"{last[-1] / 'model' if last else 'no checkpoint'}") from None
            self.text.finish(self.out, result, self.max_length)
        result.accelerator.wait_for_everyone()


def distill(cfg: DistillConfig) -> Path:
    """Run (or resume) a distillation; returns the directory of the student it hands over."""
    return Distillation(cfg).run()
