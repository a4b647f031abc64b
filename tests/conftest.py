from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

from tiny import make_checkpoint, synthetic_rows, write_csv  # noqa: E402

import compress  # noqa: E402,F401  (silences third-party start-up noise for every test)


@pytest.fixture(scope="session", autouse=True)
def machine_cache(tmp_path_factory):
    """Speed measurements cached per machine (``precision: auto``) go to the session's temp dir, never
    the user's cache; subprocesses inherit it."""
    previous = os.environ.get("COMPRESS_CACHE_DIR")
    os.environ["COMPRESS_CACHE_DIR"] = str(tmp_path_factory.mktemp("machine-cache"))
    yield
    if previous is None:
        os.environ.pop("COMPRESS_CACHE_DIR", None)
    else:
        os.environ["COMPRESS_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """One tiny random checkpoint directory per supported family."""
    root = tmp_path_factory.mktemp("checkpoints")
    return {family: make_checkpoint(root / family, family) for family in ("bert", "distilbert", "roberta")}


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "synthetic.csv", synthetic_rows(600))


@pytest.fixture
def tiny_recipe(tiny_checkpoints, synthetic_csv):
    """A fast recipe mapping on the tiny BERT and the synthetic CSV; tests tweak it as needed."""

    def build(stages: list, family: str = "bert", **data) -> dict:
        return {
            "name": "tiny",
            "seed": 0,
            "model": {"source": str(tiny_checkpoints[family]), "max_length": 32},
            "data": {"dataset": str(synthetic_csv), "test_size": 100, "dev_size": 100, **data},
            "stages": stages,
        }

    return build
