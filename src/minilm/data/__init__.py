"""Text in, examples out, and files written safely.

| module | what |
|---|---|
| `readers.py` | the one TSV/CSV/JSONL reader and the plain-text line readers |
| `corpora.py` | what `--data` names: named corpora (local copy, then the hub), files, `hf:` datasets |
| `hub.py` | the one door to the Hugging Face hub's datasets |
| `packing.py` | how text becomes distillation examples: a line each, or packed documents with sentence pairs |
| `token_cache.py` | a corpus tokenized once into a memory-mapped cache |
| `target_cache.py` | per-example arrays computed once and memory-mapped: a frozen teacher's readings of a corpus (per token or per example) |
| `batches.py` | length-grouped deterministic batches, padding, a rank's slice of each global batch |
| `files.py` | writability probes and atomic writes of files and directories |
"""
