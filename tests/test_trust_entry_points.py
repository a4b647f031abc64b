"""Loading a model never runs code without trust, on every entry point (issue 20, part 1).

A compress model directory runs code on load when it holds a ``torch.export`` program (unpickled) or
names a Python factory (imported and called). Given as input (``model.source``, ``compress bench``) such
a directory needs ``--trust-model-code``; a run's own torch.export program reloads without it, but only
while its bytes are the ones whose sha256 compress recorded as it wrote them.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from tiny import VOCAB, RunsCode, quiet_console, synthetic_rows, tiny_tokenizer, write_csv
from torch import nn
from typer.testing import CliRunner

from compress.cli import app
from compress.core.recipe import ModelConfig
from compress.core.variant import Variant
from compress.errors import ModelLoadError
from compress.models.persistence import MANIFEST, load_model, save_model
from compress.models.sources import load_input_model
from compress.models.torch_export import PROGRAM_FILE, save_exported

LABELS = ("neg", "pos")
runner = CliRunner()


class BagOfWords(nn.Module):
    """A tiny classifier over the tiny vocabulary: masked mean of embeddings, then a linear head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(len(VOCAB), 8)
        self.head = nn.Linear(8, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).float()
        return self.head((self.embed(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0))


def _ids() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[2, 5, 20, 3, 0], [2, 13, 3, 0, 0], [2, 7, 8, 9, 3]])
    return ids, (ids != 0).long()


def _inputs() -> dict[str, torch.Tensor]:
    """The same inputs by name, as every compress model is called."""
    ids, mask = _ids()
    return {"input_ids": ids, "attention_mask": mask}


def write_exported(directory: Path) -> str:
    """``BagOfWords`` as compress's own torch.export directory (with tokenizer); returns its sha256."""
    batch, seq = torch.export.Dim("batch", max=64), torch.export.Dim("seq", min=2, max=128)
    program = torch.export.export(
        BagOfWords().eval(), _ids(), dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq})
    )
    digest = save_exported(program, directory, {"architecture": "BagOfWords"})
    if not (directory / "tokenizer.json").exists():
        tiny_tokenizer().save(str(directory / "tokenizer.json"))
    return digest


def make_malicious(program: Path, marker: Path) -> None:
    """Rewrite a .pt2 archive so that loading it runs ``touch marker``: its pickled sample inputs
    become an object whose unpickling calls os.system (torch.export.load falls back to
    ``weights_only=False`` for them)."""
    payload = io.BytesIO()
    torch.save((RunsCode(str(marker)), {}), payload)
    original = zipfile.ZipFile(io.BytesIO(program.read_bytes()))
    with zipfile.ZipFile(program, "w") as archive:
        for item in original.infolist():
            crafted = item.filename.endswith("sample_inputs/model.pt")
            archive.writestr(item, payload.getvalue() if crafted else original.read(item.filename))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, str]:
    directory = tmp_path_factory.mktemp("exported") / "model"
    return directory, write_exported(directory)


@pytest.fixture
def evil(exported, tmp_path) -> tuple[Path, Path]:
    """A copy of the exported directory whose program writes ``marker`` when unpickled."""
    directory, marker = tmp_path / "evil", tmp_path / "pwned"
    shutil.copytree(exported[0], directory)
    make_malicious(directory / PROGRAM_FILE, marker)
    return directory, marker


