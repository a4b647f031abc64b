"""Property test: whatever a recipe mapping holds, the validator answers with a Recipe or a CompressError.

Valid recipes are mutated (keys dropped, inserted, renamed; values replaced with random types) and fed to
the validator as mappings, as YAML text and with ``--set`` overrides; nothing else may escape. Path-like
strings (absolute, ``..``, ``.``, separators, ``~``, empty, NUL, very long) in every string field are
refused, or every name the recipe gives to an output stays inside the run directory.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compress.core.recipe import Recipe, load_recipe, parse_recipe
from compress.errors import CompressError
from compress.run.pipeline import default_run_dir

VALID = [
    {
        "name": "full",
        "seed": 0,
        "model": {"source": "minilm", "max_length": 64},
        "data": {"dataset": "rotten_tomatoes", "test_size": 2000, "dev_size": 0.1, "limit": 500},
        "stages": [
            {"finetune": {"epochs": 2, "learning_rate": 5.0e-5, "batch_size": 32}},
            {"export": {}},
            {"quantize": {"mode": "dynamic"}},
            {"evaluate": {"batch_sizes": [1, 8], "seq_lengths": [128, "p95"], "rounds": 30}},
            {"bundle": {}},
            {"report": {}},
        ],
    },
    {"name": "short", "stages": ["export", "quantize", {"evaluate": None}, "report"]},
    {"name": "ids", "stages": [{"finetune": {"id": "warm", "epochs": 1}}, {"finetune": {"epochs": 1}}, "export"]},
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["finetune", "export", "quantize", "p95", "minilm", "dynamic", "1e-3", "", "stages", "id"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4),
    max_leaves=12,
)


def _containers(node: Any, found: list[Any]) -> list[Any]:
    if isinstance(node, dict | list):
        found.append(node)
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            _containers(child, found)
    return found


def _mutate(recipe: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    recipe = copy.deepcopy(recipe)
    for _ in range(data.draw(st.integers(1, 3))):
        target = data.draw(st.sampled_from(_containers(recipe, [])))
        action = data.draw(st.sampled_from(["drop", "insert", "replace", "rename"]))
        if isinstance(target, dict):
            keys = list(target)
            if action == "insert" or not keys:
                target[data.draw(st.text(max_size=10) | st.sampled_from(["epochs", "name", "ratio"]))] = data.draw(values)
                continue
            key = data.draw(st.sampled_from(keys))
            if action == "drop":
                del target[key]
            elif action == "replace":
                target[key] = data.draw(values)
            else:
                target[str(key)[:-1] + data.draw(st.text(max_size=2))] = target.pop(key)
        else:
            if action == "insert" or not target:
                target.insert(data.draw(st.integers(0, len(target))), data.draw(values))
                continue
            index = data.draw(st.integers(0, len(target) - 1))
            if action == "drop":
                del target[index]
            else:
                target[index] = data.draw(values)
    return recipe


def _validate(raw: Any, overrides: list[str] | None = None) -> None:
    try:
        recipe = parse_recipe(raw, "fuzz.yaml", overrides)
    except CompressError as error:
        assert str(error).strip()
        return
    assert isinstance(recipe, Recipe)
    assert len(recipe.hash) == 16  # a validated recipe must also serialise


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(base=st.sampled_from(VALID), data=st.data())
def test_mutated_recipes_only_raise_compress_errors(base, data):
    _validate(_mutate(base, data))


@FUZZ
@given(raw=values)
def test_arbitrary_documents_only_raise_compress_errors(raw):
    _validate(raw)


OVERRIDE_TEXT = st.text(max_size=20) | st.from_regex(r"\w{1,8}(\.\w{1,8}){1,2}=.{0,8}", fullmatch=True)


@FUZZ
@given(base=st.sampled_from(VALID), overrides=st.lists(OVERRIDE_TEXT, max_size=3))
def test_random_overrides_only_raise_compress_errors(base, overrides):
    _validate(base, overrides)


_TMP = Path(tempfile.mkdtemp(prefix="recipe-fuzz-"))


@settings(max_examples=80, deadline=None)
@given(text=st.text(max_size=80) | st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
def test_arbitrary_recipe_text_only_raises_compress_errors(text):
    path = _TMP / "recipe.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_recipe(path)
    except CompressError:
        pass


def test_the_valid_seeds_are_valid():
    for raw in VALID:
        assert parse_recipe(yaml.safe_load(yaml.safe_dump(raw)), "ok.yaml").stages


# ------------------------------------------------------------------------------- path-like strings (issue 20)
PATH_LIKE = st.sampled_from([
    "/", "/etc/passwd", "/tmp/x", "..", ".", "../..", "../sibling", "a/b", "a/../..", "a\\b", "C:\\x", "~", "~/x",
    "", " ", "\0", "x\0y", ".hidden", "-rf", "a" * 300, "stages", "state.json", "bundle", "teacher", "ok-name_1.0",
]) | st.text(alphabet="./\\~a-_\0 ", max_size=12)

PATH_BASE = {
    "name": "paths",
    "description": "d",
    "model": {"source": "minilm", "name": "teacher", "tokenizer": "tok"},
    "data": {"dataset": "reviews.csv", "text_column": "text", "label_column": "label"},
    "stages": [
        {"finetune": {"id": "warm", "name": "teacher"}},
        {"export": {"id": "onnx", "name": "teacher-onnx"}},
        {"quantize": {"id": "int8", "name": "teacher-int8"}},
        {"evaluate": {"variants": ["teacher-int8"]}},
        {"bundle": {"id": "ship", "directory": "bundle", "variant": "teacher-int8"}},
        {"report": {}},
    ],
}


def _string_fields(node: Any, at: tuple = ()) -> list[tuple]:
    """Where PATH_BASE holds a string: every field a recipe may fill with a path-like value."""
    if isinstance(node, str):
        return [at]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    return [found for key, child in items for found in _string_fields(child, (*at, key))]


STRING_FIELDS = _string_fields(PATH_BASE)


def _set(raw: dict[str, Any], at: tuple, value: str) -> None:
    for key in at[:-1]:
        raw = raw[key]
    raw[at[-1]] = value


def _strictly_inside(path: Path, parent: Path) -> bool:
    normal = Path(os.path.normpath(path))
    return parent in normal.parents and normal.parent == parent


def _assert_outputs_inside_a_run_dir(recipe: Recipe, root: Path) -> None:
    """Every output name the recipe chose lands directly in its place inside the run directory."""
    run_dir = default_run_dir(recipe, root)
    assert _strictly_inside(run_dir, root)
    for index, spec in enumerate(recipe.stages):
        assert _strictly_inside(run_dir / "stages" / f"{index + 1:02d}-{spec.id}", run_dir / "stages")
        directory = getattr(spec.config, "directory", None)
        if directory is not None:
            assert _strictly_inside(run_dir / directory, run_dir)


@FUZZ
@given(data=st.data())
def test_path_like_strings_are_refused_or_stay_inside_the_run_dir(data):
    raw = copy.deepcopy(PATH_BASE)
    for at in data.draw(st.lists(st.sampled_from(STRING_FIELDS), min_size=1, max_size=4, unique=True)):
        _set(raw, at, data.draw(PATH_LIKE))
    try:
        recipe = parse_recipe(raw, "fuzz.yaml")
    except CompressError as error:
        assert str(error).strip()
        return
    _assert_outputs_inside_a_run_dir(recipe, _TMP / "runs")


@FUZZ
@given(field=st.sampled_from(["name", "warm.id", "ship.directory", "ship.id"]), value=PATH_LIKE)
def test_path_like_overrides_are_refused_or_stay_inside_the_run_dir(field, value):
    base = copy.deepcopy(PATH_BASE)
    try:
        if field == "name":
            base["name"] = value  # --set takes SECTION.FIELD; the name is a top-level scalar
            recipe = parse_recipe(base, "fuzz.yaml")
        else:
            recipe = parse_recipe(base, "fuzz.yaml", [f"{field}={value}"])
    except CompressError as error:
        assert str(error).strip()
        return
    _assert_outputs_inside_a_run_dir(recipe, _TMP / "runs")
