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

from tests.shared import FORMATS, SHARED  # noqa: E402

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
