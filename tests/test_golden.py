"""Every golden case, run in real Caffe, matched by the converted and reloaded Keras model."""

from __future__ import annotations

import pytest

import caffe2keras
from tests.golden import Case, assert_matches, run, save_and_reload
from tests.shared import DEEPER_SIBLINGS, FORMATS, SHARED, case_dirs

# The same weights saved by Caffe as HDF5: the fast tier reads the .caffemodel only.
RAND_WEIGHTS = ["weights.caffemodel", pytest.param("weights.caffemodel.h5", marks=pytest.mark.slow)]


def _check_case(case: Case, prototxt, weights, data_format, tmp_path, all_blobs: bool, reload: bool = True):
    blobs = case.checked_blobs
    if all_blobs:
        # Every blob Caffe recorded, as pycaffe shows it after the forward pass.
        from caffe2keras.caffe import read_net
        from caffe2keras.graph import build_graph

        graph = build_graph(read_net(prototxt))
        names = dict.fromkeys(r.name for r in graph.blob_order() if r not in graph.inputs)
        blobs += [name for name in names if name not in blobs and case.has_blob(name)]
    model = caffe2keras.convert(prototxt, weights, outputs=blobs, data_format=data_format)
    if reload:
        reloaded = save_and_reload(model, tmp_path)
        assert reloaded.output_names == model.output_names
        model = reloaded
    outputs = run(model, case.input_arrays(), data_format)
    for blob, actual in zip(blobs, outputs):
        prefix = "out" if blob in case.checked_blobs else "blob"
        assert_matches(actual, case.reference(blob, prefix), f"{case.path.name}: blob {blob!r}")


@pytest.mark.parametrize("weights_file", RAND_WEIGHTS)
@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("case_dir", case_dirs("rand"))
def test_rand_case(case_dir, data_format, weights_file, tmp_path):
    case = Case.load(case_dir)
    _check_case(case, case_dir / "deploy.prototxt", case_dir / weights_file, data_format, tmp_path, all_blobs=True)


def _trained_prototxt(case: Case):
    source = case.spec["source"]
    return SHARED / "caffe" / "trained" / source["dir"] / source["prototxt"]


# Loading a net back costs most of its case on JAX: Keras runs every layer's initializer before
# it reads the weights, and XLA compiles a random draw for each weight shape (about 0.5 s each;
# 10 s for GoogLeNet). So each trained and Zoo net is checked converted in channels_last, and
# saved and reloaded in channels_first; the random cases, which cover every layer family, reload
# in both. The deeper siblings of a Zoo family are checked in channels_last only.
ROUTES = {"channels_last-converted": ("channels_last", False), "channels_first-reloaded": ("channels_first", True)}


@pytest.mark.parametrize("weights_file", RAND_WEIGHTS)
@pytest.mark.parametrize(("data_format", "reload"), list(ROUTES.values()), ids=list(ROUTES))
@pytest.mark.parametrize("case_dir", case_dirs("trained"))
def test_trained_case(case_dir, data_format, reload, weights_file, tmp_path):
    case = Case.load(case_dir)
    prototxt, weights = _trained_prototxt(case), case_dir / weights_file
    _check_case(case, prototxt, weights, data_format, tmp_path, all_blobs=True, reload=reload)


@pytest.mark.parametrize("case_dir", case_dirs("trained"))
def test_trained_original_files(case_dir, tmp_path):
    """The original (V1-format for LeNet and CIFAR-10) prototxt and caffemodel, unconverted."""
    case = Case.load(case_dir)
    source = case.spec["source"]
    original = SHARED / "caffe" / "trained" / source["dir"] / source["caffemodel"]
    _check_case(case, _trained_prototxt(case), original, "channels_last", tmp_path, all_blobs=False, reload=False)


def _zoo_params():
    return [
        pytest.param(*param.values, data_format, reload, marks=param.marks, id=f"{param.id}-{route}")
        for param in case_dirs("zoo")
        for route, (data_format, reload) in ROUTES.items()
        if not (reload and getattr(param.values[0], "name", None) in DEEPER_SIBLINGS)
    ]


@pytest.mark.parametrize(("case_dir", "data_format", "reload"), _zoo_params())
def test_zoo_case(case_dir, data_format, reload, zoo_weights, tmp_path):
    case = Case.load(case_dir)
    source = case.spec["source"]
    prototxt = SHARED / "caffe" / "models" / source["dir"] / source["prototxt"]
    _check_case(case, prototxt, zoo_weights(case_dir), data_format, tmp_path, all_blobs=False, reload=reload)
