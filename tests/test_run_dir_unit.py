"""A run directory is one unit: locked against a second run, relocatable, recoverable, and its bad
states (a damaged state.json, a read-only or full disk) end in one message, never a traceback."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny import quiet_console
from typer.testing import CliRunner

from compress.cli import app
from compress.errors import CompressError
from compress.run.lock import LOCK_FILE, run_lock
from compress.run.pipeline import run_recipe
from compress.run.state import MARKER_FILE, read_state

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
STAGES = [
    {"finetune": {"epochs": 1, "learning_rate": 3e-3, "batch_size": 16}},
    {"export": {"check_examples": 4}},
    {"bundle": {}},
    {"report": {}},
]


@pytest.fixture
def recipe_file(tiny_recipe, tmp_path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(STAGES)))
    return path


def _run(recipe_file: Path, out: Path | str, **options):
    console, log = quiet_console()
    result = run_recipe(recipe_file, out=out, console=console, **options)
    return result, log.getvalue()


def _files_used(result) -> list[Path]:
    """Every path the run's state and report point at (variants, tokenizers, bundle)."""
    state = read_state(result.run_dir)
    paths = [Path(v[key]) for v in state["variants"] for key in ("path", "processor_dir")]
    paths += [Path(v["path"]) for v in result.report["variants"]]
    return [*paths, Path(state["bundle_dir"]), result.bundle_dir]


def _all_inside(paths: list[Path], run_dir: Path) -> bool:
    return all(p.resolve().is_relative_to(run_dir.resolve()) and p.exists() for p in paths)


# 1. the lock


def test_a_second_run_on_the_same_out_is_refused_naming_the_first_and_a_killed_holder_blocks_nothing(
    recipe_file, tmp_path
):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom compress.run.lock import run_lock\n"
         "with run_lock(Path(sys.argv[1])):\n    print('locked', flush=True)\n    time.sleep(120)\n", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        refused = runner.invoke(app, ["run", str(recipe_file), "--out", str(out)])
        assert refused.exit_code == 2, refused.output
        assert f"pid {holder.pid}" in refused.output and "another compress run" in refused.output
        assert "Traceback" not in refused.output
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # the refused run wrote nothing
    finally:
        holder.kill()  # SIGKILL: the kernel drops the flock with the process
        holder.wait(timeout=30)
    result, log = _run(recipe_file, out)
    assert (out / LOCK_FILE).is_file() and (result.bundle_dir / "manifest.json").is_file()
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()  # the lock now names this run


