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

# The Zoo nets of over 50 MB of weights (seconds to generate, then to run) and DenseNet-121 (400
# layers to compile): the slow tier. Their layer families are in the fast tier's smaller Zoo nets
# (GoogLeNet, MobileNet, SqueezeNet), the random and trained cases and the sweeps.
HEAVY_ZOO = DEEPER_SIBLINGS | {
    "bvlc_alexnet",
    "bvlc_reference_caffenet",
    "bvlc_reference_rcnn_ilsvrc13",
    "caffenet_full_conv",
    "densenet121",
    "fcn8s_voc",
    "finetune_flickr_style",
    "net_surgery_conv",
    "resnet50",
    "vgg16",
}

requires_shared = pytest.mark.skipif(not HAS_SHARED, reason=f"ground-truth material not found at {SHARED}")


def case_dirs(kind: str) -> list:
    """pytest params for every golden case of ``kind`` (one skipped param when absent), the heavy
    Zoo nets in the slow tier."""
    root = SHARED / "golden" / kind
    if not root.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{root} not found"), id="no-shared")]
    return [
        pytest.param(path, id=path.name, marks=[pytest.mark.slow] * (kind == "zoo" and path.name in HEAVY_ZOO))
        for path in sorted(root.iterdir())
        if (path / "case.json").exists()
    ]
