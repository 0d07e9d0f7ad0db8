"""Test fixtures (helpers the tests import live in modules of their own: ``tests.shared``, ``tests.golden``...)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

import caffe2keras

caffe2keras.use_default_backend()  # before any test module imports Keras

from caffe2keras.keras_setup import use_compilation_cache  # noqa: E402
from tests.shared import FORMATS, REPO, SHARED  # noqa: E402

# Before JAX is imported: the tests compile thousands of small XLA programs (Keras' initializers
# when a model loads, each model's first call). Kept on disk, as the command line keeps them, a
# second run compiles none of them again: the fast tier took 3 min 33 s, then 1 min 43 s. The same
# programs run; only their compilation is saved.
use_compilation_cache(REPO / ".pytest_cache" / "jax")

SECOND_DATA_FORMAT = FORMATS[1]


def pytest_collection_modifyitems(config, items):
    """The fast tier runs every test in one data format: the channels_first runs are slow.

    channels_last is Keras' default and the one users run; each test's channels_first run checks
    the same conversion in the other layout, which the full run (CI) keeps checking.
    """
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("data_format") == SECOND_DATA_FORMAT:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def zoo_weights(tmp_path_factory):
    """Regenerate a golden/zoo case's weights with the case's own tool, once per session.

    The files go in a directory shared by pytest-xdist workers; a lock per case makes one
    worker write it (to a temporary name, then renamed) while the others wait.
    """
    root = tmp_path_factory.getbasetemp().parent / "zoo-weights"
    root.mkdir(exist_ok=True)

    def weights_for(case_dir: Path) -> Path:
        target = root / f"{case_dir.name}.caffemodel"
        with open(root / f"{case_dir.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not target.exists():
                partial = root / f"{case_dir.name}.partial"
                subprocess.run(
                    [sys.executable, str(SHARED / "tools" / "caffe_weights.py"), str(case_dir), str(partial)],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                os.replace(partial, target)
        return target

    return weights_for