@pytest.fixture
def factory_dir(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A compress model directory naming the factory ``trust_markers:build``, which writes a marker."""
    marker = tmp_path / "factory-ran"
    (tmp_path / "trust_markers.py").write_text(
        "from pathlib import Path\n"
        "from test_trust_entry_points import BagOfWords\n"
        f"def build():\n    Path({str(marker)!r}).touch()\n    return BagOfWords()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "trust_markers", raising=False)  # each test's own marker path
    directory = save_model(BagOfWords(), tmp_path / "factory-model", factory="trust_markers:build")
    tiny_tokenizer().save(str(directory / "tokenizer.json"))
    marker.unlink(missing_ok=True)
    return directory, marker


def test_the_crafted_program_really_runs_code(evil):
    directory, marker = evil
    with pytest.raises(Exception):  # noqa: B017  (whatever torch makes of it after the payload ran)
        torch.export.load(str(directory / PROGRAM_FILE)).module()(*_ids())
    assert marker.exists()


# --- run: model.source ---------------------------------------------------------------------------


def test_model_source_exported_dir_needs_trust(evil, exported):
    directory, marker = evil
    with pytest.raises(ModelLoadError, match=f"{directory / PROGRAM_FILE}: a torch.export program") as caught:
        load_input_model(ModelConfig(source=str(directory)), LABELS)
    assert "--trust-model-code" in str(caught.value) and not marker.exists()
    loaded = load_input_model(ModelConfig(source=str(exported[0]), trust_model_code=True), LABELS)
    with torch.no_grad():
        assert torch.allclose(loaded.module(**_inputs()), BagOfWords()(*_ids()))


def test_run_cli_refuses_an_untrusted_exported_source(evil, tmp_path):
    directory, marker = evil
    csv_path = write_csv(tmp_path / "data.csv", synthetic_rows(200))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "trust", "model": {"source": str(directory)},
        "data": {"dataset": str(csv_path), "test_size": 40, "dev_size": 40}, "stages": ["evaluate"],
    }))
    result = runner.invoke(app, ["run", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert str(directory / PROGRAM_FILE) in result.output and "--trust-model-code" in result.output
    assert "Traceback" not in result.output and not marker.exists()


# --- bench: CLI and Python -----------------------------------------------------------------------

BENCH_ARGS = ["--rounds", "3", "--warmup", "0", "--blocks", "1", "--batch-sizes", "1", "--seq-lengths", "8",
              "--runtimes", "torch", "--no-memory"]


@pytest.mark.parametrize("kind", ["exported", "factory"])
def test_bench_cli_refuses_code_running_dirs_without_trust(kind, evil, factory_dir):
    directory, marker = evil if kind == "exported" else factory_dir
    result = runner.invoke(app, ["bench", str(directory), *BENCH_ARGS])
    assert result.exit_code == 2, result.output
    named = directory / (PROGRAM_FILE if kind == "exported" else MANIFEST)
    assert str(named) in result.output and "--trust-model-code" in result.output
    assert not marker.exists()


def _settings():
    from compress.evaluation.suite import LatencySettings

    return LatencySettings(devices=["cpu"], batch_sizes=[1], seq_lengths=[8], rounds=3, warmup=0, blocks=1,
                           runtimes=["torch"], memory=False)


def test_bench_python_needs_trust_and_records_what_it_trusted(evil, exported, factory_dir):
    from compress.evaluation.bench import bench
    from compress.evaluation.path_variants import loadable

    for directory, marker in (evil, factory_dir):
        with pytest.raises(ModelLoadError, match="--trust-model-code"):
            bench([directory], _settings(), console=quiet_console()[0])
        assert not marker.exists()
    report = bench([exported[0], factory_dir[0]], _settings(), console=quiet_console()[0], trust_model_code=True)
    program, factory = report["variants"]
    assert program["info"]["program_sha256"] == exported[1] and factory["info"]["factory"] == "trust_markers:build"
    assert program["latency_ms"]["cpu"] and factory["latency_ms"]["cpu"]
    assert factory_dir[1].exists()  # trusted: the factory did run
    # The memory subprocess reloads each variant from its record, without the flag: only what was trusted.
    reloaded = loadable(Variant.from_record({**_record(exported[0]), "info": program["info"]})).module()
    with torch.no_grad():
        assert torch.allclose(reloaded(**_inputs()), BagOfWords()(*_ids()))


def _record(path: Path) -> dict:
    return Variant("m", "torch", "fp32", path, path, "bench").to_record()


# --- a run's own outputs: resume and --redo ------------------------------------------------------


def test_own_program_loads_only_while_its_digest_matches(exported, evil):
    directory, digest = exported
    with torch.no_grad():
        assert torch.allclose(load_model(directory, expected_sha256=digest)(**_inputs()), BagOfWords()(*_ids()))
    assert json.loads((directory / MANIFEST).read_text())["sha256"] == digest  # also kept with the program
    evil_dir, marker = evil
    with pytest.raises(ModelLoadError, match="not the program compress wrote here"):
        load_model(evil_dir, expected_sha256=digest)
    assert not marker.exists()


def test_own_factory_loads_only_when_the_recipe_named_it(factory_dir):
    directory, marker = factory_dir
    with pytest.raises(ModelLoadError, match="factory 'trust_markers:build'"):
        Variant("input", "torch", "fp32", directory, directory, "input", {"source": "other:build"}).module()
    assert not marker.exists()
    variant = Variant("input", "torch", "fp32", directory, directory, "input", {"source": "trust_markers:build"})
    with torch.no_grad():
        assert torch.allclose(variant.module()(**_inputs()), BagOfWords()(*_ids()))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_checkpoints) -> tuple[Path, Path]:
    from compress.run.pipeline import run_recipe

    root = tmp_path_factory.mktemp("trust-run")
    csv_path = write_csv(root / "data.csv", synthetic_rows(240, seed=3))
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "trust", "seed": 0, "model": {"source": str(tiny_checkpoints["bert"]), "max_length": 16},
        "data": {"dataset": str(csv_path), "test_size": 40, "dev_size": 40},
        "stages": [
            {"finetune": {"epochs": 1, "batch_size": 32}},
            {"evaluate": {"batch_sizes": [1], "seq_lengths": [8], "rounds": 3, "warmup": 0, "memory": False,
                          "runtimes": ["torch"]}},
            {"report": {}},
        ],
    }))
    run_recipe(recipe, out=root / "run", console=quiet_console()[0])
    return recipe, root / "run"


def _as_inc_output(run_dir: Path, tmp_path: Path) -> tuple[Path, str]:
    """Copy the run and turn its finetune variant into what the INC stage leaves: a torch.export program
    saved by ``save_exported`` whose digest the variant's record holds."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    state = json.loads((copy / "state.json").read_text())
    record = next(r for r in state["variants"] if r["stage"] == "finetune")
    directory = copy / "stages" / Path(record["path"]).parent.name / "model"
    (directory / MANIFEST).unlink()
    (directory / "model.safetensors").unlink()
    record["info"]["program_sha256"] = write_exported(directory)
    (copy / "state.json").write_text(json.dumps(state))
    return copy, directory


@pytest.mark.parametrize("how", ["redo", "resume"])
def test_resume_and_redo_reload_the_runs_own_program_but_refuse_a_replaced_one(how, finished_run, tmp_path):
    from compress.run.pipeline import run_recipe

    recipe, run_dir = finished_run
    copy, directory = _as_inc_output(run_dir, tmp_path)

    def rerun():
        if how == "redo":
            return run_recipe(recipe, out=copy, redo="evaluate", console=quiet_console()[0])
        state = json.loads((copy / "state.json").read_text())
        state["completed"] = [s for s in state["completed"] if s != "evaluate"]  # killed while evaluating
        (copy / "state.json").write_text(json.dumps(state))
        return run_recipe(recipe, out=copy, console=quiet_console()[0])

    measured = {v["stage"]: v for v in rerun().report["variants"]}
    assert 0 <= measured["finetune"]["accuracy"] <= 1  # the program was loaded and evaluated
    assert measured["finetune"]["latency_ms"]["cpu"]
    marker = tmp_path / "pwned"
    make_malicious(directory / PROGRAM_FILE, marker)
    with pytest.raises(ModelLoadError, match=f"{directory / PROGRAM_FILE}: not the program compress wrote"):
        rerun()
    assert not marker.exists()
