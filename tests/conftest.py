"""Shared test fixtures: the ground-truth material in ../shared, and model round trips."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

import caffe2keras

caffe2keras.use_default_backend()  # before any test module imports Keras

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CAFFE2KERAS_SHARED", REPO.parent / "shared"))
HAS_SHARED = (SHARED / "golden").is_dir()

requires_shared = pytest.mark.skipif(not HAS_SHARED, reason=f"ground-truth material not found at {SHARED}")


def case_dirs(kind: str) -> list:
    """pytest params for every golden case of ``kind`` (one skipped param when absent)."""
    root = SHARED / "golden" / kind
    if not root.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{root} not found"), id="no-shared")]
    return [pytest.param(path, id=path.name) for path in sorted(root.iterdir()) if (path / "case.json").exists()]


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
