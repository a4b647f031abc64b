"""Data files as real users hand them over: huge fields, ragged JSONL, a byte-order mark (issue 20, part 5)."""

from __future__ import annotations

import json

import yaml
from tiny import synthetic_rows, tiny_tokenizer, write_csv
from typer.testing import CliRunner

from compress.cli import app
from compress.core.recipe import DataConfig
from compress.data.dataset import MAX_TEXT_CHARS
from compress.data.sources import load_task
from compress.data.tokenization import TextEncoder
from compress.errors import DataError

HUGE = 10 * 1024 * 1024


def _task(path):
    return load_task(DataConfig(dataset=str(path), test_size=20, dev_size=20))


def _splits(task) -> tuple:
    return task.label_names, task.train, task.dev, task.test


def _texts(task) -> list[str]:
    return [*task.train.texts, *task.dev.texts, *task.test.texts]


def test_a_csv_with_a_10_mb_field_loads_cut_where_no_model_reads(tmp_path):
    huge = ("great " * (HUGE // 6 + 1)).strip()
    path = write_csv(tmp_path / "huge.csv", synthetic_rows(100) + [(huge, "pos")])
    texts = _texts(_task(path))
    longest = max(texts, key=len)
    assert len(texts) == 101 and huge.startswith(longest) and len(longest) == MAX_TEXT_CHARS
    encoder = TextEncoder(tiny_tokenizer(), 16)  # cut where no max_length reaches: the same tokens
    assert encoder.encode([longest]) == encoder.encode([huge[:1000]]) and len(encoder.encode([longest])[0]) == 16


def test_a_jsonl_row_missing_the_text_column_is_named_with_its_line(tmp_path):
    path = tmp_path / "ragged.jsonl"
    rows = [{"text": text, "label": label} for text, label in synthetic_rows(40)]
    rows[30] = {"review": rows[30]["text"], "label": rows[30]["label"]}  # line 31
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    try:
        _task(path)
    except DataError as error:
        assert str(error) == f"{path}: line 31 has no 'text' field"
    else:
        raise AssertionError("a row without text was accepted")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"name": "ragged", "data": {"dataset": str(path)}, "stages": ["evaluate"]}))
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and f"{path}: line 31 has no 'text' field" in result.output
    assert "Traceback" not in result.output


def test_a_byte_order_mark_in_a_csv_header_simply_works(tmp_path):
    plain = write_csv(tmp_path / "plain.csv", synthetic_rows(80))
    with_bom = tmp_path / "bom.csv"
    with_bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())  # what Excel's "CSV UTF-8" writes
    assert _splits(_task(with_bom)) == _splits(_task(plain))
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + b"".join(
        json.dumps({"text": t, "label": label}).encode() + b"\n" for t, label in synthetic_rows(80)
    ))
    assert _texts(_task(jsonl)) == _texts(_task(plain))
