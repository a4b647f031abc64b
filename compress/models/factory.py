"""Models built by the user's code: ``package.module:factory`` names, imported and called.

Used both to load a recipe's input model and to rebuild a saved model whose manifest names its factory.
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn

from compress.errors import ModelLoadError


def import_object(spec: str) -> Any:
    """Import ``package.module:attribute``. This runs the user's code, which is why recipes name it explicitly."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ModelLoadError(f"{spec!r}: expected 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ModelLoadError(f"{spec!r}: cannot import module {module_name!r} ({error})") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ModelLoadError(f"{spec!r}: module {module_name!r} has no attribute {attribute!r}") from None


def call_factory(spec: str, **kwargs: Any) -> nn.Module:
    factory = import_object(spec)
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"{spec!r} returned {type(model).__name__}, expected a torch.nn.Module")
    return model
