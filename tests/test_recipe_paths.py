"""Nothing outside the run directory is created, replaced or deleted because of what a recipe says.

Names a recipe chooses (bundle.directory, stage ids, the recipe name) are single plain names or refused;
the bundle writer never follows a symlink or replaces someone else's folder; temporary names are unique
to compress, so cleaning never touches a user's file; what compress writes has the user's permissions.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny import quiet_console

from compress.bundle.writer import MANIFEST_FILE, write_bundle
from compress.core.files import atomic_path, is_temp_name, temp_sibling, write_text_atomic
from compress.core.recipe import parse_recipe
from compress.data.tokenization import TextEncoder
from compress.errors import RecipeError, StageError
from compress.run.directory import remove_stale_temp_files
from compress.run.pipeline import default_run_dir, run_recipe

ROOT = Path(__file__).resolve().parent.parent
ESCAPING = ["/tmp/elsewhere", "/", "..", ".", "../sibling", "a/b", "a/../..", "a\\b", "~", "~/x", "", "x\0y",
            ".hidden", "-rf", "a" * 101, "run dir"]


def _raw(**sections) -> dict:
    return {"name": "t", "stages": ["export", {"bundle": {}}], **sections}


@pytest.mark.parametrize("name", ESCAPING)
def test_bundle_directory_must_be_a_plain_name(name):
    raw = _raw(stages=["export", {"bundle": {"directory": name}}])
    with pytest.raises(RecipeError, match=r"stages\[1\] \(bundle\).directory: must be a plain folder name"):
        parse_recipe(raw, "t.yaml")


@pytest.mark.parametrize("name", ESCAPING)
def test_stage_ids_must_be_plain_names(name):
    raw = _raw(stages=[{"export": {"id": name}}, "bundle"])
    with pytest.raises(RecipeError, match=r"stages\[0\] \(export\).id: must be a plain folder name"):
        parse_recipe(raw, "t.yaml")


@pytest.mark.parametrize("name", ESCAPING)
def test_the_recipe_name_must_be_a_plain_name(name):
    with pytest.raises(RecipeError, match="t.yaml: name: must be a plain folder name"):
        parse_recipe(_raw(name=name), "t.yaml")


@pytest.mark.parametrize("override", ["bundle.directory=..", "bundle.directory=/tmp/x", "export.id=../x"])
def test_overrides_are_held_to_the_same_rule(override):
    with pytest.raises(RecipeError, match="must be a plain folder name"):
        parse_recipe(_raw(), "t.yaml", overrides=[override])


@pytest.mark.parametrize("name", ["stages", "state.json", "REPORT.json", "report.html"])
def test_bundle_directory_may_not_take_a_name_compress_uses(name):
    with pytest.raises(RecipeError, match=f"'{name}' is a name compress uses for its own outputs"):
        parse_recipe(_raw(stages=["export", {"bundle": {"directory": name}}]), "t.yaml")


def test_plain_names_are_accepted_and_the_default_run_dir_stays_under_its_root(tmp_path):
    stages = [{"export": {"id": "to.onnx"}}, {"bundle": {"directory": "Ship_1"}}]
    recipe = parse_recipe(_raw(name="my_recipe-2.1", stages=stages), "t.yaml")
    assert [s.id for s in recipe.stages] == ["to.onnx", "bundle"] and recipe.stages[1].config.directory == "Ship_1"
    assert default_run_dir(recipe, tmp_path).parent == tmp_path


def test_the_cli_refuses_an_escaping_bundle_directory_with_exit_2(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_raw(stages=["export", {"bundle": {"directory": ".."}}])))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250"}
    result = subprocess.run([sys.executable, "-m", "compress", "validate", str(path)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and "(bundle).directory" in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------------------------------------- bundle writer
@pytest.fixture
def bundle_inputs(tmp_path, tiny_checkpoints):
    onnx = tmp_path / "inputs" / "model.onnx"
    onnx.parent.mkdir()
    onnx.write_bytes(b"not really onnx, the writer only copies it")
    return onnx, TextEncoder.from_dir(tiny_checkpoints["bert"], 32)


def _write(target: Path, run_dir: Path, bundle_inputs) -> Path:
    onnx, encoder = bundle_inputs
    return write_bundle(target, onnx, encoder, ("neg", "pos"), {}, root=run_dir)


def test_a_symlink_in_place_of_the_bundle_is_never_followed(tmp_path, bundle_inputs):
    outside = tmp_path / "users-work"
    outside.mkdir()
    (outside / "thesis.tex").write_text("years of work")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "bundle").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StageError, match="is a symbolic link"):
        _write(run_dir / "bundle", run_dir, bundle_inputs)
    assert [p.name for p in outside.iterdir()] == ["thesis.tex"] and (run_dir / "bundle").is_symlink()
    assert sorted(p.name for p in run_dir.iterdir()) == ["bundle"]  # no staging folder left behind


def test_the_writer_refuses_targets_outside_the_run_dir_and_folders_it_did_not_write(tmp_path, bundle_inputs):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for target in (tmp_path / "elsewhere", run_dir, run_dir / ".." / "x", run_dir / "a" / ".." / ".."):
        with pytest.raises(StageError, match="is not inside the run directory"):
            _write(target, run_dir, bundle_inputs)
    (run_dir / "file").write_text("mine")
    with pytest.raises(StageError, match="exists and is not a folder"):
        _write(run_dir / "file", run_dir, bundle_inputs)
    (run_dir / "mine").mkdir()
    (run_dir / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(StageError, match="not a compress bundle"):
        _write(run_dir / "mine", run_dir, bundle_inputs)
    assert (run_dir / "file").read_text() == (run_dir / "mine" / "notes.txt").read_text() == "mine"
    assert not list(tmp_path.glob("elsewhere*")) and not list(tmp_path.glob("x"))


def test_a_previous_bundle_is_replaced_and_nothing_temporary_is_left(tmp_path, bundle_inputs):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    first = _write(run_dir / "bundle", run_dir, bundle_inputs)
    (first / "stale.txt").write_text("from an older bundle")
    again = _write(run_dir / "bundle", run_dir, bundle_inputs)
    assert sorted(p.name for p in again.iterdir()) == [MANIFEST_FILE, "model.onnx", "tokenizer.json"]
    assert [p.name for p in run_dir.iterdir()] == ["bundle"]


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775)])
def test_bundle_files_get_the_users_umask_permissions(tmp_path, bundle_inputs, umask, file_mode, dir_mode):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    previous = os.umask(umask)
    try:
        bundle = _write(run_dir / "bundle", run_dir, bundle_inputs)
        written = write_text_atomic(run_dir / "report.md", "# report\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(bundle.stat().st_mode) == dir_mode
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [*bundle.iterdir(), written]}
    assert modes == {MANIFEST_FILE: file_mode, "model.onnx": file_mode, "tokenizer.json": file_mode, "report.md": file_mode}


# ------------------------------------------------------------------------------------------------ temp files
def test_temp_names_are_unique_to_compress(tmp_path):
    with atomic_path(tmp_path / "model.onnx") as tmp:
        assert tmp.exists() and is_temp_name(tmp.name) and tmp.name.startswith(".compress-tmp.model.onnx.")
        tmp.write_text("x")
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    long = temp_sibling(tmp_path / ("n" * 250)).name
    assert is_temp_name(long) and len(long) < 255
    for users in (".notes.tmp1", ".model.onnx.abc.tmp", ".compress-tmp.x", ".compress-tmp.x.0123456789abcdeg", "x.tmp"):
        assert not is_temp_name(users), users


def _plant_leftovers(run_dir: Path, outside: Path) -> dict[str, Path]:
    stage_dir = next((run_dir / "stages").iterdir())
    planted = {
        "user": run_dir / ".notes.tmp1",
        "user_nested": stage_dir / ".draft.tmp",
        "temp": temp_sibling(stage_dir / "model.onnx"),
        "staging": temp_sibling(run_dir / "deploy"),
        "link": temp_sibling(run_dir / "link"),
    }
    for key in ("user", "user_nested", "temp"):
        planted[key].write_text(key)
    planted["staging"].mkdir()
    (planted["staging"] / "model.onnx").write_text("half a bundle")
    planted["link"].symlink_to(outside, target_is_directory=True)
    return planted


def _listing(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p != skip and skip not in p.parents
    }


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, tiny_checkpoints, synthetic_csv):
    """export -> bundle on the tiny model, with recipe-chosen names, run in a folder full of the user's files."""
    root = tmp_path_factory.mktemp("workspace")
    (root / "notes.txt").write_text("keep")
    (root / ".notes.tmp1").write_text("keep too")
    (root / "sibling-project").mkdir()
    (root / "sibling-project" / "data.csv").write_text("a,b\n")
    raw = {
        "name": "paths",
        "model": {"source": str(tiny_checkpoints["bert"]), "max_length": 16},
        "data": {"dataset": str(synthetic_csv), "test_size": 60, "dev_size": 60, "limit": 300},
        "stages": [{"export": {"id": "to-onnx"}}, {"bundle": {"id": "ship", "directory": "deploy"}}],
    }
    recipe_path = root / "paths.yaml"
    recipe_path.write_text(yaml.safe_dump(raw))
    run_dir = root / "run"
    inputs = [tiny_checkpoints["bert"], synthetic_csv]
    before = _listing(root, run_dir), [_listing(p.parent, p.parent / "none") for p in inputs]
    result = run_recipe(recipe_path, out=run_dir, console=quiet_console()[0])
    return root, recipe_path, result, inputs, before


