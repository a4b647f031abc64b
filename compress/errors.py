"""The one error type users see: a message naming the problem, shown without a traceback."""

from __future__ import annotations


class CompressError(Exception):
    """A problem with the user's input or environment, explained in plain words.

    The CLI prints ``str(error)`` and exits with ``exit_code``; ``--debug`` shows the traceback.
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\nHint: {hint}")


class RecipeError(CompressError):
    """The recipe file cannot be read or does not validate."""


class ModelLoadError(CompressError):
    """A model path, checkpoint or factory cannot be loaded."""


class DataError(CompressError):
    """A dataset is missing, malformed or unusable for the task."""


class StageError(CompressError):
    """A stage cannot run on the model it was given."""


class SetupError(CompressError):
    """The machine lacks something the recipe requires (a GPU, an optional backend)."""
