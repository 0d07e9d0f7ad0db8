"""The sweeps' numpy oracle (tests/oracle.py) gives real Caffe's blobs of the golden/rand cases,
so it may judge the converter and OpenCV."""

from __future__ import annotations

import numpy as np
import pytest

from tests import oracle
from tests.golden import assert_matches
from tests.shared import case_dirs, requires_shared


def _geometry(p, name: str, hw: str | None, default: int) -> tuple[int, int]:
    """A 2-D geometry field as Caffe reads it: ``<hw>_h``/``<hw>_w``, else the (repeated) field."""
    if hw is not None and p.HasField(f"{hw}_h"):
        return getattr(p, f"{hw}_h"), getattr(p, f"{hw}_w")
    value = getattr(p, name)
    if isinstance(value, int):
        return (value, value) if p.HasField(name) else (default, default)
    values = list(value) or [default]
    return (values[0], values[-1])


def _oracle_for(layer, blobs):
    """The numpy oracle of one real-Caffe layer (the types OpenCV gets wrong in places)."""
    if layer.type in ("Convolution", "Deconvolution"):
        p = layer.convolution_param
        geometry = (
            _geometry(p, "stride", "stride", 1),
            _geometry(p, "pad", "pad", 0),
            _geometry(p, "dilation", None, 1),
            p.group,
        )
        function = oracle.convolution if layer.type == "Convolution" else oracle.deconvolution
        return lambda x: function(x, blobs[0], blobs[1] if p.bias_term else None, *geometry)
    if layer.type == "Pooling":
        p = layer.pooling_param
        if p.global_pooling:
            return lambda x: oracle.pooling(x, ("max", "ave")[p.pool], x.shape[2:], (1, 1), (0, 0))
        kernel = _geometry(p, "kernel_size", "kernel", 0)
        return lambda x: oracle.pooling(
            x,
            ("max", "ave")[p.pool],
            kernel,
            _geometry(p, "stride", "stride", 1),
            _geometry(p, "pad", "pad", 0),
            p.round_mode == p.CEIL,
        )
    if layer.type == "LRN":
        p = layer.lrn_param
        if p.norm_region == p.WITHIN_CHANNEL:
            return lambda x: oracle.lrn_within_channel(x, p.local_size, p.alpha, p.beta)
        return lambda x: oracle.lrn_across_channels(x, p.local_size, p.alpha, p.beta, p.k)
    return None


@requires_shared
@pytest.mark.parametrize("case_dir", case_dirs("rand"))
def test_oracle_matches_real_caffe(case_dir):
    """The numpy formulas give real Caffe's blobs, fed real Caffe's bottoms: they may judge OpenCV.

    Layers whose bottom or top is rewritten later (in place) are skipped, since Caffe recorded
    only each blob's final value.
    """
    import h5py

    from caffe2keras.caffe import read_net

    layers = list(read_net(case_dir / "deploy.prototxt").layer)
    with h5py.File(case_dir / "weights.caffemodel.h5") as f:
        weights = {
            name: [np.asarray(f["data"][name][str(i)]) for i in range(len(f["data"][name]))] for name in f["data"]
        }
    checked = 0
    for index, layer in enumerate(layers):
        rewritten = {top for later in layers[index + 1 :] for top in later.top}
        function = _oracle_for(layer, weights.get(layer.name, []))
        if function is None or rewritten & {*layer.bottom, *layer.top}:
            continue
        x = np.load(case_dir / f"blob_{layer.bottom[0]}.npy")
        assert_matches(function(x), np.load(case_dir / f"blob_{layer.top[0]}.npy"), f"{layer.name} ({layer.type})")
        checked += 1
    if not checked:
        pytest.skip("no layer of an oracle-checked type with recorded bottom and top")
