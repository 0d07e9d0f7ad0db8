"""`caffe2keras zoo convert` on the catalog's own entries for published nets, offline: the
prototxts as published (tests/data/published/) and synthetic weights, served by --from with the
entry's hashes set to those local files'."""

from __future__ import annotations

import hashlib
import json

import keras
import numpy as np
import pytest

import caffe2keras.layers  # noqa: F401  (registers the custom layers for loading)
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.cli import main
from caffe2keras.synthetic import synthetic_weights
from caffe2keras.zoo.catalog import load_catalog
from tests.test_published import PUBLISHED

# name -> (published prototxt, layers the published weights file lacks, the converted model's output)
NETS = {
    "opencv_face_detector_res10_ssd": ("opencv_face_detector_res10_ssd/deploy.prototxt", (), (1, 200, 7, 1)),
    "colorization_v2": ("colorization_v2/colorization_deploy_v2.prototxt", ("class8_ab", "conv8_313_rh"), None),
    "hed_bsds": ("hed_bsds/deploy.prototxt", (), None),
}


def _sha256(path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def local_zoo(tmp_path, monkeypatch, name):
    """A catalog holding the package's entry for ``name``, its files in a --from folder."""
    prototxt_name, unpublished, _ = NETS[name]
    entry = json.loads(json.dumps(load_catalog()[name].entry))
    source = tmp_path / "from" / name
    source.mkdir(parents=True)
    files = entry["files"]
    prototxt = source / files["prototxt"]["filename"]
    prototxt.write_bytes((PUBLISHED / prototxt_name).read_bytes())
    weights = source / files["weights"]["filename"]
    layers = synthetic_weights(prototxt)
    write_caffemodel(weights, [layer for layer in layers if layer[0] not in unpublished])
    for file in files.values():
        path = source / file["filename"]
        if not path.exists():  # colorization's pts_in_hull.npy: a stand-in, the conversion does not read it
            np.save(path, np.zeros((313, 2)))
        if file["hash"]:  # the catalog has no hash for HED's weights: that stays so
            file["hash"] = _sha256(path)
            file["size"] = path.stat().st_size
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"version": 1, "nets": [entry]}))
    monkeypatch.setenv("CAFFE2KERAS_ZOO_CATALOG", str(catalog))
    monkeypatch.setenv("CAFFE2KERAS_ZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "from"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NETS))
def test_zoo_convert_published_net(name, tmp_path, monkeypatch):
    source = local_zoo(tmp_path, monkeypatch, name)
    output = tmp_path / f"{name}.keras"
    unverified = [] if load_catalog()[name].entry["verified"] else ["--allow-unverified"]
    assert main(["zoo", "convert", name, "--from", str(source), "-o", str(output), "-q", *unverified]) == 0
    model = keras.saving.load_model(output, safe_mode=True)
    expected = NETS[name][2]
    if expected is not None:
        assert tuple(model.outputs[0].shape)[1:] == expected[1:]


@pytest.mark.slow
def test_the_detection_guide_runs(tmp_path, monkeypatch, capsys):
    """docs/guide/detection.md's steps, which the README shows too, on the published prototxt with synthetic weights."""
    import re

    from tests.shared import REPO

    pytest.importorskip("skimage")
    guide = (REPO / "docs" / "guide" / "detection.md").read_text()
    command = re.search(r"```bash\n(.*?)```", guide, re.S).group(1).split()
    code = re.search(r"```python\n(.*?)```", guide, re.S).group(1)
    readme = (REPO / "README.md").read_text()  # the README shows the same steps
    assert f"```bash\n{' '.join(command)}\n```" in readme and f"```python\n{code}```" in readme
    source = local_zoo(tmp_path, monkeypatch, "opencv_face_detector_res10_ssd")
    monkeypatch.chdir(tmp_path)
    assert command[:3] == ["caffe2keras", "zoo", "convert"]
    assert main([*command[1:], "--from", str(source), "-q"]) == 0
    namespace = {}
    exec(compile(code, "docs/guide/detection.md", "exec"), namespace)
    assert namespace["rows"].shape == (200, 7)
    assert namespace["boxes"].shape == (len(namespace["faces"]), 4)