def test_a_short_run_writes_only_inside_its_run_directory(short_run):
    root, _, result, inputs, (outside_before, inputs_before) = short_run
    assert _listing(root, result.run_dir) == outside_before
    assert [_listing(p.parent, p.parent / "none") for p in inputs] == inputs_before
    assert result.bundle_dir == result.run_dir / "deploy" and (result.bundle_dir / MANIFEST_FILE).is_file()
    assert sorted(p.name for p in (result.run_dir / "stages").iterdir()) == ["00-input", "01-to-onnx", "02-ship"]
    assert not [p for p in result.run_dir.rglob("*") if is_temp_name(p.name)]


def test_resume_and_restart_clean_only_what_compress_left(short_run, tmp_path):
    root, recipe_path, result, _, _ = short_run
    outside = tmp_path / "linked"
    outside.mkdir()
    (outside / ".compress-tmp.keep.0123456789abcdef").write_text("not under the run dir")

    planted = _plant_leftovers(result.run_dir, outside)
    console, log = quiet_console()
    run_recipe(recipe_path, out=result.run_dir, console=console)
    assert "Resuming" in log.getvalue()
    assert planted["user"].read_text() == "user" and planted["user_nested"].read_text() == "user_nested"
    assert not planted["temp"].exists() and not planted["staging"].exists()
    assert planted["link"].is_symlink() and (outside / ".compress-tmp.keep.0123456789abcdef").exists()
    planted["link"].unlink()

    planted = _plant_leftovers(result.run_dir, outside)
    console, log = quiet_console()
    again = run_recipe(recipe_path, out=result.run_dir, console=console, restart=True)
    assert "Restarting" in log.getvalue()
    assert planted["user"].read_text() == "user" and not planted["staging"].exists()
    assert planted["link"].is_symlink() and (outside / ".compress-tmp.keep.0123456789abcdef").exists()
    assert (again.bundle_dir / MANIFEST_FILE).is_file()
    assert (root / ".notes.tmp1").read_text() == "keep too"


def test_stale_temp_cleaning_never_follows_links(tmp_path):
    run_dir, outside = tmp_path / "run", tmp_path / "outside"
    (run_dir / "stages" / "01-x").mkdir(parents=True)
    outside.mkdir()
    theirs = temp_sibling(outside / "file")
    theirs.write_text("someone else's")
    (run_dir / "stages" / "01-x" / "elsewhere").symlink_to(outside, target_is_directory=True)
    ours = temp_sibling(run_dir / "stages" / "01-x" / "model.onnx")
    ours.write_text("half")
    assert remove_stale_temp_files(run_dir) == 1
    assert theirs.exists() and not ours.exists()
