"""The forks' Mish (YOLOv4 ports of Caffe), against Caffe's formula written in numpy."""

from __future__ import annotations

import numpy as np
import pytest

from caffe2keras.errors import UnsupportedLayersError
from caffe2keras.onnx import to_onnx
from tests.golden import assert_matches
from tests.nets import convert_and_run, layer, net, write_net
from tests.shared import FORMATS

SHAPE = (2, 3, 4, 5)
MISH_NET = net({"data": SHAPE}, layer("Mish", name="mish"))


def caffe_mish(x: np.ndarray) -> np.ndarray:
    """The fork's ``caffe_mish``: ``x * tanh(log(1 + exp(x)))`` in float, element by element (an
    ``exp`` that overflows gives ``x``, as ``tanh(inf)`` is 1)."""
    with np.errstate(over="ignore"):
        return x * np.tanh(np.log(np.float32(1) + np.exp(x)))


def mish_inputs() -> np.ndarray:
    """Normal values, and the tails where the fork's unguarded formula over- and underflows."""
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32) * 4
    x[0, 0, 0, :] = [-100, -20, 0, 20, 100]
    return x


@pytest.mark.parametrize("data_format", FORMATS)
def test_mish_matches_caffe(data_format, tmp_path):
    x = mish_inputs()
    (actual,) = convert_and_run(tmp_path, MISH_NET, [x], data_format)  # saved, reloaded, run
    assert_matches(actual, caffe_mish(x), "Mish")


def test_the_onnx_writer_refuses_mish_with_the_other_unsupported_types(tmp_path):
    prototxt, _ = write_net(tmp_path, MISH_NET)
    with pytest.raises(UnsupportedLayersError, match="Mish: 1 layer, first 'mish' — caffe2keras has no ONNX writer"):
        to_onnx(prototxt, None, tmp_path / "net.onnx")
    assert not (tmp_path / "net.onnx").exists()
