"""Running a recipe: the pipeline, the run directory (lock, state, resume, redo)."""