def test_the_lock_conflicts_within_one_process_too(recipe_file, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with run_lock(out), pytest.raises(CompressError, match=rf"another compress run.*pid {os.getpid()}"):
        _run(recipe_file, out)
    assert not (out / "state.json").exists()


# 2. relocatable


def test_a_moved_or_copied_run_resumes_and_redoes_with_its_own_files(recipe_file, tmp_path, monkeypatch):
    original, _ = _run(recipe_file, tmp_path / "original")
    stored = json.loads((original.run_dir / "state.json").read_text())
    assert all(not Path(v["path"]).is_absolute() for v in stored["variants"]) and stored["bundle_dir"] == "bundle"
    weights = original.run_dir / "stages" / "01-finetune" / "model" / "model.safetensors"
    original_onnx = original.run_dir / "stages" / "02-export" / "model.onnx"
    stamps = weights.stat().st_mtime_ns, original_onnx.stat().st_mtime_ns

    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(original.run_dir, copy)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    redone, log = _run(recipe_file, os.path.relpath(copy, elsewhere), redo="export")
    assert "Redoing" in log and "fine-tune epoch" not in log
    assert _all_inside(_files_used(redone), copy)
    assert (weights.stat().st_mtime_ns, original_onnx.stat().st_mtime_ns) == stamps  # the original untouched

    moved = tmp_path / "moved"
    shutil.move(original.run_dir, moved)
    resumed, log = _run(recipe_file, moved)
    assert "report already done" in log and "fine-tune epoch" not in log
    assert _all_inside(_files_used(resumed), moved)
    redone, log = _run(recipe_file, moved, redo="export")
    assert _all_inside(_files_used(redone), moved)
    assert (moved / "stages" / "02-export" / "model.onnx").stat().st_mtime_ns != stamps[1]


def _as_before_relative_paths(run_dir: Path, prefix: str) -> None:
    """Rewrite state.json as compress wrote it before paths were stored relative to the run: every
    path spelled ``prefix/...`` (the run's directory as given to --out then), no ``state_format``."""
    path = run_dir / "state.json"
    state = json.loads(path.read_text())
    del state["state_format"]
    for variant in state["variants"]:
        variant["tokenizer_dir"] = variant.pop("processor_dir")  # the key state.json had then
        for key in ("path", "tokenizer_dir"):
            variant[key] = f"{prefix}/{variant[key]}"
    state["bundle_dir"] = f"{prefix}/{state['bundle_dir']}"
    path.write_text(json.dumps(state))


def test_a_state_saved_with_absolute_paths_resumes_in_place_and_after_a_move(recipe_file, tmp_path, monkeypatch):
    run_dir = _run(recipe_file, tmp_path / "old")[0].run_dir
    _as_before_relative_paths(run_dir, str(run_dir.resolve()))
    redone, log = _run(recipe_file, run_dir, redo="bundle")  # in place, as before
    assert "Redoing" in log and _all_inside(_files_used(redone), run_dir)

    _as_before_relative_paths(run_dir, str(run_dir.resolve()))
    moved = tmp_path / "new-home"
    shutil.move(run_dir, moved)
    monkeypatch.chdir(tmp_path)
    resumed, log = _run(recipe_file, "new-home")
    assert "report already done" in log and _all_inside(_files_used(resumed), moved)


def test_a_state_saved_with_working_directory_relative_paths_resumes_from_elsewhere(recipe_file, tmp_path, monkeypatch):
    run_dir = _run(recipe_file, tmp_path / "runs" / "old")[0].run_dir
    _as_before_relative_paths(run_dir, "runs/old")  # as written by `compress run --out runs/old` in tmp_path
    monkeypatch.chdir(run_dir)
    redone, log = _run(recipe_file, ".", redo="export")
    assert "Redoing" in log and "fine-tune epoch" not in log
    assert _all_inside(_files_used(redone), run_dir)


# 3. recoverable before the first state.json


def _crash_while_saving_the_input(monkeypatch):
    from compress.models import persistence

    real = persistence.save_model

    def full_disk(model, directory, factory=None):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "model.safetensors").write_bytes(b"half a model")
        monkeypatch.setattr(persistence, "save_model", real)
        raise OSError(errno.ENOSPC, "No space left on device", str(directory / "model.safetensors"))

    monkeypatch.setattr(persistence, "save_model", full_disk)


def test_a_run_that_died_saving_its_input_resumes(recipe_file, tmp_path, monkeypatch):
    out = tmp_path / "run"
    _crash_while_saving_the_input(monkeypatch)
    with pytest.raises(CompressError, match=r"no space left.*00-input/model/model\.safetensors \(stage input\): .* free"):
        _run(recipe_file, out)
    assert not (out / "state.json").exists() and (out / MARKER_FILE).is_file()
    result, log = _run(recipe_file, out)
    assert "Starting over" in log
    assert (result.bundle_dir / "manifest.json").is_file() and result.report is not None
    from compress.models.persistence import load_model

    load_model(out / "stages" / "00-input" / "model")  # the half-written input was replaced


def test_a_run_that_died_saving_its_input_restarts_and_a_different_recipe_is_refused(
    recipe_file, tiny_recipe, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    _crash_while_saving_the_input(monkeypatch)
    with pytest.raises(CompressError, match="no space left"):
        _run(recipe_file, out)
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(tiny_recipe([{"finetune": {"epochs": 1, "batch_size": 16}}])))
    with pytest.raises(CompressError, match="different recipe.*stopped before saving its input.*--restart"):
        _run(other, out)
    (out / "notes.txt").write_text("mine")
    result, _ = _run(other, out, restart=True)
    assert read_state(out)["completed"] == ["input", "finetune"] and (out / "notes.txt").read_text() == "mine"


# 4. a deleted bundle is rebuilt


