"""The house: stage base and registry, recipe schema, run context, variants, files and progress."""
