"""`minilm distill`: build the teacher, the student, the data and the objective, then `fit`.

Task-agnostic (MiniLM Sec. 3): unlabeled text, the objective's loss alone (MiniLM: L = L_AT + L_VR,
teacher layer -> student's last layer). Task-specific (`--task` set, MiniLM Sec. 4.3): a fine-tuned
teacher on the task's training split (a classifier, or for SQuAD a question-answering model),
L = objective + output_weight * L_OUT (+ hard_label_weight * the task loss), L_OUT what the task's kind
says (`tasks.kinds`), the dev split evaluated every `eval_every` steps and the best student kept in
`output_dir/best`. The final student is saved to `output_dir/model` as a plain Hugging Face model, and
when the teacher is a sentence-transformers model as one too, with the teacher's pooling and normalisation
(and the embedding objective's projection, when the widths differ), so that both `AutoModel` and
`SentenceTransformer` load it.
"""

from __future__ import annotations

from pathlib import Path

from minilm.config.commands import DistillConfig
from minilm.config.sections import EVAL_BATCH_SIZE
from minilm.data.batches import StepBatches
from minilm.data.token_cache import build_token_cache
from minilm.errors import MiniLMError, require
from minilm.models.architectures import family_of
from minilm.models.fingerprint import fingerprint
from minilm.models.loading import check_max_length, freeze, resolve_model_path, save_model
from minilm.models.sentence import save_sentence_transformer
from minilm.measure.shape_speed import student_by_speed
from minilm.models.pruning import calibration_batches
from minilm.models.source import ModelSource, resolve_model
from minilm.models.students import build_student, own_tokenizer_of, resolve_init
from minilm.objectives import build_objective, distill_losses
from minilm.tasks import describe_splits, encode, load_task, max_length_for, task_kind_of
from minilm.tasks.kinds import SPAN, kind_of_model
from minilm.tasks.scoring import evaluate_model
from minilm.train.loop import Recipe, fit, nothing_left, start
from minilm.train.run_dir import identity, list_checkpoints
from minilm.train.summary import write_summary


def load_teacher(cfg: DistillConfig, source: ModelSource):
    """The teacher: an encoder; for a task-specific run a model fine-tuned on the task, with its head; for the
    distilbert objective the masked-LM model when the checkpoint has that head (its soft targets)."""
    if not cfg.task.task:
        wants_head = "distilbert" in cfg.objective.objective and cfg.distilbert.distilbert_mlm != "off"
        return source.load(head="masked-lm" if wants_head and source.head == "masked-lm" else None)
    kind = kind_of_model(source.config)
    wanted = task_kind_of(cfg.task) or kind
    require(kind is not None and (kind is SPAN) == (wanted is SPAN),
            f"task-specific distillation needs a teacher fine-tuned on {cfg.task.task} "
            f"(run: minilm finetune --model {cfg.teacher} --task {cfg.task.task})")
    return source.load(head=kind.head, num_labels=None if kind is SPAN else source.config.num_labels)


def task_data(cfg: DistillConfig, kind, teacher, student, tokenizer, max_length: int, main: bool):
    """Task-specific distillation's training examples, dev split and dev windows (SQuAD), checked against the
    teacher's head; the student's config learns the task's class names."""
    train = load_task(cfg.task, "train")
    dev = load_task(cfg.task, "dev", label_names=train.label_names)
    for line in describe_splits(train, dev) if main else []:
        print(line)
    train.kind.check_training_split(train)
    require(train.kind is kind, f"the teacher is fine-tuned for {kind.name} but {train.source} is a "
                                f"{train.kind.name} task")
    require(kind is SPAN or teacher.config.num_labels == train.num_labels,
            f"teacher has {teacher.config.num_labels} outputs but task {cfg.task.task} has {train.num_labels}")
    kind.name_model(student.config, train)
    examples = encode(train, tokenizer, max_length, cfg.qa.doc_stride)
    dev_features = encode(dev, tokenizer, max_length, cfg.qa.doc_stride) if kind is SPAN else None
    return examples, dev, dev_features


