"""Made-up labelled sentences: a sentiment task any tiny model can learn a little of."""

from __future__ import annotations

import random

POSITIVE, NEGATIVE = ["good", "great", "fine", "lovely", "superb"], ["bad", "awful", "poor", "dull", "boring"]


def sentiment_rows(n, seed):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = rng.sample(POSITIVE if label else NEGATIVE, 2) + rng.sample(["movie", "film", "plot", "cast"], 2)
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def write_sentiment_task(directory, header="sentence\tlabel", label=str, sizes=(("train", 64), ("dev", 24))):
    """A task folder of TSV splits (`sentiment_rows`), labels written by `label`."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in sizes:
        rows = [f"{t}\t{label(y)}" for t, y in sentiment_rows(n, split == "dev")]
        (directory / f"{split}.tsv").write_text("\n".join([header, *rows]) + "\n")
    return directory


# A few STS-like pairs with scores: text for sentence students, pairs for zero-shot scoring.
STS_ROWS = [("A plane is taking off.", "An air plane is taking off.", 5.0), ("A man plays a flute.", "A man plays.", 3.8),
            ("A cat eats.", "The stock market fell.", 0.0), ("Two dogs run.", "Dogs are running.", 4.2),
            ("A woman sings.", "A woman is dancing.", 1.6), ("Kids play soccer.", "Children play football.", 4.6)]
