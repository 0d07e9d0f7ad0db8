"""Scripts of the project: the catalog builder and the fuzzing harness (not installed)."""
