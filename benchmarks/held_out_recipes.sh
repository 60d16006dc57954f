#!/usr/bin/env bash
# Which text should the sentence recipe (configs/sentence_student.yaml: MiniLM + 100 x embedding MSE, a 3x384
# student of the packaged all-MiniLM-L6-v2) distil on? Scored where it counts: on held-out STS pairs, none of whose
# sentences is in the distillation text (benchmarks/sentence_table.py), as well as on STS-B test. Two texts:
# WikiText-2 with the STS benchmark's training sentences (the recipe's text until 2026-12-03), WikiText-2 alone.
# Run: bash benchmarks/held_out_recipes.sh   (after `make install`; docs/seed_system.md has the table)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
M=".venv/bin/minilm"
R=runs/held_out
[ -d $R/with_sts/model ] || $M distill --config configs/sentence_student.yaml --data wikitext-2 stsb-train \
    --output-dir $R/with_sts
[ -d $R/wikitext/model ] || $M distill --config configs/sentence_student.yaml --data wikitext-2 --output-dir $R/wikitext
.venv/bin/python benchmarks/sentence_table.py --teacher packaged:all-MiniLM-L6-v2 \
    --output docs/seed_system/recipe_text_table.md \
    --rows "3x384, WikiText-2 + STS train sentences=$R/with_sts/model@wikitext-2+stsb-train" \
           "3x384, WikiText-2 alone=$R/wikitext/model@wikitext-2"
