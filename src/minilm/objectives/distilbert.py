"""DistilBERT's loss (Sanh et al. 2019, Sec. 2-3): soft targets, the student's own masked-LM loss, cosine.

On a batch masked as BERT masks it (`mask_tokens`: 15% of the real, non-special tokens chosen; of
those 80% become [MASK], 10% a random token, 10% stay), both models read the same masked input and

    L_ce  = T^2 KL(softmax(z_t / T) || softmax(z_s / T))    teacher's masked-LM distribution as soft target
    L_mlm = cross-entropy of the student's masked-LM logits with the original tokens
    L_cos = 1 - cos(h_s W, h_t)                               last hidden states, per real token
    L = alpha_ce L_ce + alpha_mlm L_mlm + alpha_cos L_cos    (5, 2, 1: DistilBERT's training weights)

L_ce and L_mlm are means over the chosen (masked) tokens, L_cos over the real tokens. The masked-LM
terms need a teacher saved with its masked-LM head (`BertForMaskedLM`); without one (the packaged
all-MiniLM-L6-v2 has none) only L_cos runs, on unmasked input. The student's masked-LM head
(decoder tied to its word embeddings; copied from the teacher's when the widths are equal) and W (when
the widths differ; DistilBERT has equal widths) are training-only: the student is saved without them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from minilm.errors import require
from minilm.losses.output import output_kl
from minilm.models.architectures import family_of
from minilm.models.heads import has_masked_lm, masked_lm_head, new_masked_lm_head
from minilm.objectives.base import DistillationObjective, ObjectiveSettings, objective
from minilm.objectives.views import EncoderView, model_inputs, pooler_parameters, projection


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: list[int], mask_id: int,
                vocab_size: int, probability: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking (Devlin et al. 2019, Sec. 3.1), drawn from torch's default generator (so seeds and
    checkpointed RNG states govern it).

    input_ids, attention_mask: (batch, seq). Each real token that is not a special token is chosen with
    `probability`; a chosen token becomes `mask_id` with probability 0.8, a uniformly random token with
    0.1, and stays itself with 0.1. Returns (masked input_ids, chosen (batch, seq) bool).
    """
    candidates = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(special_ids, device=input_ids.device))
    draw = torch.rand(input_ids.shape).to(input_ids.device)
    chosen = candidates & (draw < probability)
    action = torch.rand(input_ids.shape).to(input_ids.device)
    random_tokens = torch.randint(vocab_size, input_ids.shape).to(input_ids.device)
    masked = input_ids.clone()
    masked[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    masked[swap] = random_tokens[swap]
    return masked, chosen


def cosine_loss(student: torch.Tensor, teacher: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens of 1 - cos(student_t, teacher_t); (batch, seq, width) each, float32."""
    cos = F.cosine_similarity(student.float(), teacher.detach().float(), dim=-1)
    mask = attention_mask.to(torch.float32)
    return ((1 - cos) * mask).sum() / mask.sum().clamp(min=1)


@objective("distilbert")
class DistilBERT(DistillationObjective):
    """The `distilbert` objective: views of whole models (the masked-LM heads when the teacher has one)."""

    def __init__(self, settings: ObjectiveSettings, teacher, student):
        cfg, tokenizer, full = settings.distilbert, settings.tokenizer, settings.full
        teacher_head = not full and has_masked_lm(teacher)  # `minilm distill` loads the head when there is one
        require(cfg.distilbert_mlm != "on" or teacher_head,
                f"distilbert_mlm on needs a teacher with a masked-LM head (a BertForMaskedLM checkpoint); "
                f"'{teacher.name_or_path}' has none{' in a task-specific run' if full else ''}: use --distilbert-mlm "
                "auto or off")
        require(tokenizer is not None, "the distilbert objective needs the tokenizer")
        self.mlm = teacher_head and cfg.distilbert_mlm != "off"
        self.cfg, self.notes = cfg, []
        if not self.mlm and cfg.distilbert_mlm == "auto":
            self.notes.append("distilbert: the teacher has no masked-LM head, so only the cosine term runs "
                              "(L_ce and L_mlm need a BertForMaskedLM teacher)")
        t_width, s_width = (family_of(m).shape(m.config).hidden for m in (teacher, student))
        w = projection(s_width, t_width)
        student_head = None
        if self.mlm:
            student_head = new_masked_lm_head(student)
            if s_width == t_width:  # DistilBERT starts the student from the teacher, head included
                own = student_head.state_dict()
                tied = {k for k, v in own.items() if v is student.get_input_embeddings().weight}
                source = {k: v for k, v in masked_lm_head(teacher).state_dict().items()
                          if k in own and k not in tied and v.shape == own[k].shape}
                student_head.load_state_dict(source, strict=False)
        self.teacher_view = EncoderView(teacher, full, mlm_head=masked_lm_head(teacher) if self.mlm else None)
        self.student_view = EncoderView(student, full, mlm_head=student_head,
                                        projections=nn.ModuleDict({"hidden": w} if w else {}))
        self.unused = [] if full else pooler_parameters(student)
        self.special_ids = list(tokenizer.all_special_ids)
        self.mask_id, self.vocab_size = tokenizer.mask_token_id, student.config.vocab_size
        require(not self.mlm or self.mask_id is not None, "distilbert's masked-LM terms need a tokenizer with a mask token")

    def inputs(self, batch: dict) -> dict:
        inputs = model_inputs(batch)
        if self.mlm:
            inputs["input_ids"], inputs["masked_positions"] = mask_tokens(
                batch["input_ids"], batch["attention_mask"], self.special_ids, self.mask_id, self.vocab_size,
                self.cfg.distilbert_mlm_probability)
            batch["masked_positions"] = inputs["masked_positions"]  # the losses read the gold tokens there
        return inputs

    def losses(self, teacher: dict, student: dict, batch: dict) -> dict:
        cfg = self.cfg
        terms = {"cosine": cfg.distilbert_alpha_cos * cosine_loss(student["hidden"][-1], teacher["hidden"][-1],
                                                                  batch["attention_mask"])}
        if self.mlm:
            gold = batch["input_ids"][batch["masked_positions"]]
            if gold.numel():  # a batch with no chosen token has no masked-LM terms
                terms["ce"] = cfg.distilbert_alpha_ce * output_kl(teacher["mlm_logits"], student["mlm_logits"],
                                                                  cfg.distilbert_temperature)
                terms["mlm"] = cfg.distilbert_alpha_mlm * F.cross_entropy(student["mlm_logits"].float(), gold)
            else:
                zero = student["hidden"][-1].sum() * 0.0
                terms["ce"], terms["mlm"] = zero, zero
        return terms
