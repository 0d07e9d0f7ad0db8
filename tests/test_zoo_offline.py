"""Every catalog net whose files are here converts, offline, as ``zoo convert`` would convert it.

The prototxts come from ../shared (the Zoo's deploy files, MTCNN's trained nets). MTCNN converts
with its real weights; the others architecture only (their weights are hundreds of megabytes and
not here), which checks what could fail: the catalog's preprocessing against the net's inputs.
"""

from __future__ import annotations

import pytest

from caffe2keras.layers.preprocessing import CaffePreprocessing
from caffe2keras.zoo.catalog import load_catalog
from caffe2keras.zoo.convert import convert_downloaded
from caffe2keras.zoo.download import Downloaded
from tests.shared import SHARED

MODELS = SHARED / "caffe" / "models"
MTCNN = SHARED / "caffe" / "trained" / "mtcnn"
MTCNN_FILES = {"mtcnn_pnet": "det1", "mtcnn_rnet": "det2", "mtcnn_onet": "det3", "mtcnn_lnet": "det4"}
# MTCNN converts in seconds; the rest (architecture only, but ImageNet-sized) are in the slow tier.
QUICK = set(MTCNN_FILES)


def local_files(name: str) -> dict:
    if name in MTCNN_FILES:
        stem = MTCNN / MTCNN_FILES[name]
        return {"prototxt": stem.with_suffix(".prototxt"), "weights": stem.with_suffix(".caffemodel")}
    return {"prototxt": MODELS / name / "deploy.prototxt", "weights": None}


def catalog_nets():
    params = []
    for name, net in sorted(load_catalog().items()):
        paths = local_files(name)
        marks = [] if name in QUICK else [pytest.mark.slow]
        if not paths["prototxt"].is_file():
            marks.append(pytest.mark.skip(reason=f"no local prototxt for {name} in {SHARED}"))
        elif net.preprocessing["mean_file"]:
            marks.append(pytest.mark.skip(reason=f"{name}'s mean file is not here"))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.filterwarnings("ignore::caffe2keras.errors.ConversionWarning")
@pytest.mark.parametrize("name", catalog_nets())
def test_catalog_net_converts_from_local_files(name):
    net = load_catalog()[name]
    model = convert_downloaded(Downloaded(net, SHARED, local_files(name)))
    steps = [layer for layer in model.layers if isinstance(layer, CaffePreprocessing)]
    declared = net.preprocessing["channel_order"]
    if net.preprocessing["mean"] is not None or net.preprocessing["scale"] is not None:
        assert len(steps) == 1
        colour = model.inputs[0].shape[-1] == 3
        assert steps[0].channel_order == (declared.lower() if colour and declared in ("BGR", "RGB") else None)
