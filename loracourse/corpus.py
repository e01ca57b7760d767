"""The course's data, generated: a pretraining corpus of templated English and a sentiment task.

The tiny model (`build_tiny.py`) is pretrained on short paragraphs such as
"the soup was delicious . i loved it ." mixed with filler sentence families (animals, colours,
counting, sums), so it learns from context which adjectives are good and which are bad. One of the
reactions is "i felt positive about it ." / "i felt negative about it .", so the label words are
known too. Lesson 1 then fine-tunes it with LoRA on a format it never saw ("review", "sentiment" and
":" never occur in pretraining):

    review : the soup was delicious . sentiment :  ->  " positive"

The adjectives are split in two. The task's train split uses only TRAIN adjectives; its test
split uses only TEST adjectives, which the model met in pretraining but never in fine-tuning.
A high test score therefore shows knowledge carried over from pretraining, not memorisation.

Everything comes from `random.Random(seed)`, so `python -m loracourse.corpus` rewrites the
files in `loracourse/data/` byte for byte (a test checks this).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
SEED = 0

POSITIVE = (
    "delicious",
    "great",
    "wonderful",
    "lovely",
    "excellent",
    "superb",
    "amazing",
    "tasty",
    "perfect",
    "fantastic",
    "pleasant",
    "brilliant",
    "charming",
    "fresh",
    "friendly",
    "cozy",
    "splendid",
    "marvelous",
    "delightful",
    "superior",
)
NEGATIVE = (
    "awful",
    "terrible",
    "horrible",
    "bland",
    "dreadful",
    "rude",
    "dirty",
    "stale",
    "poor",
    "nasty",
    "boring",
    "greasy",
    "soggy",
    "cold",
    "noisy",
    "gloomy",
    "filthy",
    "rotten",
    "lousy",
    "shabby",
)
# The first half of each list is seen in fine-tuning; the second half only in pretraining.
TRAIN_ADJECTIVES = POSITIVE[:10] + NEGATIVE[:10]
TEST_ADJECTIVES = POSITIVE[10:] + NEGATIVE[10:]
NOUNS = (
    "soup",
    "pasta",
    "pizza",
    "bread",
    "coffee",
    "tea",
    "cake",
    "salad",
    "burger",
    "service",
    "staff",
    "room",
    "hotel",
    "movie",
    "book",
    "show",
    "music",
    "game",
    "trip",
    "view",
)

REACTIONS = (
    ("i loved it .", "i hated it ."),
    ("i would come back .", "i would not come back ."),
    ("we were happy .", "we were sad ."),
    ("i felt positive about it .", "i felt negative about it ."),
)

ANIMALS = ("cat", "dog", "bird", "fox", "horse", "duck", "mouse", "rabbit", "goat", "sheep")
PLACES = ("garden", "house", "field", "park", "barn", "forest", "kitchen", "yard")
ACTIONS = ("sat", "slept", "ran", "played", "walked", "ate")
COLOURS = {
    "sky": "blue",
    "grass": "green",
    "snow": "white",
    "sun": "yellow",
    "coal": "black",
    "blood": "red",
    "sea": "blue",
    "leaf": "green",
    "milk": "white",
    "night": "dark",
}
NUMBERS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
)


def polarity(adjective: str) -> str:
    """'positive' or 'negative': the label an adjective carries."""
    return "positive" if adjective in POSITIVE else "negative"


def review_sentence(rng: random.Random, noun: str, adjective: str) -> str:
    """One short review that states an opinion about `noun` with `adjective`."""
    templates = ("the {n} was {a} .", "i found the {n} {a} .", "what {an} {a} {n} !", "the {n} was really {a} .")
    article = "an" if adjective[0] in "aeiou" else "a"
    return rng.choice(templates).format(n=noun, a=adjective, an=article)


def review_paragraph(rng: random.Random) -> str:
    """A pretraining review: an opinion, then one or two reactions that follow its polarity."""
    noun, adjective = rng.choice(NOUNS), rng.choice(POSITIVE + NEGATIVE)
    side = 0 if adjective in POSITIVE else 1
    reactions = [pair[side] for pair in REACTIONS]
    rng.shuffle(reactions)
    return " ".join([review_sentence(rng, noun, adjective)] + reactions[: rng.randint(1, 2)])


def filler_sentence(rng: random.Random) -> str:
    """A sentence from one of the non-review families: animals, colours, counting, sums."""
    kind = rng.randrange(4)
    if kind == 0:
        return f"the {rng.choice(ANIMALS)} {rng.choice(ACTIONS)} in the {rng.choice(PLACES)} ."
    if kind == 1:
        thing = rng.choice(sorted(COLOURS))
        return f"the {thing} is {COLOURS[thing]} ."
    if kind == 2:
        start = rng.randrange(len(NUMBERS) - 4)
        return " ".join(NUMBERS[start : start + 5]) + " ."
    a, b = rng.randrange(11), rng.randrange(11)
    return f"{NUMBERS[a]} plus {NUMBERS[b]} is {NUMBERS[a + b]} ."


def paragraph(rng: random.Random) -> str:
    """One pretraining line: two to four parts, about two thirds of them reviews."""
    parts = [review_paragraph(rng) if rng.random() < 0.65 else filler_sentence(rng) for _ in range(rng.randint(2, 4))]
    return " ".join(parts)


def pretrain_lines(n: int, seed: int) -> list[str]:
    """`n` pretraining paragraphs drawn with `seed`."""
    rng = random.Random(seed)
    return [paragraph(rng) for _ in range(n)]


def task_examples(n: int, adjectives: tuple[str, ...], seed: int) -> list[dict[str, str]]:
    """`n` sentiment examples {"review", "label"} using only `adjectives`, balanced by label."""
    rng = random.Random(seed)
    good = [a for a in adjectives if a in POSITIVE]
    bad = [a for a in adjectives if a in NEGATIVE]
    examples = []
    for i in range(n):
        adjective = rng.choice(good if i % 2 == 0 else bad)
        examples.append({"review": review_sentence(rng, rng.choice(NOUNS), adjective), "label": polarity(adjective)})
    rng.shuffle(examples)
    return examples


def to_jsonl(rows: list[dict[str, str]]) -> str:
    """One JSON object per line."""
    return "".join(json.dumps(row) + "\n" for row in rows)


def generate(seed: int = SEED) -> dict[str, str]:
    """Every data file's name and exact text, as `write` saves them."""
    return {
        "pretrain_train.txt": "\n".join(pretrain_lines(4500, seed)) + "\n",
        "pretrain_valid.txt": "\n".join(pretrain_lines(300, seed + 1)) + "\n",
        "sentiment_train.jsonl": to_jsonl(task_examples(256, TRAIN_ADJECTIVES, seed + 2)),
        "sentiment_test.jsonl": to_jsonl(task_examples(200, TEST_ADJECTIVES, seed + 3)),
    }


def write(out: Path = DATA_DIR, seed: int = SEED) -> list[Path]:
    """Write the data files into `out` and return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in generate(seed).items():
        (out / name).write_text(text, encoding="utf-8", newline="\n")
        paths.append(out / name)
    return paths


def read_lines(name: str, data_dir: Path = DATA_DIR) -> list[str]:
    """The non-empty lines of a text data file."""
    return [line for line in (data_dir / name).read_text(encoding="utf-8").splitlines() if line]


def main() -> None:
    """Command line: regenerate the data files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="folder to write into")
    for path in write(parser.parse_args().out):
        print(f"{path}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
