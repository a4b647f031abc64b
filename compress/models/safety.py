"""Loading weights without running code from files: safetensors, or ``torch.load(weights_only=True)``.

A pickle (``pytorch_model.bin``, ``*.pt``) can run arbitrary code when unpickled. compress refuses any
pickle that the restricted ``weights_only`` unpickler rejects, unless the recipe sets
``model.trust_model_code: true`` (``--trust-model-code``).
"""

from __future__ import annotations

from pathlib import Path

from compress.errors import ModelLoadError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
TRUST_HINT = "only if you trust where the file came from: set model.trust_model_code: true (or --trust-model-code)"


def pickled_weight_files(directory: Path) -> list[Path]:
    """Pickled weight files of a checkpoint directory that has no safetensors weights (those win)."""
    if any(directory.glob("*.safetensors")):
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in PICKLE_SUFFIXES)


def check_pickled_weights(directory: Path, trusted: bool) -> None:
    """Refuse pickled weights that need code execution to load, unless ``trusted``."""
    if trusted:
        return
    import pickle

    import torch

    for path in pickled_weight_files(directory):
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelLoadError(
                f"{path}: refusing to load, this pickle needs to run code to load ({first_line[:200]})",
                hint=f"convert it to safetensors, or {TRUST_HINT}",
            ) from None
        except Exception as error:  # truncated or not a torch file at all
            raise ModelLoadError(f"{path}: cannot read weights ({type(error).__name__}: {error})") from None


def trusted_safetensors_copy(directory: Path, target: Path) -> Path:
    """Copy a checkpoint to ``target`` with its pickled weights unpickled (trusted) and saved as safetensors.

    Only called with explicit trust; the copy then loads through the ordinary safetensors path.
    """
    import shutil

    import torch
    from safetensors.torch import save_file

    target.mkdir(parents=True, exist_ok=True)
    state: dict = {}
    for path in directory.iterdir():
        if path.is_file() and path.suffix in PICKLE_SUFFIXES:
            loaded = torch.load(path, map_location="cpu", weights_only=False)
            state.update({k: v.contiguous() for k, v in dict(loaded).items() if isinstance(v, torch.Tensor)})
        elif path.is_file():
            shutil.copy2(path, target / path.name)
    save_file(state, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target
