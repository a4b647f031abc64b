"""compress: prune, distill, quantize, validate and report on Transformer classifiers for edge devices.

Every CLI command is a Python call too::

    import compress
    result = compress.run_recipe("recipes/default.yaml", out="runs/demo")
    compress.predict(result.bundle_dir, ["a gripping, beautifully shot film"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from compress.core.quiet import silence_library_noise
from compress.errors import CompressError

silence_library_noise()

__version__ = "0.1.0"
__all__ = ["CompressError", "embed", "list_recipes", "predict", "run_recipe", "validate_recipe", "__version__"]

if TYPE_CHECKING:
    from compress.bundle.predict import Prediction
    from compress.core.recipe import Recipe
    from compress.run.pipeline import RunResult


def run_recipe(
    recipe: Any,
    out: Any = None,
    overrides: list[str] | None = None,
    console: Any = None,
    restart: bool = False,
    redo: str | None = None,
) -> RunResult:
    """Run (or resume, or with ``restart`` start over, or with ``redo`` redo from one stage on) a recipe;
    see :func:`compress.run.pipeline.run_recipe`."""
    from compress.run.pipeline import run_recipe as _run

    return _run(recipe, out=out, overrides=overrides, console=console, restart=restart, redo=redo)


def validate_recipe(path: Any, overrides: list[str] | None = None) -> Recipe:
    """Parse and check a recipe without running anything (the model's family must support every stage,
    read from its config alone); raises :class:`CompressError`."""
    from compress.core.recipe import load_recipe
    from compress.models.families.check import check_recipe_families

    recipe = load_recipe(path, overrides)
    check_recipe_families(recipe)
    from compress.models.declared import declared_config
    from compress.tasks import get_task
    from compress.tasks.base import check_task_stages

    check_task_stages(get_task(recipe.task.kind), [s.kind for s in recipe.stages])
    get_task(recipe.task.kind).check_recipe(recipe.stages, declared_config(recipe.model.source)[0])
    if recipe.data.label_kind not in ("auto", "single"):  # a detected kind is checked when the data is read
        from compress.tasks.text_classification import TASK_FOR_LABEL_KIND

        check_task_stages(get_task(TASK_FOR_LABEL_KIND[recipe.data.label_kind]), [s.kind for s in recipe.stages])
    return recipe


def list_recipes() -> list[tuple[str, str]]:
    """(name, one-line description) of every bundled recipe."""
    from compress.core.recipe import bundled_recipes

    return bundled_recipes()


def embed(bundle_dir: Any, texts: list[str]) -> Any:
    """Embed texts with a sentence-embedding bundle (ONNX Runtime, no torch): a (texts, dim) array."""
    from compress.bundle.embed import embed as _embed

    return _embed(bundle_dir, texts)


def predict(bundle_dir: Any, texts: list[str]) -> list[Prediction]:
    """Classify texts with a deployable bundle (ONNX Runtime or OpenVINO, as its manifest says; no torch)."""
    from compress.bundle.predict import predict as _predict

    return _predict(bundle_dir, texts)
