"""Tiny random models of every supported family, built from transformers' own config classes (vocabulary 30,522:
the packaged teacher's real tokenizer fits them), and a padded batch with sentence-pair token types."""

from __future__ import annotations

import torch

FAMILY_NAMES = ["bert", "electra", "roberta", "xlm-roberta", "camembert", "mpnet", "deberta-v3", "deberta-v2",
                "modernbert", "distilbert"]
WITH_BIAS = {"mpnet", "deberta-v3", "deberta-v2", "modernbert"}  # attention logits with an additive bias
TOKEN_TYPES = {"bert", "electra"}  # token-type embeddings of more than one type
SEQ, LENGTHS = 20, (20, 13, 7)
COMMON = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
              max_position_embeddings=128)


def family_config(name: str):
    import transformers as T

    if name == "bert":
        return T.BertConfig(**COMMON)
    if name == "electra":
        return T.ElectraConfig(**COMMON, embedding_size=16)  # factorised embeddings behind embeddings_project
    if name in ("roberta", "xlm-roberta", "camembert"):
        cls = {"roberta": T.RobertaConfig, "xlm-roberta": T.XLMRobertaConfig, "camembert": T.CamembertConfig}[name]
        return cls(**COMMON, type_vocab_size=1, pad_token_id=1)
    if name == "mpnet":
        return T.MPNetConfig(**COMMON)
    if name == "deberta-v3":  # as microsoft/deberta-v3-*: shared keys, log buckets, no absolute positions
        return T.DebertaV2Config(**COMMON, relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=8,
                                 max_relative_positions=-1, position_biased_input=False, type_vocab_size=0,
                                 norm_rel_ebd="layer_norm", share_att_key=True)
    if name == "deberta-v2":  # as microsoft/deberta-v2-xlarge: separate position projections, a convolution
        return T.DebertaV2Config(**COMMON, relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=8,
                                 max_relative_positions=-1, position_biased_input=False, type_vocab_size=0,
                                 norm_rel_ebd="layer_norm", share_att_key=False, conv_kernel_size=3)
    if name == "modernbert":  # a window of 8 (4 either side) on local layers, shorter than the batch
        return T.ModernBertConfig(**COMMON, local_attention=8, global_attn_every_n_layers=2, pad_token_id=0,
                                  bos_token_id=101, eos_token_id=102, cls_token_id=101, sep_token_id=102)
    if name == "distilbert":
        return T.DistilBertConfig(vocab_size=30522, dim=32, n_layers=3, n_heads=4, hidden_dim=64,
                                  max_position_embeddings=128)
    raise KeyError(name)


def sharpen(model, seed=0):
    """Redraw the weights so that attention logits are of order 1 to 10: a softmax far from uniform, where a
    missing bias or a wrong scale shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * 0.35)
            elif "norm" in name.lower() and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return model


def family_model(name: str, attn: str | None = None, head=None, state=None, num_labels: int | None = None):
    """A tiny model of family `name` in eval mode: bare, or with a head (`AutoModelFor...`); `attn`: the attention
    implementation (the family's default, SDPA where offered, unless given)."""
    from transformers import AutoModel

    from minilm.models.loading import attention_implementation

    config = family_config(name)
    if num_labels is not None:
        config.num_labels = num_labels
    torch.manual_seed(0)
    model = (head or AutoModel).from_config(config, attn_implementation=attn or attention_implementation(config))
    if state is None:
        sharpen(model)
    else:
        model.load_state_dict(state)
    return model.eval()


def family_batch(config) -> dict:
    """Three examples of 20, 13 and 7 real tokens (padded with the model's pad id), the second half of each a second
    segment (token type 1)."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 1000, (len(LENGTHS), SEQ), generator=g)
    mask, types = torch.zeros_like(ids), torch.zeros_like(ids)
    for b, n in enumerate(LENGTHS):
        mask[b, :n] = 1
        types[b, n // 2:n] = 1
    ids[mask == 0] = getattr(config, "pad_token_id", None) or 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def roberta_tokenizer(directory):
    """A small byte-level BPE tokenizer in RoBERTa's layout (`<s> A </s></s> B </s>`, no token types), trained here
    on a few made-up sentences: a RoBERTa-family model's own tokenizer, without a download."""
    import random

    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import RobertaTokenizerFast

    words = "the a cat dog sat ran on under mat tree quickly slowly good bad great awful film movie plot cast".split()
    rng = random.Random(0)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(rng.choices(words, k=12)) for _ in range(200)], vocab_size=400,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe._tokenizer.post_processor = processors.RobertaProcessing(("</s>", bpe.token_to_id("</s>")),
                                                                 ("<s>", bpe.token_to_id("<s>")))
    tokenizer = RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>",
                                     sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                                     mask_token="<mask>")
    tokenizer.save_pretrained(directory)
    return tokenizer


def save_family_teacher(name: str, directory, bert_tokenizer) -> str:
    """A tiny model of family `name` saved as a sentence-transformers model (mean pooling, normalised) with a
    tokenizer that fits it: RoBERTa's own kind for the RoBERTa family, the packaged teacher's elsewhere."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules

    hf = directory / "hf"
    config = family_config(name)
    tokenizer = bert_tokenizer
    if name in ("roberta", "xlm-roberta", "camembert"):
        tokenizer = roberta_tokenizer(hf)
        config.vocab_size = len(tokenizer)
    torch.manual_seed(0)
    from transformers import AutoModel

    AutoModel.from_config(config).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    width = config.dim if name == "distilbert" else config.hidden_size
    SentenceTransformer(modules=[modules.Transformer(str(hf), max_seq_length=64),
                                 modules.Pooling(width, pooling_mode="mean"), modules.Normalize()],
                        device="cpu").save(str(directory))
    return str(directory)