def check_own_tokenizer(cfg: DistillConfig, own_tokenizer) -> None:
    """A student with a tokenizer of its own learns sentence embeddings alone, one truncated line per example (the
    objectives that compare token by token, or packed token streams, would not line up)."""
    if own_tokenizer is None:
        return
    require(cfg.objective.objective == ["embedding"] and not cfg.task.task,
            f"teacher and student tokenizers differ ({cfg.student.student_init} reads text its own way): such a "
            "student learns sentence embeddings alone (--objective embedding, task-agnostic); for the other objectives "
            "start from a model with the teacher's tokenizer")
    require(cfg.corpus.examples == "sentence",
            f"teacher and student tokenizers differ ({cfg.student.student_init}): examples must be whole sentences "
            "that both tokenize (--examples sentence), not token windows or packed sequences")


def with_teacher_embeddings(cfg: DistillConfig, source, teacher, examples, max_length: int, device, main: bool,
                            tokenizers_differ: bool):
    """The examples with the teacher's sentence embedding of each (computed once, cached beside the token caches).
    The teacher reads the same lines through its own tokenizer when the student's differs."""
    from minilm.data.vector_cache import WithVectors, build_vector_cache
    from minilm.objectives.embedding import fill_teacher_embeddings

    teacher_examples = examples
    if tokenizers_differ:
        teacher_examples = build_token_cache(source.tokenizer, max_length, cfg.corpus, progress=main)
        require(len(teacher_examples) == len(examples), "the teacher's and the student's tokenizations of the corpus "
                                                        "differ in length; use --examples sentence")
    width = len(source.pipeline.pooling) * teacher.config.hidden_size
    key = {"teacher": source.path, "config": teacher.config.to_json_string(), "pipeline": repr(source.pipeline),
           "examples": teacher_examples.directory.name, "format": 1,
           "files": fingerprint(source.path)}  # other weights put at the same path are another teacher
    vectors = build_vector_cache(cfg.corpus.cache_dir, key, len(teacher_examples), width, lambda out: (
        fill_teacher_embeddings(out, teacher, source.pipeline, teacher_examples, source.tokenizer.pad_token_id,
                                device, progress=main)))
    return WithVectors(examples, vectors)


def calibration_batches_of(cfg: DistillConfig, tokenizer, max_length: int, main: bool) -> list[dict]:
    """A few batches of the run's own text (its corpus, or its task's training split) that pruning measures the
    teacher on."""
    if cfg.task.task:
        examples = encode(load_task(cfg.task, "train"), tokenizer, max_length, cfg.qa.doc_stride)
    else:
        examples = build_token_cache(tokenizer, max_length, cfg.corpus, progress=main)
    return calibration_batches(examples, tokenizer.pad_token_id, cfg.training.seed)


def quiet(_line: str) -> None:
    """What a process other than the main one says: nothing."""


def trained_against(cfg: DistillConfig) -> dict[str, tuple[str, str]]:
    """The models the run reads, by role, for its identity (`run_dir.identity`): the teacher, and the model the
    student starts from when it is one."""
    models = {"teacher": (cfg.teacher, resolve_model_path(cfg.teacher))}
    init = cfg.student.student_init
    if init.startswith("packaged:") or Path(init).is_dir():
        models["student_init"] = (init, resolve_model_path(init))
    return models


