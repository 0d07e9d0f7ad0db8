"""bench/nets.py writes the real VGG16 and ResNet-50: their kernels are keras.applications' twins'."""

from __future__ import annotations

import keras
import pytest
from bench.nets import NETS

import caffe2keras

TWINS = {"vgg16": keras.applications.VGG16, "resnet50": keras.applications.ResNet50}


def keras_kernel_shape(blob_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Caffe's (out, in, kh, kw) or (out, in) as Keras' (kh, kw, in, out) or (in, out)."""
    return (*blob_shape[2:], blob_shape[1], blob_shape[0])


@pytest.mark.slow  # builds keras.applications' VGG16 and ResNet-50
@pytest.mark.parametrize("net", sorted(NETS))
def test_kernels_match_the_keras_applications_twin(net, tmp_path):
    prototxt = tmp_path / f"{net}.prototxt"
    prototxt.write_text(NETS[net]())
    ours = [
        keras_kernel_shape(blobs[0])
        for blobs in caffe2keras.parameter_shapes(prototxt).values()
        if len(blobs[0]) in (2, 4)
    ]
    twin = [tuple(layer.kernel.shape) for layer in TWINS[net](weights=None).layers if hasattr(layer, "kernel")]
    assert sorted(ours) == sorted(twin)  # Keras orders a block's shortcut and branch differently
