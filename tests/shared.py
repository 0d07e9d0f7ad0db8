"""Where the ground-truth material is (``../shared``), and pytest marks for tests that need it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from caffe2keras.layout import DATA_FORMATS

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CAFFE2KERAS_SHARED", REPO.parent / "shared"))
HAS_SHARED = (SHARED / "golden").is_dir()

# Both Keras data formats; tests/conftest.py puts each test's channels_first run in the slow tier.
FORMATS = list(DATA_FORMATS)

# The deeper members of a Zoo family: DenseNet-121, ResNet-50 and VGG16's layers and wiring, only
# more of them. A check of structure or numbers per layer that the shallower one passes, they pass:
# the costly per-net checks leave them out.
DEEPER_SIBLINGS = {"densenet161", "densenet169", "densenet201", "resnet101", "resnet152", "vgg19"}

requires_shared = pytest.mark.skipif(not HAS_SHARED, reason=f"ground-truth material not found at {SHARED}")


def case_dirs(kind: str) -> list:
    """pytest params for every golden case of ``kind`` (one skipped param when absent)."""
    root = SHARED / "golden" / kind
    if not root.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{root} not found"), id="no-shared")]
    return [pytest.param(path, id=path.name) for path in sorted(root.iterdir()) if (path / "case.json").exists()]