def distill(cfg: DistillConfig) -> Path:
    """Run (or resume) a distillation; returns the directory of the student it hands over: the final student, or
    for a task-specific run the best one on the dev split (`best/`)."""
    training = cfg.training
    max_length = max_length_for(training.max_length, cfg.task if cfg.task.task else None)
    runtime = start(training, identity(cfg, trained_against(cfg)))
    device, main = runtime.device, runtime.is_main_process
    out, final = Path(training.output_dir), Path(training.output_dir) / "model"
    handed_over = out / "best" if cfg.task.task else final
    done = nothing_left(runtime)
    if done is not None and final.is_dir() and (not cfg.task.task or (out / "metrics.json").is_file()):
        if main:  # a finished run: no teacher, data or cached teacher embeddings are built for nothing
            print(done)
        return handed_over

    source = resolve_model(cfg.teacher)
    tokenizer = source.tokenizer
    teacher = load_teacher(cfg, source)
    check_max_length(max_length, teacher.config, "teacher")
    freeze(teacher).to(device)
    kind = kind_of_model(teacher.config) if cfg.task.task else None
    own_tokenizer = own_tokenizer_of(cfg.student, tokenizer)  # the student's tokenizer if it differs, else None
    check_own_tokenizer(cfg, own_tokenizer)
    cached = cfg.embedding.cached(cfg.objective, kind is not None, own_tokenizer is not None)
    student_tokenizer = own_tokenizer or tokenizer
    with runtime.main_process_first():  # one process times the shapes; the others read its choice
        wanted = student_by_speed(cfg.student, teacher.config, training.output_dir, say=print if main else quiet)
    init = resolve_init(wanted, teacher.config)
    with runtime.main_process_first():
        calibration = calibration_batches_of(cfg, tokenizer, max_length, main) if init == "prune" else None
    student = build_student(wanted, teacher, tokenizer, training.dropout, training.seed,
                            teacher.config.num_labels if kind is not None and kind is not SPAN else None,
                            head=kind.head if kind is not None else None,
                            reads_its_own_text=own_tokenizer is not None, calibration=calibration,
                            say=print if main else None)
    check_max_length(max_length, student.config, "student")
    if main:
        shape = family_of(student).shape(student.config)
        print(f"student: {shape.layers}x{shape.hidden}, {shape.heads} heads, init {init}")
    objective = build_objective(cfg.objective, teacher, student, relations=cfg.relations, distilbert=cfg.distilbert,
                                embedding=cfg.embedding, tokenizer=tokenizer, pipeline=source.pipeline,
                                full=kind is not None, cached_teacher=cached)
    evaluate, metric, dev = None, "main", None
    if kind is not None:
        examples, dev, dev_features = task_data(cfg, kind, teacher, student, tokenizer, max_length, main)
        metric = kind.metric_name(dev)

        def evaluate():
            return evaluate_model(student, tokenizer, dev, max_length, EVAL_BATCH_SIZE, device, qa=cfg.qa,
                                  features=dev_features)
    else:
        with runtime.main_process_first():
            examples = build_token_cache(student_tokenizer, max_length, cfg.corpus, progress=main)
            if cached:
                examples = with_teacher_embeddings(cfg, source, teacher, examples, max_length, device, main,
                                                   own_tokenizer is not None)
    if cached:
        teacher = None  # its embeddings are in the batches: it does not run again, and its memory is freed
        objective.warm_start(student, examples, student_tokenizer.pad_token_id, device)
    for note in objective.notes if main else []:
        print(note)
    batches = StepBatches(examples, training.batch_size, student_tokenizer.pad_token_id, training.seed,
                          runtime.accelerator.process_index, runtime.accelerator.num_processes)
    result = fit(runtime, Recipe(trained=objective.student_view, saved=student, tokenizer=student_tokenizer,
                                 batches=batches, teacher=teacher, description="distill", evaluate=evaluate,
                                 metric=metric,
                                 losses=lambda model, batch: distill_losses(objective, model, batch, kind,
                                                                            cfg.output_loss)))

    if result.is_main_process and (result.trained_steps or not final.is_dir()):
        try:
            save_model(student, student_tokenizer, final)
            if source.pipeline.sentence_transformer:  # the student is saved in its teacher's layout
                kept = cfg.embedding.embedding_output == "teacher"
                projection = objective.dense() if kept else None
                save_sentence_transformer(final, source.pipeline, projection)
        except MiniLMError as exc:
            last = list_checkpoints(out)
            raise MiniLMError(f"{exc}; the trained student is in {last[-1] / 'model' if last else 'no checkpoint'}"
                              ) from None
        if kind is not None and result.best is not None:
            write_summary(out, cfg.teacher, cfg.task, dev, result.best, result.step, result.seconds, max_length,
                          result.accelerator.device, cfg.qa)
    result.accelerator.wait_for_everyone()
    return handed_over
