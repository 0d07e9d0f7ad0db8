"""Normalize against a reference written here from the SSD fork's C++ (weiliu89/caffe, branch ssd)."""

from __future__ import annotations

import numpy as np
import pytest

import caffe2keras  # noqa: F401  (backend default)
from caffe2keras.layers import Normalize
from caffe2keras.layout import DATA_FORMATS, Layout

F32 = np.float32


def caffe_normalize(x, scale, across_spatial, eps):
    """normalize_layer.cpp, per image: norm = sqrt(sum(x^2) + eps) over C*H*W or over C."""
    x64 = x.astype(np.float64)
    flat = x64.reshape(x.shape[0], x.shape[1], -1)
    if across_spatial:
        norm = np.sqrt((flat**2).sum(axis=(1, 2), keepdims=True) + eps)
    else:
        norm = np.sqrt((flat**2).sum(axis=1, keepdims=True) + eps)
    y = flat / norm * np.reshape(scale, (1, -1, 1))
    return y.reshape(x.shape)


@pytest.mark.parametrize("data_format", DATA_FORMATS)
@pytest.mark.parametrize("shape", [(2, 5), (2, 3, 7), (2, 4, 3, 5)])
@pytest.mark.parametrize("across_spatial", [True, False])
@pytest.mark.parametrize("channel_shared", [True, False])
def test_normalize_matches_caffe(shape, across_spatial, channel_shared, data_format):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(F32)
    x[0] = 0  # an all-zero image: eps keeps it finite
    scale = rng.uniform(5, 20, () if channel_shared else (shape[1],)).astype(F32)
    layer = Normalize(across_spatial=across_spatial, channel_shared=channel_shared, eps=1e-3, data_format=data_format)
    layer.build(Layout(data_format).to_keras(x).shape)
    layer.scale.assign(scale)
    y = Layout(data_format).to_caffe(np.asarray(layer(Layout(data_format).to_keras(x))))
    np.testing.assert_allclose(y, caffe_normalize(x, scale, across_spatial, F32(1e-3)), rtol=1e-5, atol=1e-6)


def test_normalize_config_roundtrip():
    layer = Normalize(across_spatial=False, channel_shared=False, eps=1e-5, data_format="channels_first")
    assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()
