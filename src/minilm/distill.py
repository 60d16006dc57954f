"""`minilm distill`: build the teacher, the student, the data and the objective, then `fit`.

Task-agnostic (MiniLM Sec. 3): unlabeled text, the objective's loss alone (MiniLM: L = L_AT + L_VR,
teacher layer -> student's last layer). Task-specific (`task` set, MiniLM Sec. 4.3): a fine-tuned
teacher on the task's training split (a classifier, or for SQuAD a question-answering model),
L = objective + output_weight * L_OUT (+ hard_label_weight * the task loss), L_OUT the KL of the class
distributions or of the start and end distributions, the dev split evaluated every `eval_every` steps
and the best student kept in `output_dir/best`. The final student is saved to `output_dir/model` as a plain Hugging Face model.
"""

from __future__ import annotations

from pathlib import Path

from minilm.config import DistillConfig
from minilm.data import StepBatches, build_token_cache
from minilm.errors import MiniLMError, require
from minilm.evaluation import evaluate_model, write_summary
from minilm.fit import Recipe, fit
from minilm.models import (build_student, freeze, has_masked_lm_head, load_encoder, load_model_config, load_tokenizer,
                           save_model)
from minilm.objectives import build_objective, distill_losses
from minilm.packing import ExampleSettings
from minilm.rundir import list_checkpoints
from minilm.tasks import encode, load_task
from minilm.tasks.glue import check_classes, name_classes
from minilm.tasks.squad import is_squad_task


def load_teacher(cfg: DistillConfig):
    """The teacher: an encoder; for a task-specific run a classifier fine-tuned on the task; for the
    distilbert objective the masked-LM model when the checkpoint has that head (its soft targets)."""
    config = load_model_config(cfg.teacher)
    if not cfg.task:
        wants_head = cfg.objective == "distilbert" and cfg.distilbert_mlm != "off"
        return load_encoder(cfg.teacher, head="masked-lm" if wants_head and has_masked_lm_head(config) else None)
    head = "question-answering" if is_squad_task(cfg.task) and not cfg.text_columns else "classification"
    wanted = "ForQuestionAnswering" if head == "question-answering" else "ForSequenceClassification"
    require(wanted in " ".join(config.architectures or []),
            f"task-specific distillation needs a teacher fine-tuned on {cfg.task} "
            f"(run: minilm finetune --model {cfg.teacher} --task {cfg.task})")
    return load_encoder(cfg.teacher, num_labels=config.num_labels if head == "classification" else None, head=head)


def distill(cfg: DistillConfig) -> Path:
    """Run (or resume) a distillation; returns the directory of the final student."""
    state = {}

    def build(accelerator) -> Recipe:
        device, main = accelerator.device, accelerator.is_main_process
        tokenizer = load_tokenizer(cfg.teacher)
        teacher = load_teacher(cfg)
        require(cfg.max_length <= teacher.config.max_position_embeddings,
                f"max_length {cfg.max_length} exceeds the teacher's {teacher.config.max_position_embeddings} positions")
        freeze(teacher).to(device)
        qa = bool(cfg.task) and is_squad_task(cfg.task) and not cfg.text_columns
        student = build_student(cfg, teacher, tokenizer, teacher.config.num_labels if cfg.task and not qa else None,
                                head="question-answering" if qa else None)
        require(cfg.max_length <= student.config.max_position_embeddings,
                f"max_length {cfg.max_length} exceeds the student's {student.config.max_position_embeddings} positions")
        objective = build_objective(cfg, teacher, student, tokenizer, full=bool(cfg.task))
        for note in objective.notes if main else []:
            print(note)
        evaluate, kind = None, None
        if cfg.task:
            read = dict(task_dir=cfg.task_dir, text_columns=cfg.text_columns, label_column=cfg.label_column,
                        regression=cfg.regression, skip_bad_rows=cfg.skip_bad_rows)
            train = load_task(cfg.task, "train", **read)
            dev = state["dev"] = load_task(cfg.task, "dev", label_names=train.label_names, **read)
            kind = train.kind
            if kind != "span":
                check_classes(train)
                require(teacher.config.num_labels == train.num_labels,
                        f"teacher has {teacher.config.num_labels} outputs but task {cfg.task} has {train.num_labels}")
                name_classes(student.config, train)
            examples = encode(train, tokenizer, cfg.max_length, cfg.doc_stride)
            dev_features = encode(dev, tokenizer, cfg.max_length, cfg.doc_stride) if kind == "span" else None

            def evaluate():
                return evaluate_model(student, tokenizer, dev, cfg.max_length, 128, device, span=cfg,
                                      features=dev_features)
        else:
            settings = ExampleSettings(cfg.examples, cfg.pair_fraction, cfg.cross_documents, cfg.document_boundary)
            with accelerator.main_process_first():
                examples = build_token_cache(cfg.data, tokenizer, cfg.max_length, cfg.cache_dir, cfg.text_column,
                                             progress=main, examples=settings)
        batches = StepBatches(examples, cfg.batch_size, tokenizer.pad_token_id, cfg.seed,
                              accelerator.process_index, accelerator.num_processes)
        return Recipe(trained=objective.student_view, saved=student, tokenizer=tokenizer, batches=batches,
                      total_steps=cfg.max_steps, teacher=teacher, description="distill",
                      losses=lambda model, batch: distill_losses(objective, model, batch, cfg, device.type, kind),
                      evaluate=evaluate, metric=("F1" if kind == "span" else state["dev"].metric) if cfg.task else "main")

    require(cfg.max_steps >= 1, f"max_steps must be at least 1, got {cfg.max_steps}")
    result = fit(cfg, build)
    out, final = Path(cfg.output_dir), Path(cfg.output_dir) / "model"
    if result.is_main_process and (result.trained_steps or not final.is_dir()):
        try:
            save_model(result.recipe.saved, result.recipe.tokenizer, final)
        except MiniLMError as exc:
            last = list_checkpoints(out)
            raise MiniLMError(f"{exc}; the trained student is in {last[-1] / 'model' if last else 'no checkpoint'}"
                              ) from None
        if cfg.task and result.best is not None:
            write_summary(out, cfg.teacher, cfg.task, state["dev"], result.best, result.step, result.seconds,
                          cfg.max_length, result.accelerator.device, cfg.doc_stride)
    result.accelerator.wait_for_everyone()
    return final
