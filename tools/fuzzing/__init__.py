"""Fuzzing caffe2keras through its CLI: the harness (:mod:`.harness`) and the families of hostile
inputs (:mod:`.model_files`, :mod:`.surfaces`). ``tools/fuzz.py`` runs it; ``tests/test_fuzz.py``
runs each family briefly."""

from tools.fuzzing.harness import (
    BUGS,
    CASE_TIMEOUT_S,
    GROUPS,
    MEMORY_LIMIT,
    Case,
    Report,
    families,
    generate,
    run,
)

__all__ = ["BUGS", "CASE_TIMEOUT_S", "GROUPS", "MEMORY_LIMIT", "Case", "Report", "families", "generate", "run"]