def test_a_rerun_rebuilds_a_deleted_bundle(recipe_file, tmp_path):
    from compress import predict

    first, _ = _run(recipe_file, tmp_path / "run")
    stages = [s["id"] for s in first.report["stages"]]
    shutil.rmtree(first.bundle_dir)
    again, log = _run(recipe_file, first.run_dir)
    assert "bundle" in log and "is missing; writing it again" in log and "fine-tune epoch" not in log
    assert (again.bundle_dir / "manifest.json").is_file()
    assert [s["id"] for s in again.report["stages"]] == stages  # the bundle's record replaced, not added
    assert [p.label for p in predict(again.bundle_dir, ["a superb and moving film"])] in (["pos"], ["neg"])


# 5. bad run directories


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda state: [state], r"state\.json: not a compress run state \(a JSON list"),
        (lambda state: {k: v for k, v in state.items() if k != "completed"}, r"state\.json: lacks 'completed'"),
        (lambda state: {**state, "variants": {}}, r"state\.json: has a malformed \(not a list\) 'variants'"),
        (lambda state: {**state, "variants": [{"name": "teacher"}]}, r"state\.json: a variant lacks one of"),
    ],
    ids=["list", "no-completed", "variants-not-a-list", "variant-without-path"],
)
def test_a_damaged_state_is_one_message_and_restart_recovers(recipe_file, tmp_path, damage, message):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "state.json").write_text(json.dumps(damage({"recipe_hash": "x", "completed": [], "variants": [],
                                                           "current": "teacher"})))
    result = runner.invoke(app, ["run", str(recipe_file), "--out", str(run_dir)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert str(run_dir / "state.json") in result.output.replace("\n", "")
    with pytest.raises(CompressError, match=rf"{message}.*--restart"):
        _run(recipe_file, run_dir)
    if isinstance(damage({}), list):  # one full run is enough to show that --restart recovers
        restarted, log = _run(recipe_file, run_dir, restart=True)
        assert "Restarting" in log and (restarted.bundle_dir / "manifest.json").is_file()


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES], ids=["read-only", "permission-denied"])
def test_an_unwritable_out_is_one_message(recipe_file, tmp_path, monkeypatch, code):
    """Tests run as root, where chmod stops nothing: the filesystem's refusal is simulated."""
    fresh, existing = tmp_path / "fresh", tmp_path / "existing"
    existing.mkdir()
    real_mkdir, real_open = Path.mkdir, os.open

    def mkdir(self, *args, **kwargs):
        if self == fresh:
            raise OSError(code, os.strerror(code), str(self))
        return real_mkdir(self, *args, **kwargs)

    def open_(path, *args, **kwargs):
        if str(path).startswith(str(existing)):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)
    reason = "read-only filesystem" if code == errno.EROFS else "permission denied"
    result = runner.invoke(app, ["run", str(recipe_file), "--out", str(fresh)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{fresh}: {reason}" in result.output and "--out directory you can write to" in result.output
    with pytest.raises(CompressError, match=rf"{LOCK_FILE}: {reason} \(stage preparing the run directory\)"):
        _run(recipe_file, existing)


def test_an_out_below_a_file_is_one_message(recipe_file, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["run", str(recipe_file), "--out", str(tmp_path / "notes.txt" / "run")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "notes.txt is a file" in result.output
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT], ids=["no-space", "quota"])
def test_a_full_disk_mid_run_names_the_stage_and_the_free_space_and_resumes(recipe_file, tmp_path, monkeypatch, code):
    import compress.onnx.export

    out = tmp_path / "run"
    real = compress.onnx.export.export_onnx

    def full(*args, **kwargs):
        monkeypatch.setattr(compress.onnx.export, "export_onnx", real)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(compress.onnx.export, "export_onnx", full)
    result = runner.invoke(app, ["run", str(recipe_file), "--out", str(out)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    flat = result.output.replace("\n", "")
    assert f"no space left on the device while writing {out} (stage export)" in flat
    assert re.search(r"\(stage export\): [0-9.]+ [MG]B free on that filesystem", flat)
    assert read_state(out)["completed"] == ["input", "finetune"]
    resumed, log = _run(recipe_file, out)
    assert "Resuming" in log and "fine-tune epoch" not in log and (resumed.bundle_dir / "manifest.json").is_file()
